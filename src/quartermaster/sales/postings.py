"""Sales money in the journal and the deposits customers hold: the one place the sales
commands post from, each in the command's own transaction.

- a confirmed sale's invoice: DR customer_receivable:<c> the total; CR sales_revenue the net,
  tax_payable the tax, customer_deposits:<c> the deposits charged (a liability: a deposit is
  owed back, never revenue). Its deposit lines are also added to the customer's deposits.
- a voided sale: the invoice's entry reversed, its deposits taken off again.
- payments and refunds of money: sales.credit posts them.
- a deposit refunded on a return: DR customer_deposits:<c> CR cash (paid out) or CR
  customer_receivable:<c> (credited to the account).
- backfill (`quartermaster journal backfill`, sales.backfill): the same entries and deposits
  for records made before the journal existed, each part posted only when it is missing.

Every function returns the records it changed for the caller's Outcome, so the pipeline audits
the entry with the command that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db.models import Sum

from quartermaster.core.types import Change, Context
from quartermaster.journal import invariants as journal_rules
from quartermaster.journal.invariants import AccountSpec, PostingLine
from quartermaster.journal.selectors import find_posting, reversal_of
from quartermaster.journal.services import (
    EntryRequest,
    open_accounts,
    post_entries,
    reverse_entry,
)
from quartermaster.sales.invariants import InvoiceLineKind, RefundMethod, deposit_refund
from quartermaster.sales.models import DepositMovement, Invoice, InvoiceLine
from quartermaster.sales.selectors import deposit_movement_view

INVOICE_SOURCE = "sales.invoice"
REFUND_SOURCE = "sales.deposit_refund"
# The action an entry posted by `quartermaster journal backfill` names (sales.backfill).
BACKFILL_ACTION = "journal.backfill"


def receivable(customer_id: UUID) -> str:
    return f"customer_receivable:{customer_id}"


def deposits(customer_id: UUID) -> str:
    return f"customer_deposits:{customer_id}"


@dataclass(frozen=True)
class _Side:
    code: str
    debit_minor: int = 0
    credit_minor: int = 0
    memo: str = ""


@dataclass(frozen=True)
class _Posting:
    sides: Sequence[_Side]
    memo: str
    source: tuple[str, str]
    ctx: Context
    action: str


def _post(
    sides: Sequence[_Side], *, memo: str, source: tuple[str, str], ctx: Context, action: str
) -> list[Change]:
    [changes] = _post_many([_Posting(sides, memo, source, ctx, action)])
    return changes


def _post_many(postings: Sequence[_Posting]) -> list[list[Change]]:
    """Post each posting's sides that move money (a zero tax or deposit is no line; a posting
    where nothing moves, a free sale, is no entry), all in a handful of statements: the
    accounts opened together, the entries written together."""
    moving = [
        [side for side in posting.sides if side.debit_minor or side.credit_minor]
        for posting in postings
    ]
    specs = []
    for code in dict.fromkeys(side.code for sides in moving for side in sides):
        known = journal_rules.chart_entry(code)
        assert known is not None, code  # every code here is in the chart
        specs.append(AccountSpec(code, known.kind, known.name))
    accounts = open_accounts(specs)
    requests = [
        EntryRequest(
            lines=[
                PostingLine(accounts[side.code], side.debit_minor, side.credit_minor, side.memo)
                for side in sides
            ],
            memo=posting.memo,
            source_type=posting.source[0],
            source_id=posting.source[1],
            ctx=posting.ctx,
            action=posting.action,
        )
        for posting, sides in zip(postings, moving, strict=True)
        if sides
    ]
    posted = iter(post_entries(requests))
    return [next(posted).changes if sides else [] for sides in moving]


def sale_confirmed(invoice: Invoice, lines: Sequence[InvoiceLine], ctx: Context) -> list[Change]:
    """The invoice raised by confirming a sale: its entry, and the deposits it charged."""
    [changes] = sales_confirmed([(invoice, lines, ctx)])
    return changes


def sales_confirmed(
    invoices: Sequence[tuple[Invoice, Sequence[InvoiceLine], Context]],
) -> list[list[Change]]:
    """`sale_confirmed` for a run of sales (a bulk sync run) in a handful of statements; the
    changes of each, in order."""
    entries = _post_many(
        [_invoice_posting(invoice, ctx, "sale.confirm") for invoice, _, ctx in invoices]
    )
    held = [_deposits_charged(invoice, lines) for invoice, lines, _ in invoices]
    written = iter(_deposit_changes([row for rows in held for row in rows]))
    return [
        changes + [next(written) for _ in rows] for changes, rows in zip(entries, held, strict=True)
    ]


def _invoice_posting(invoice: Invoice, ctx: Context, action: str) -> _Posting:
    return _Posting(
        [
            _Side(receivable(invoice.customer_id), debit_minor=invoice.total_minor),
            _Side("sales_revenue", credit_minor=invoice.subtotal_minor),
            _Side("tax_payable", credit_minor=invoice.tax_minor),
            _Side(deposits(invoice.customer_id), credit_minor=invoice.deposit_minor),
        ],
        memo=f"invoice {invoice.number}",
        source=(INVOICE_SOURCE, str(invoice.id)),
        ctx=ctx,
        action=action,
    )


def _deposits_charged(invoice: Invoice, lines: Sequence[InvoiceLine]) -> list[DepositMovement]:
    """The invoice's deposit lines, one movement per item."""
    held: dict[UUID, list[int]] = {}
    for line in lines:
        if line.kind == InvoiceLineKind.DEPOSIT:
            total = held.setdefault(line.item_id, [0, 0])
            total[0] += line.qty
            total[1] += line.total_minor
    return [
        DepositMovement(
            customer_id=invoice.customer_id,
            item_id=item_id,
            qty=qty,
            amount_minor=amount,
            source=f"invoice:{invoice.id}",
        )
        for item_id, (qty, amount) in held.items()
    ]


