"""Pure sales rules: customer fields, payment fields, and invoice arithmetic.

Rounding (stated once, used everywhere): money is integer minor units. A goods line's net is
`qty x unit_price` (exact). Its tax is `net x tax_rate_bp / 10 000` rounded **half-up to the
minor unit, per line**; the invoice's tax is the sum of its lines' taxes, so the lines always add
up to the total printed on the invoice. Deposit lines carry no tax.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import models

from quartermaster.core.errors import Invalid
from quartermaster.notifications.invariants import clean_email

MAX_NAME_LENGTH = 200
MAX_PHONE_LENGTH = 30
MAX_METHOD_LENGTH = 30
BASIS_POINTS = 10_000
# One sale, payment or invoice is at most a trillion minor units: sums stay inside 64 bits.
MAX_AMOUNT_MINOR = 10**12


class SaleStatus(models.TextChoices):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    VOIDED = "voided"


class SaleMode(models.TextChoices):
    """How a line of a returnable item is sold (API.md "Distributor")."""

    SALE = "sale"  # outright: a full out, nothing back (a serialized item's deposit as ever)
    EXCHANGE = "exchange"  # a full out, the customer's empty back, no deposit
    NEW = "new"  # a new connection: a full out and its deposit charged


def clean_mode(mode: object, field: str) -> str:
    if mode not in SaleMode.values:
        raise Invalid.field(field, f"one of {', '.join(SaleMode.values)}")
    return str(mode)


class RefundMethod(models.TextChoices):
    """How a deposit refunded on a return is paid back."""

    CASH = "cash"  # cash out of the till
    CREDIT = "credit"  # a credit to the customer's account


def deposit_refund(*, held_qty: int, held_minor: int, returned_qty: int) -> tuple[int, int]:
    """(units refunded, amount) for `returned_qty` units coming back to a customer who holds
    deposits on `held_qty` units worth `held_minor`: at most the units held, each at the
    average held (all of them: exactly what is held, so no rounding is left behind)."""
    units = min(max(held_qty, 0), returned_qty)
    if units <= 0 or held_minor <= 0:
        return 0, 0
    if units == held_qty:
        return units, held_minor
    return units, held_minor * units // held_qty


class InvoiceLineKind(models.TextChoices):
    GOODS = "goods"
    DEPOSIT = "deposit"


class InvoiceEmailStatus(models.TextChoices):
    GENERATED = "generated"
    EMAILED = "emailed"


class CreditNoteKind(models.TextChoices):
    VOID = "void"
    DEPOSIT_REFUND = "deposit_refund"


class PaymentTerms(models.TextChoices):
    CASH = "cash"
    CREDIT = "credit"


PAYMENT_METHODS = ("cash", "card", "upi", "bank_transfer", "cheque", "other")


def clean_customer_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid.field("name", "must be a non-blank string")
    if len(name.strip()) > MAX_NAME_LENGTH:
        raise Invalid.field("name", f"at most {MAX_NAME_LENGTH} characters")
    return name.strip()


def clean_phone(phone: Any) -> str:
    if not isinstance(phone, str) or len(phone.strip()) > MAX_PHONE_LENGTH:
        raise Invalid.field("phone", f"a string of at most {MAX_PHONE_LENGTH} characters")
    return phone.strip()


def clean_customer_email(email: Any) -> str:
    """A customer's e-mail address, where its invoices go when a request names none: blank (or
    only spaces) is none on record; anything else must be an address (notifications' rule)."""
    if not isinstance(email, str):
        raise Invalid.field("email", "an e-mail address, or blank for none")
    return clean_email(email, "email") if email.strip() else ""


def check_amount_ceiling(minor: int, field: str) -> int:
    """An amount already parsed from the wire (`core.money.Money`), within what a sale holds."""
    if minor > MAX_AMOUNT_MINOR:
        raise Invalid.field(field, f"at most {MAX_AMOUNT_MINOR // 100}")
    return minor


def clean_method(method: Any) -> str:
    if method not in PAYMENT_METHODS:
        raise Invalid.field("method", f"one of {', '.join(PAYMENT_METHODS)}")
    return str(method)


def line_tax(net_minor: int, tax_rate_bp: int) -> int:
    """Half-up rounding of net x rate / 10 000 for a non-negative net, in integers (no floats)."""
    return (2 * net_minor * tax_rate_bp + BASIS_POINTS) // (2 * BASIS_POINTS)


@dataclass(frozen=True)
class PricedLine:
    kind: str
    item_id: Any
    description: str
    qty: int
    unit_price_minor: int
    tax_rate_bp: int
    net_minor: int
    tax_minor: int

    @property
    def total_minor(self) -> int:
        return self.net_minor + self.tax_minor


def price_line(
    *, kind: str, item_id: Any, description: str, qty: int, unit_price_minor: int, tax_rate_bp: int
) -> PricedLine:
    net = qty * unit_price_minor
    if net > MAX_AMOUNT_MINOR:
        raise Invalid.field("lines", "the line amount is too large")
    return PricedLine(
        kind=kind,
        item_id=item_id,
        description=description,
        qty=qty,
        unit_price_minor=unit_price_minor,
        tax_rate_bp=tax_rate_bp,
        net_minor=net,
        tax_minor=line_tax(net, tax_rate_bp),
    )


@dataclass(frozen=True)
class Totals:
    subtotal_minor: int
    tax_minor: int
    deposit_minor: int
    total_minor: int


def invoice_totals(lines: list[PricedLine]) -> Totals:
    goods = [line for line in lines if line.kind == InvoiceLineKind.GOODS]
    deposits = [line for line in lines if line.kind == InvoiceLineKind.DEPOSIT]
    subtotal = sum(line.net_minor for line in goods)
    tax = sum(line.tax_minor for line in goods)
    deposit = sum(line.total_minor for line in deposits)
    total = subtotal + tax + deposit
    assert total == sum(line.total_minor for line in lines)
    return Totals(subtotal, tax, deposit, total)


# Credit, cash and metered customers (sales.credit): the arithmetic, without the database.

MAX_METER_READING = 10**12
AGING_BUCKETS = ("0_30", "31_60", "61_90", "90_plus")


def clean_payment_terms(terms: Any) -> str:
    if terms not in PaymentTerms.values:
        raise Invalid.field("payment_terms", f"one of {', '.join(PaymentTerms.values)}")
    return str(terms)


def clean_meter_reading(reading: Any, field: str = "reading") -> int:
    if isinstance(reading, bool) or not isinstance(reading, int):
        raise Invalid.field(field, "must be an integer")
    if not 0 <= reading <= MAX_METER_READING:
        raise Invalid.field(field, f"from 0 to {MAX_METER_READING}")
    return reading


def check_next_reading(*, last: int | None, reading: int, replaced: bool, field: str) -> None:
    """A meter only counts up: a reading below the last one is refused unless the meter was
    replaced (a new meter starts again from its own count)."""
    if last is not None and reading < last and not replaced:
        raise Invalid.field(
            field, f"below the last reading ({last}); record a meter replacement if it was"
        )


def metered_consumption(*, last: int | None, reading: int, field: str) -> int:
    """Units used since the last reading: what a metered sale line bills."""
    if last is None:
        raise Invalid.field(field, "the meter has no reading yet: record its first reading")
    check_next_reading(last=last, reading=reading, replaced=False, field=field)
    if reading == last:
        raise Invalid.field(field, f"equal to the last reading ({last}): nothing to bill")
    return reading - last


@dataclass(frozen=True)
class OpenItem:
    """An invoice with money still owed on it, as allocation reads it."""

    invoice_id: Any
    open_minor: int


def allocate(
    money_minor: int, open_items: list[OpenItem], named: list[tuple[Any, int]]
) -> list[tuple[Any, int]]:
    """How `money_minor` is applied: the `named` (invoice, amount) pairs first, then the rest to
    `open_items` oldest first (they come in that order). Returns (invoice, amount) pairs, each
    amount more than 0; what is left of the money stays the customer's credit."""
    remaining = {item.invoice_id: item.open_minor for item in open_items}
    plan: list[tuple[Any, int]] = []
    left = money_minor
    for index, (invoice_id, amount) in enumerate(named):
        field = f"allocations[{index}].amount"
        if invoice_id not in remaining:
            raise Invalid.field(
                f"allocations[{index}].invoice", "not an open invoice of this customer"
            )
        if amount > remaining[invoice_id]:
            raise Invalid.field(field, "more than the invoice's open amount")
        if amount > left:
            raise Invalid.field(field, "the allocations add up to more than the payment")
        remaining[invoice_id] -= amount
        left -= amount
        plan.append((invoice_id, amount))
    for item in open_items:
        if left == 0:
            break
        take = min(left, remaining[item.invoice_id])
        if take > 0:
            remaining[item.invoice_id] -= take
            left -= take
            plan.append((item.invoice_id, take))
    return plan


def aging_bucket(age_days: int) -> str:
    """The ageing column of an invoice `age_days` old (whole days since it was raised)."""
    if age_days <= 30:
        return "0_30"
    if age_days <= 60:
        return "31_60"
    if age_days <= 90:
        return "61_90"
    return "90_plus"
