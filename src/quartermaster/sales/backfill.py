"""Journal entries and deposit movements for sales money recorded before the journal existed.

A database upgraded from before the journal holds confirmed and voided sales, payments and
refunds with no entries, and no deposit movements: `journal verify` passes (what is there
balances) while the receivables are missing. `quartermaster journal backfill` reads what is
missing (`plan`) and runs one `journal.backfill` command per record, through the pipeline
(audited, one transaction each): it posts what sales.postings and sales.credit would have
posted, as of now, under the action `journal.backfill`.

Idempotent by record: the handler locks the record's row and looks for each part before posting
it (an invoice's entry by its source, `sales.invoice`/<invoice id>, its reversal, its deposit
movements by `invoice:`/`void:` source; a payment's or refund's entry by its id), so a second run,
or two at once, post nothing more. A return's deposit refund is posted when its deposit
movements are there without its entry (a return made before deposits existed refunded none).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from uuid import UUID

from django.db.models import QuerySet, Sum

from quartermaster.core.commands import Command
from quartermaster.core.errors import NotFound
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.journal.selectors import find_posting, posted_sources
from quartermaster.sales import credit, postings
from quartermaster.sales.invariants import CreditNoteKind, InvoiceLineKind, SaleStatus
from quartermaster.sales.models import (
    CreditNote,
    DepositMovement,
    Invoice,
    InvoiceLine,
    Payment,
    Refund,
    SaleTransaction,
)

RecordKind = Literal["sale", "payment", "refund", "return"]
_RETURN_PREFIX = "return:"


@dataclass(frozen=True)
class Unposted:
    """A record whose postings are (partly) missing: `amount_minor` is the money its missing
    entry moves (an invoice's total, a payment, a refund), 0 when only deposits or a reversal
    are missing."""

    kind: RecordKind
    id: UUID
    number: str
    amount_minor: int
    voided: bool = False


@dataclass(frozen=True)
class Plan:
    records: list[Unposted] = field(default_factory=list)

    def of(self, kind: str) -> list[Unposted]:
        return [record for record in self.records if record.kind == kind]


def plan() -> Plan:
    """Every sales record whose journal entry or deposit movements are missing, oldest first
    per kind: sales, then returns, payments, refunds."""
    return Plan([*_unposted_sales(), *_unposted_returns(), *_unposted_money()])


def _unposted_sales() -> list[Unposted]:
    posted, reversed_ = posted_sources(postings.INVOICE_SOURCE)
    deposit_sources = set(DepositMovement.objects.values_list("source", flat=True).distinct())
    with_deposits = {
        str(invoice_id)
        for invoice_id in InvoiceLine.objects.filter(kind=InvoiceLineKind.DEPOSIT)
        .values_list("invoice_id", flat=True)
        .distinct()
    }
    rows = (
        Invoice.objects.filter(sale__status__in=[SaleStatus.CONFIRMED, SaleStatus.VOIDED])
        .order_by("created_at", "number")
        .values_list("id", "total_minor", "sale_id", "sale__number", "sale__status")
    )
    found = []
    for invoice_id, total_minor, sale_id, sale_number, status in rows.iterator(chunk_size=2000):
        invoice, voided = str(invoice_id), status == SaleStatus.VOIDED
        entry_missing = total_minor > 0 and invoice not in posted
        missing = (
            entry_missing
            or (voided and total_minor > 0 and invoice not in reversed_)
            or (invoice in with_deposits and f"invoice:{invoice}" not in deposit_sources)
            or (voided and invoice in with_deposits and f"void:{invoice}" not in deposit_sources)
        )
        if missing:
            amount = total_minor if entry_missing else 0
            found.append(Unposted("sale", sale_id, sale_number, amount, voided))
    return found


def _unposted_returns() -> list[Unposted]:
    posted, _ = posted_sources(postings.REFUND_SOURCE)
    refunded = (
        DepositMovement.objects.filter(source__startswith=_RETURN_PREFIX)
        .values("source")
        .annotate(amount=Sum("amount_minor"))
        .order_by("source")
    )
    found = []
    for row in refunded:
        movement = row["source"].removeprefix(_RETURN_PREFIX)
        if movement not in posted and -int(row["amount"]) > 0:
            found.append(Unposted("return", UUID(movement), movement, -int(row["amount"])))
    return found


def _unposted_money() -> list[Unposted]:
    payments = _unposted_of("payment", Payment.objects.all(), credit.PAYMENT_SOURCE)
    return payments + _unposted_of("refund", Refund.objects.all(), credit.MONEY_REFUND_SOURCE)


def _unposted_of(kind: RecordKind, records: QuerySet[Any], source_type: str) -> list[Unposted]:
    """The payments or refunds (`records`) with no entry of `source_type`, oldest first."""
    posted, _ = posted_sources(source_type)
    rows = records.order_by("created_at", "number").values_list("id", "number", "amount_minor")
    return [
        Unposted(kind, record_id, number, amount)
        for record_id, number, amount in rows.iterator(chunk_size=2000)
        if str(record_id) not in posted
    ]


class BackfillPostings(Command):
    """Post what is missing of one sales record's journal entries and deposit movements
    (`record`: sale, payment, refund, or return by its movement's id). Again: nothing."""

    name = "journal.backfill"
    # An operator's upgrade tool (CLI), never a device op.
    syncable: ClassVar[bool] = False
    record: RecordKind
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        handlers = {
            "sale": _backfill_sale,
            "payment": _backfill_payment,
            "refund": _backfill_refund,
            "return": _backfill_return,
        }
        changes = handlers[self.record](self.id, ctx)
        body = {
            "record": self.record,
            "id": str(self.id),
            "entries": [c.entity_id for c in changes if c.entity_type == "journal_entry"],
            "deposit_movements": sum(c.entity_type == "customer_deposit" for c in changes),
        }
        return Outcome(200, body, changes)


def _backfill_sale(sale_id: UUID, ctx: Context) -> list[Change]:
    # The sale's row, as confirm and void lock it: a void running meanwhile waits, or is seen.
    sale = SaleTransaction.objects.select_for_update().filter(pk=sale_id).first()
    if sale is None:
        raise NotFound()
    invoice = Invoice.objects.filter(sale=sale).first()
    if invoice is None or sale.status == SaleStatus.DRAFT:
        return []  # a draft, or a draft voided: nothing was invoiced
    lines = list(invoice.lines.order_by("line_no"))
    reason = sale.void_reason if sale.status == SaleStatus.VOIDED else None
    return postings.backfill_invoice(invoice, lines, void_reason=reason, ctx=ctx)


def _backfill_payment(payment_id: UUID, ctx: Context) -> list[Change]:
    payment = (
        Payment.objects.select_for_update().select_related("customer").filter(pk=payment_id).first()
    )
    if payment is None:
        raise NotFound()
    if find_posting(credit.PAYMENT_SOURCE, str(payment_id)) is not None:
        return []
    return credit.post_payment(payment, payment.customer, ctx, postings.BACKFILL_ACTION).changes


def _backfill_refund(refund_id: UUID, ctx: Context) -> list[Change]:
    refund = (
        Refund.objects.select_for_update().select_related("customer").filter(pk=refund_id).first()
    )
    if refund is None:
        raise NotFound()
    if find_posting(credit.MONEY_REFUND_SOURCE, str(refund_id)) is not None:
        return []
    return credit.post_refund(refund, refund.customer, ctx, postings.BACKFILL_ACTION).changes


def _backfill_return(movement_id: UUID, ctx: Context) -> list[Change]:
    """A return's deposit refund: the movements say how much and whose; a deposit-refund credit
    note on the return's movement says it was credited, none that it was paid out in cash."""
    source = f"{_RETURN_PREFIX}{movement_id}"
    rows = list(DepositMovement.objects.select_for_update().filter(source=source).order_by("pk"))
    if not rows:
        raise NotFound()
    totals: dict[UUID, int] = defaultdict(int)
    for row in rows:
        totals[row.customer_id] -= row.amount_minor
    [(customer_id, total_minor)] = totals.items()  # one return, one customer
    credited = CreditNote.objects.filter(
        kind=CreditNoteKind.DEPOSIT_REFUND, movement_id=movement_id
    ).exists()
    method = "credit" if credited else "cash"
    return postings.backfill_deposit_refund(customer_id, total_minor, method, str(movement_id), ctx)
