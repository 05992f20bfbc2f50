"""A customer's money beyond the sale itself: cash and credit terms, credit limits, payments
allocated to invoices, credit balances and refunds, meters; and the journal postings of every
payment and refund (this module is the one place that posts them).

The customer's account (`CustomerAccount`) holds two numbers changed only by guarded UPDATEs:
`balance` (what the customer owes, net) and `credit` (money received or credited and not yet
applied to an invoice). Every operation that moves money for a customer updates that row first,
so operations on one customer queue behind its row lock, and a credit limit is one statement:
`UPDATE … SET balance = balance + total WHERE balance + total <= limit` (two concurrent sales
that fit the limit alone but not together: the second finds the first's balance and fails).

Credit is never left idle next to an open invoice: money arriving (a payment, a credit note) is
applied at once, named invoices first, then the oldest open invoice first; a new invoice takes
the customer's credit the moment it is raised. So `credit > 0` means nothing is open, and what
remains of it can only be refunded (`refund.record`) or wait for the next invoice.

Journal (accounts opened on first use):
- a payment: Dr cash | cheques | bank (by method), Cr customer_receivable:<customer id>;
- a refund: Dr customer_receivable:<customer id>, Cr cash | bank.
Sales themselves (Dr receivable, Cr revenue, tax, deposits) post elsewhere (sales.postings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import BulkUnavailable, Command
from quartermaster.core.errors import Conflict, Invalid, NotFound
from quartermaster.core.money import MoneyEdit, PositiveMoney, format_money
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.identity import permissions
from quartermaster.journal.invariants import AccountKind, AccountSpec, PostingLine
from quartermaster.journal.services import PostedEntry, open_accounts, post_entry
from quartermaster.sales import invariants, postings
from quartermaster.sales.invariants import PaymentTerms
from quartermaster.sales.models import (
    Allocation,
    Customer,
    CustomerAccount,
    Invoice,
    MeterReading,
    Payment,
    Refund,
)
from quartermaster.sales.selectors import (
    AllocationView,
    allocation_view,
    get_customer,
    last_meter_reading,
    meter_reading_view,
    open_items,
    payment_view,
    refund_view,
)

# How money reaches us, by payment method: a cheque waits in hand until banked.
PAYMENT_ACCOUNTS = {
    "cash": "cash",
    "cheque": "cheques",
    "card": "bank",
    "upi": "bank",
    "bank_transfer": "bank",
    "other": "bank",
}
_ACCOUNT_NAMES = {"cash": "Cash", "bank": "Bank", "cheques": "Cheques in hand"}
# The journal sources of payments and refunds of money (by the record's id).
PAYMENT_SOURCE = "sales.payment"
MONEY_REFUND_SOURCE = "sales.refund"
MAX_ALLOCATIONS = 100


class CreditLimitExceeded(Conflict):
    code = "credit_limit_exceeded"


class PaymentRequired(Conflict):
    code = "payment_required"


class RefundExceedsCredit(Conflict):
    code = "refund_exceeds_credit"


class MeterNotInstalled(Conflict):
    code = "meter_not_installed"


def receivable_account(customer_id: UUID) -> str:
    return postings.receivable(customer_id)


# --- the customer's account row ------------------------------------------------------------


def _ensure_accounts(customer_ids: Sequence[UUID]) -> None:
    """Each customer's account row, made if missing (a customer made after migration 0004)."""
    CustomerAccount.objects.bulk_create(
        [CustomerAccount(customer_id=customer_id) for customer_id in sorted(set(customer_ids))],
        ignore_conflicts=True,
    )


def _shift(
    customer_id: UUID,
    *,
    balance: int = 0,
    credit: int = 0,
    limit: int | None = None,
) -> bool:
    """Add to the account's balance and credit in one guarded UPDATE; False when the guard
    refused it (the balance would pass `limit`, or the credit would go below 0)."""
    rows = CustomerAccount.objects.filter(pk=customer_id)
    if limit is not None:
        rows = rows.filter(balance_minor__lte=limit - balance)
    if credit < 0:
        rows = rows.filter(credit_minor__gte=-credit)
    updated = rows.update(
        balance_minor=F("balance_minor") + balance, credit_minor=F("credit_minor") + credit
    )
    return updated == 1


def _credit_of(customer_id: UUID) -> int:
    return int(
        CustomerAccount.objects.filter(pk=customer_id).values_list("credit_minor", flat=True)[0]
    )