def sale_voided(invoice: Invoice, *, reason: str, ctx: Context) -> list[Change]:
    """A voided sale's invoice: its entry reversed and its deposits taken off the customer's."""
    changes: list[Change] = []
    entry = find_posting(INVOICE_SOURCE, str(invoice.id))
    if entry is not None:
        changes += reverse_entry(entry, reason=reason, ctx=ctx, action="sale.void").changes
    return changes + _deposit_changes(_deposits_voided(invoice))


def _deposits_voided(invoice: Invoice) -> list[DepositMovement]:
    """The deposits `invoice` charged, taken off again (nothing: it charged none)."""
    charged = DepositMovement.objects.filter(
        customer_id=invoice.customer_id, source=f"invoice:{invoice.id}"
    ).order_by("pk")
    return [
        DepositMovement(
            customer_id=row.customer_id,
            item_id=row.item_id,
            qty=-row.qty,
            amount_minor=-row.amount_minor,
            source=f"void:{invoice.id}",
        )
        for row in charged
    ]


@dataclass(frozen=True)
class Refund:
    """Deposits refunded for one item of a return."""

    item_id: UUID
    qty: int
    amount_minor: int


def refunds_for(customer_id: UUID, returned: dict[UUID, int]) -> list[Refund]:
    """What a return of `returned` units per item refunds: per item, at most the units the
    customer holds deposits on, each at the average held (`invariants.deposit_refund`)."""
    held = {
        row["item_id"]: (int(row["qty"]), int(row["amount"]))
        for row in DepositMovement.objects.filter(customer_id=customer_id, item_id__in=returned)
        .values("item_id")
        .annotate(qty=Sum("qty"), amount=Sum("amount_minor"))
    }
    refunds = []
    for item_id, qty in returned.items():
        held_qty, held_minor = held.get(item_id, (0, 0))
        units, amount = deposit_refund(held_qty=held_qty, held_minor=held_minor, returned_qty=qty)
        if units:
            refunds.append(Refund(item_id, units, amount))
    return refunds


