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


class InvoiceLineKind(models.TextChoices):
    GOODS = "goods"
    DEPOSIT = "deposit"


class InvoiceEmailStatus(models.TextChoices):
    GENERATED = "generated"
    EMAILED = "emailed"


class CreditNoteKind(models.TextChoices):
    VOID = "void"
    DEPOSIT_REFUND = "deposit_refund"


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