@dataclass
class Applied:
    """Money applied to invoices by one operation: the rows' views and their audit changes."""

    views: list[AllocationView] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    @property
    def total_minor(self) -> int:
        return sum(view.amount_minor for view in self.views)


def _apply_credit(
    customer: Customer,
    *,
    named: Sequence[tuple[UUID, int]] = (),
    payment: Payment | None = None,
) -> Applied:
    """Apply the customer's credit to its open invoices: `named` first, then oldest first.
    The caller has already updated the account row this transaction (it holds its lock)."""
    credit = _credit_of(customer.pk)
    if credit == 0 and not named:
        return Applied()
    items = [
        invariants.OpenItem(item.invoice_id, item.open_minor) for item in open_items(customer.pk)
    ]
    plan = invariants.allocate(credit, items, list(named))
    if not plan:
        return Applied()
    now = timezone.now()
    rows = [
        Allocation(
            id=uuid4(),
            customer_id=customer.pk,
            invoice_id=invoice_id,
            payment=payment,
            amount_minor=amount,
            created_at=now,
        )
        for invoice_id, amount in plan
    ]
    Allocation.objects.bulk_create(rows)
    total = sum(row.amount_minor for row in rows)
    if not _shift(customer.pk, credit=-total):  # unreachable: read under the row's lock
        raise Conflict("the customer's credit changed while it was applied")
    applied = Applied()
    for row in rows:
        view = allocation_view(row)
        applied.views.append(view)
        applied.changes.append(
            Change("allocation", str(view.id), None, view, owner_id=customer.user_id)
        )
    return applied


def _wire_allocations(applied: Applied) -> list[dict[str, Any]]:
    return [view.wire for view in applied.views]


# --- journal ----------------------------------------------------------------------------------


def _money_spec(code: str) -> AccountSpec:
    return AccountSpec(code, AccountKind.ASSET, _ACCOUNT_NAMES[code])


def _receivable_spec(customer: Customer) -> AccountSpec:
    return AccountSpec(
        receivable_account(customer.pk),
        AccountKind.ASSET,
        f"Receivable from customer {customer.number}",
    )


def post_payment(payment: Payment, customer: Customer, ctx: Context, action: str) -> PostedEntry:
    """Dr the money's account (by method), Cr the customer's receivable. (A method outside
    today's list, on a payment recorded before methods were checked, goes where `other` does.)"""
    money = PAYMENT_ACCOUNTS.get(payment.method, PAYMENT_ACCOUNTS["other"])
    receivable = receivable_account(customer.pk)
    accounts = open_accounts([_money_spec(money), _receivable_spec(customer)])
    return post_entry(
        lines=[
            PostingLine(accounts[money], debit_minor=payment.amount_minor),
            PostingLine(accounts[receivable], credit_minor=payment.amount_minor),
        ],
        memo=f"payment {payment.number} from {customer.number}",
        source_type=PAYMENT_SOURCE,
        source_id=str(payment.pk),
        ctx=ctx,
        action=action,
    )


def post_refund(refund: Refund, customer: Customer, ctx: Context, action: str) -> PostedEntry:
    """Dr the customer's receivable (its credit used up), Cr cash (or the bank that paid)."""
    money = "cash" if refund.method == "cash" else "bank"
    receivable = receivable_account(customer.pk)
    accounts = open_accounts([_money_spec(money), _receivable_spec(customer)])
    return post_entry(
        lines=[
            PostingLine(accounts[receivable], debit_minor=refund.amount_minor),
            PostingLine(accounts[money], credit_minor=refund.amount_minor),
        ],
        memo=f"refund {refund.number} to {customer.number}",
        source_type=MONEY_REFUND_SOURCE,
        source_id=str(refund.pk),
        ctx=ctx,
        action=action,
    )


# --- payments and refunds -----------------------------------------------------------------


def _customer_or_invalid(customer_id: UUID) -> Customer:
    customer = get_customer(customer_id)
    if customer is None:
        raise Invalid.field("customer", "unknown customer")
    return customer