def deposit_refunded(
    *,
    customer_id: UUID,
    refunds: Sequence[Refund],
    method: str,
    source_id: str,
    ctx: Context,
) -> list[Change]:
    """Deposits paid back on a return: off the customer's deposits, out of the till (cash) or
    onto the customer's account (credit)."""
    total = sum(refund.amount_minor for refund in refunds)
    changes = _refund_entry(customer_id, total, method, source_id, ctx, "asset.return")
    moved = [
        DepositMovement(
            customer_id=customer_id,
            item_id=refund.item_id,
            qty=-refund.qty,
            amount_minor=-refund.amount_minor,
            source=f"return:{source_id}",
        )
        for refund in refunds
    ]
    return changes + _deposit_changes(moved)


def _refund_entry(
    customer_id: UUID, total_minor: int, method: str, source_id: str, ctx: Context, action: str
) -> list[Change]:
    other = "cash" if method == RefundMethod.CASH else receivable(customer_id)
    return _post(
        [
            _Side(deposits(customer_id), debit_minor=total_minor),
            _Side(other, credit_minor=total_minor),
        ],
        memo=f"deposit refunded on return ({method})",
        source=(REFUND_SOURCE, source_id),
        ctx=ctx,
        action=action,
    )


# -- backfill: what the functions above would have posted, for records made before them --


def backfill_invoice(
    invoice: Invoice, lines: Sequence[InvoiceLine], *, void_reason: str | None, ctx: Context
) -> list[Change]:
    """The parts of `sale_confirmed` (and, for a voided sale, `void_reason` given, of
    `sale_voided`) missing for `invoice`, posted now as `journal.backfill`: its entry, the
    deposits it charged, the entry's reversal, the deposits taken off. Each part is looked
    for first, so a part already there is never posted twice. The caller holds the sale's row."""
    changes: list[Change] = []
    entry = find_posting(INVOICE_SOURCE, str(invoice.id))
    if entry is None:
        [posted] = _post_many([_invoice_posting(invoice, ctx, BACKFILL_ACTION)])
        changes += posted
        entry = find_posting(INVOICE_SOURCE, str(invoice.id))  # None: a free sale posts none
    held = DepositMovement.objects.filter(customer_id=invoice.customer_id)
    if not held.filter(source=f"invoice:{invoice.id}").exists():
        changes += _deposit_changes(_deposits_charged(invoice, lines))
    if void_reason is None:
        return changes
    if entry is not None and reversal_of(entry) is None:
        changes += reverse_entry(entry, reason=void_reason, ctx=ctx, action=BACKFILL_ACTION).changes
    if not held.filter(source=f"void:{invoice.id}").exists():
        changes += _deposit_changes(_deposits_voided(invoice))
    return changes


def backfill_deposit_refund(
    customer_id: UUID, total_minor: int, method: str, source_id: str, ctx: Context
) -> list[Change]:
    """The entry of a deposit refund whose movements are there without it (`deposit_refunded`'s
    posting alone); nothing when it is there."""
    if total_minor <= 0 or find_posting(REFUND_SOURCE, source_id) is not None:
        return []
    return _refund_entry(customer_id, total_minor, method, source_id, ctx, BACKFILL_ACTION)


def _deposit_changes(moved: list[DepositMovement]) -> list[Change]:
    """Write the deposit movements; each is audited (not replicated: money stays on the server)."""
    if not moved:
        return []
    written = DepositMovement.objects.bulk_create(moved)
    changes = []
    for row in written:
        # (SQLite and PostgreSQL both return the new ids from bulk_create.)
        view = deposit_movement_view(row)
        changes.append(Change("customer_deposit", str(row.pk), None, view, publish=False))
    return changes