def receive_payment(
    customer: Customer,
    *,
    amount_minor: int,
    method: str,
    ctx: Context,
    action: str,
    named: Sequence[tuple[UUID, int]] = (),
    client_temp_id: str = "",
) -> tuple[dict[str, Any], list[Change]]:
    """Record a payment, credit it to the account, apply it (`named`, then oldest first) and
    post it. Returns its body (the payment, its allocations, what became credit) and changes."""
    _ensure_accounts([customer.pk])
    _shift(customer.pk, balance=-amount_minor, credit=amount_minor)
    payment = Payment.objects.create(
        number=next_number("PAY"),
        customer=customer,
        amount_minor=amount_minor,
        method=method,
        client_temp_id=client_temp_id,
        created_by=ctx.actor.username,
    )
    applied = _apply_credit(customer, named=named, payment=payment)
    posted = post_payment(payment, customer, ctx, action)
    view = payment_view(payment)
    body = {
        **view.wire,
        "allocations": _wire_allocations(applied),
        "unallocated": format_money(amount_minor - applied.total_minor),
    }
    changes = [
        Change("payment", str(view.id), None, view, owner_id=customer.user_id),
        *applied.changes,
        *posted.changes,
    ]
    return body, changes


class AllocationIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    invoice: UUID
    amount_minor: PositiveMoney = Field(alias="amount")


class RecordPayment(Command):
    """Money from a customer: applied to the `allocations` named, the rest to the oldest open
    invoices; what is left is the customer's credit."""

    name = "payment.record"
    customer: UUID
    amount_minor: PositiveMoney = Field(alias="amount")
    method: str
    allocations: tuple[AllocationIn, ...] = ()
    client_temp_id: str = ""

    def validated(self) -> RecordPayment:
        invariants.check_amount_ceiling(self.amount_minor, "amount")
        if len(self.allocations) > MAX_ALLOCATIONS:
            raise Invalid.field("allocations", f"at most {MAX_ALLOCATIONS}")
        seen: set[UUID] = set()
        for index, allocation in enumerate(self.allocations):
            if allocation.invoice in seen:
                raise Invalid.field(f"allocations[{index}].invoice", "named twice")
            seen.add(allocation.invoice)
        if sum(allocation.amount_minor for allocation in self.allocations) > self.amount_minor:
            raise Invalid.field("allocations", "the allocations add up to more than the payment")
        return self.model_copy(update={"method": invariants.clean_method(self.method)})

    def handle(self, ctx: Context) -> Outcome:
        customer = _customer_or_invalid(self.customer)
        body, changes = receive_payment(
            customer,
            amount_minor=self.amount_minor,
            method=self.method,
            ctx=ctx,
            action=self.name,
            named=[(a.invoice, a.amount_minor) for a in self.allocations],
            client_temp_id=self.client_temp_id,
        )
        return Outcome(201, body, changes)


class RecordRefund(Command):
    """Pay back (part of) a customer's credit balance; more than the credit → 409."""

    name = "refund.record"
    customer: UUID
    amount_minor: PositiveMoney = Field(alias="amount")
    method: str
    client_temp_id: str = ""

    def validated(self) -> RecordRefund:
        invariants.check_amount_ceiling(self.amount_minor, "amount")
        return self.model_copy(update={"method": invariants.clean_method(self.method)})

    def handle(self, ctx: Context) -> Outcome:
        customer = _customer_or_invalid(self.customer)
        _ensure_accounts([customer.pk])
        if not _shift(customer.pk, balance=self.amount_minor, credit=-self.amount_minor):
            credit = format_money(_credit_of(customer.pk))
            raise RefundExceedsCredit(
                f"the customer's credit is {credit}", fields={"amount": f"at most {credit}"}
            )
        refund = Refund.objects.create(
            number=next_number("RFD"),
            customer=customer,
            amount_minor=self.amount_minor,
            method=self.method,
            client_temp_id=self.client_temp_id,
            created_by=ctx.actor.username,
        )
        posted = post_refund(refund, customer, ctx, self.name)
        view = refund_view(refund)
        change = Change("refund", str(view.id), None, view, owner_id=customer.user_id)
        return Outcome(201, view, [change, *posted.changes])


# --- meters ---------------------------------------------------------------------------------


def _locked_customer(customer_id: UUID, field_name: str = "customer") -> Customer:
    """The customer's row, locked: meter readings of one customer queue behind it."""
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise Invalid.field(field_name, "unknown customer")
    return customer


class RecordMeterReading(Command):
    """A meter read on its own: the first reading of an installed meter, or a replaced meter's
    (`replaced`: the reading may be below the last one; audited as a replacement)."""

    name = "meter.reading.record"
    customer: UUID
    reading: int
    replaced: bool = False

    def validated(self) -> RecordMeterReading:
        invariants.clean_meter_reading(self.reading)
        return self

    def handle(self, ctx: Context) -> Outcome:
        policy.authorize(ctx.actor, self.name)
        customer = Customer.objects.select_for_update().filter(pk=self.customer).first()
        if customer is None:
            raise NotFound()
        if not customer.meter_installed:
            raise MeterNotInstalled("this customer has no meter installed")
        last = last_meter_reading(customer.pk)
        invariants.check_next_reading(
            last=last, reading=self.reading, replaced=self.replaced, field="reading"
        )
        row = MeterReading.objects.create(
            customer=customer,
            reading=self.reading,
            previous=last,
            replaced=self.replaced,
            recorded_by=ctx.actor.username,
        )
        view = meter_reading_view(row)
        change = Change("meter_reading", str(view.id), None, view, owner_id=customer.user_id)
        return Outcome(201, view, [change])


def bill_meters(command: Any, ctx: Context) -> Any:
    """`command` (a `sale.record`) with each metered line's qty set to the units used since the
    customer's last reading and its price to the customer's meter rate. The customer's row
    stays locked to the end of the transaction, so the reading it bills from stays the last."""
    if not any(line.meter_reading is not None for line in command.lines):
        return command
    policy.authorize(ctx.actor, command.name, location_id=command.location)
    customer = _locked_customer(command.customer)
    last = last_meter_reading(customer.pk)
    lines = []
    for index, line in enumerate(command.lines):
        if line.meter_reading is None:
            lines.append(line)
            continue
        field_name = f"lines[{index}].meter_reading"
        if not customer.meter_installed:
            raise Invalid.field(field_name, "this customer has no meter installed")
        used = invariants.metered_consumption(
            last=last, reading=line.meter_reading, field=field_name
        )
        last = line.meter_reading
        lines.append(
            line.model_copy(update={"qty": used, "unit_price_minor": customer.meter_rate_minor})
        )
    return command.model_copy(update={"lines": tuple(lines)})


def _record_readings(
    sale_id: UUID, customer: Customer, readings: Sequence[int], ctx: Context
) -> list[Change]:
    changes = []
    for reading in readings:
        row = MeterReading.objects.create(
            customer=customer,
            reading=reading,
            previous=last_meter_reading(customer.pk),
            sale_id=sale_id,
            recorded_by=ctx.actor.username,
        )
        view = meter_reading_view(row)
        changes.append(Change("meter_reading", str(view.id), None, view, owner_id=customer.user_id))
    return changes


# --- sales ----------------------------------------------------------------------------------


class SalePayment(BaseModel):
    """Payment taken with a sale: `amount` absent is what the invoice still owes."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: str
    amount_minor: MoneyEdit = Field(default=None, alias="amount")


def clean_sale_payment(payment: SalePayment | None) -> SalePayment | None:
    if payment is None:
        return None
    if payment.amount_minor is not None:
        if payment.amount_minor <= 0:
            raise Invalid.field("payment.amount", "must be more than 0")
        invariants.check_amount_ceiling(payment.amount_minor, "payment.amount")
    try:
        method = invariants.clean_method(payment.method)
    except Invalid as error:
        raise Invalid.field("payment.method", error.message) from error
    return payment.model_copy(update={"method": method})


def refuse_bulk(commands: Sequence[Any], customers: dict[UUID, Customer]) -> None:
    """A run of sales is recorded in bulk only when none needs a decision per sale: no payment,
    no meter, no customer paying cash or held to a credit limit. Otherwise each runs alone."""
    for command in commands:
        customer = customers.get(command.customer)
        if (
            getattr(command, "payment", None) is not None
            or any(line.meter_reading is not None for line in command.lines)
            or (
                customer is not None
                and (
                    customer.payment_terms == PaymentTerms.CASH
                    or customer.credit_limit_minor is not None
                )
            )
        ):
            raise BulkUnavailable("this sale settles its customer's money alone")


@dataclass(frozen=True)
class RaisedInvoice:
    """An invoice just raised by a sale, and what came with the sale."""

    sale_id: UUID
    invoice_id: UUID
    total_minor: int
    customer: Customer
    ctx: Context
    payment: SalePayment | None = None
    meter_readings: tuple[int, ...] = ()


def settle_invoices(
    raised: Sequence[RaisedInvoice], *, alone: bool = True
) -> list[tuple[list[Change], dict[str, Any]]]:
    """The money side of invoices just raised, in order: each customer's balance grows by the
    invoice (a credit customer's up to its limit, unless a manager sells), the customer's
    credit is applied to it, a payment taken with the sale is received, and a cash customer's
    invoice must be paid in full. Returns, per invoice, its changes and what the sale's body
    adds (`payment`). Raises (rolling the sale back) when one is refused.

    Not `alone`: a bulk run, which `refuse_bulk` let through only when no invoice of it can be
    refused, is settled in a few statements per customer instead of a few per invoice."""
    _ensure_accounts([entry.customer.pk for entry in raised])
    if not alone:
        return _settle_run(raised)
    return [_settle_invoice(entry) for entry in raised]


def _settle_run(raised: Sequence[RaisedInvoice]) -> list[tuple[list[Change], dict[str, Any]]]:
    """Each customer's balance grows by its invoices at once; a customer holding credit (so
    nothing of it was open before) has it applied oldest first, to these invoices in order,
    exactly as if each had been raised alone."""
    totals: dict[UUID, int] = {}
    customers: dict[UUID, Customer] = {}
    for entry in raised:
        totals[entry.customer.pk] = totals.get(entry.customer.pk, 0) + entry.total_minor
        customers[entry.customer.pk] = entry.customer
    for customer_id in sorted(totals):  # one row lock order for every run
        _shift(customer_id, balance=totals[customer_id])
    holding = CustomerAccount.objects.filter(pk__in=list(totals), credit_minor__gt=0)
    by_invoice: dict[UUID, list[Change]] = {}
    for customer_id in sorted(holding.values_list("pk", flat=True)):
        applied = _apply_credit(customers[customer_id])
        for view, change in zip(applied.views, applied.changes, strict=True):
            by_invoice.setdefault(view.invoice_id, []).append(change)
    return [(by_invoice.get(entry.invoice_id, []), {}) for entry in raised]


def _settle_invoice(entry: RaisedInvoice) -> tuple[list[Change], dict[str, Any]]:
    customer, ctx = entry.customer, entry.ctx
    changes = _record_readings(entry.sale_id, customer, entry.meter_readings, ctx)
    limit = customer.credit_limit_minor
    if customer.payment_terms == PaymentTerms.CASH or permissions.allows(
        ctx.actor, "sale.over_credit_limit"
    ):
        limit = None  # paid now (checked below), or a manager's decision
    # A payment taken with the sale counts against the limit (the guard nets it), and is then
    # booked by `receive_payment` like any other.
    paying = 0 if entry.payment is None else entry.payment.amount_minor or 0
    if not _shift(customer.pk, balance=entry.total_minor - paying, limit=limit):
        raise CreditLimitExceeded(
            f"this sale takes {customer.number} over its credit limit of {format_money(limit or 0)}",
            fields={"customer": "over its credit limit; a manager may record this sale"},
        )
    if paying:
        _shift(customer.pk, balance=paying)
    applied = _apply_credit(customer, named=[])
    changes += applied.changes
    due = entry.total_minor - sum(
        view.amount_minor for view in applied.views if view.invoice_id == entry.invoice_id
    )
    extra: dict[str, Any] = {}
    if entry.payment is not None:
        policy.authorize(ctx.actor, "payment.record")  # as if recorded on its own
        amount = due if entry.payment.amount_minor is None else entry.payment.amount_minor
        if amount > 0:
            named = [(entry.invoice_id, min(amount, due))] if due > 0 else []
            body, paid = receive_payment(
                customer,
                amount_minor=amount,
                method=entry.payment.method,
                ctx=ctx,
                action="payment.record",
                named=named,
            )
            extra["payment"] = body
            changes += paid
            due -= min(amount, due)
    if customer.payment_terms == PaymentTerms.CASH and due > 0:
        raise PaymentRequired(
            f"a cash customer pays at the sale: {format_money(due)} is due",
            fields={"payment": f"{format_money(due)} is due with this sale"},
        )
    return changes, extra


# --- credit notes -------------------------------------------------------------------------


def credit_note_issued(
    customer: Customer, *, total_minor: int, invoice: Invoice | None
) -> list[Change]:
    """A credit note lowers what the customer owes. Voiding an invoice frees what was applied to
    it (back to credit); a credit note on no invoice (a deposit refunded) is credit itself.
    Either way the credit then goes to the oldest open invoices."""
    _ensure_accounts([customer.pk])
    freed = total_minor
    if invoice is not None:
        freed = sum(
            Allocation.objects.filter(invoice=invoice).values_list("amount_minor", flat=True)
        )
    _shift(customer.pk, balance=-total_minor, credit=freed)
    return _apply_credit(customer).changes
