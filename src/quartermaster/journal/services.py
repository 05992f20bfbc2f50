"""Posting to the journal: the one way money is written, for every domain.

Other domains call `account` and `post_entry` from inside their own command handlers, in their
transaction, and add the returned `changes` to their Outcome (so the pipeline audits the entry
with the command that caused it). `journal.post` (manual adjustments) and `journal.reverse` are
the journal's own commands.

Posting, in the caller's transaction: check the lines balance (`invariants.check_balanced`),
take the next gap-free number, write the lines, then the entry row that closes them (the
database checks they balance: migrations/0002), then add the lines to each account's balance
with a guarded UPDATE, one account at a time in account-id order so that two postings to the
same accounts queue instead of deadlocking.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import connection
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core.commands import Command
from quartermaster.core.errors import Conflict, Invalid, NotFound
from quartermaster.core.money import MoneyEdit
from quartermaster.core.numbering import next_numbers
from quartermaster.core.rows import insert_rows, new_row, uuid_param
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.journal import invariants
from quartermaster.journal.invariants import AccountKind, AccountRef, PostingLine
from quartermaster.journal.models import Account, AccountBalance, Entry, Line
from quartermaster.journal.selectors import (
    EntryView,
    LineView,
    account_ref,
    get_account,
    opened_account_view,
)

SERIES = "JE"


class AccountKindMismatch(Conflict):
    code = "account_kind_mismatch"


class AlreadyReversed(Conflict):
    code = "already_reversed"


class BalanceOverflow(Conflict):
    code = "balance_overflow"


@dataclass(frozen=True)
class PostedEntry:
    """A posted entry, and the records it changed for the caller's Outcome."""

    view: EntryView
    changes: list[Change]


def account(code: str, kind: str, name: str) -> AccountRef:
    """The account `code`, opened now (with its balance row) if it is new, inside the caller's
    transaction. Race-safe on both databases: the INSERT skips a code that exists, and on
    PostgreSQL waits for a concurrent transaction opening the same code, then reads its row.
    Several accounts: `open_accounts`, which opens them in an order that cannot deadlock."""
    code = invariants.clean_code(code, "code")
    if kind not in AccountKind.values:
        raise Invalid.field("kind", f"one of {', '.join(AccountKind.values)}")
    name = invariants.clean_name(name)
    candidate = Account(id=uuid.uuid4(), code=code, name=name, kind=kind, opened_at=timezone.now())
    Account.objects.bulk_create([candidate], ignore_conflicts=True)
    found = Account.objects.get(code=code)
    if found.kind != kind:
        raise AccountKindMismatch(
            f"account {code} is a {found.kind} account, not {kind}", fields={"code": "kind differs"}
        )
    opened = found.id == candidate.id
    if opened:
        AccountBalance.objects.bulk_create([AccountBalance(account_id=found.id)])
    ref = account_ref(found)
    return AccountRef(ref.id, ref.code, ref.name, ref.kind, opened=opened)


def open_accounts(specs: Sequence[invariants.AccountSpec]) -> dict[str, AccountRef]:
    """`account` for several accounts, by code, in three statements whatever their number (a
    bulk run of sales opens its customers' accounts here). Inserted in code order: two
    transactions opening the same new accounts then wait for each other in one order, never in
    a cycle (each waits on the other's uncommitted INSERT otherwise: a deadlock, measured on
    PostgreSQL). A handler that opens more than one account opens them here, together, before
    it posts."""
    wanted: dict[str, Account] = {}
    for spec in sorted(specs, key=lambda spec: spec.code):
        code = invariants.clean_code(spec.code, "code")
        if spec.kind not in AccountKind.values:
            raise Invalid.field("kind", f"one of {', '.join(AccountKind.values)}")
        wanted.setdefault(
            code,
            Account(
                id=uuid.uuid4(),
                code=code,
                name=invariants.clean_name(spec.name),
                kind=spec.kind,
                opened_at=timezone.now(),
            ),
        )
    if not wanted:
        return {}
    Account.objects.bulk_create(list(wanted.values()), ignore_conflicts=True)
    found = {row.code: row for row in Account.objects.filter(code__in=list(wanted))}
    refs: dict[str, AccountRef] = {}
    for code, candidate in wanted.items():
        row = found[code]
        if row.kind != candidate.kind:
            raise AccountKindMismatch(
                f"account {code} is a {row.kind} account, not {candidate.kind}",
                fields={"code": "kind differs"},
            )
        ref = account_ref(row)
        refs[code] = AccountRef(ref.id, ref.code, ref.name, ref.kind, opened=row.id == candidate.id)
    opened = [AccountBalance(account_id=ref.id) for ref in refs.values() if ref.opened]
    if opened:
        AccountBalance.objects.bulk_create(opened)
    return refs


def post_entry(
    *,
    lines: Sequence[PostingLine],
    memo: str,
    source_type: str,
    source_id: str,
    ctx: Context,
    action: str,
    reverses: UUID | None = None,
) -> PostedEntry:
    """Post a balanced entry in the caller's transaction. Raises `invariants.Unbalanced` (400)
    with nothing written, or `BalanceOverflow` (409) for the caller's transaction to roll back."""
    request = EntryRequest(lines, memo, source_type, source_id, ctx, action, reverses)
    [posted] = post_entries([request])
    return posted


@dataclass(frozen=True)
class EntryRequest:
    """One entry `post_entries` posts: `post_entry`'s arguments."""

    lines: Sequence[PostingLine]
    memo: str
    source_type: str
    source_id: str
    ctx: Context
    action: str
    reverses: UUID | None = None


def post_entries(requests: Sequence[EntryRequest]) -> list[PostedEntry]:
    """`post_entry` for many entries in a handful of statements, in order (a bulk run of
    sales posts its invoices here): one block of numbers, one INSERT of every line, one of
    every entry, one guarded UPDATE per account touched. All are checked before any is
    written."""
    checked = [
        (
            request,
            invariants.check_balanced(request.lines),
            invariants.clean_source(request.source_type, request.source_id),
        )
        for request in requests
    ]
    if not checked:
        return []
    now = timezone.now()
    numbers = next_numbers(SERIES, len(checked))
    views = [
        EntryView(
            id=uuid.uuid4(),
            number=number,
            seq=int(number.rpartition("-")[2]),
            posted_at=now,
            memo=invariants.clean_memo(request.memo),
            action=request.action,
            posted_by=request.ctx.actor.username,
            source_type=source[0],
            source_id=source[1],
            reverses=request.reverses,
            lines=tuple(
                LineView(
                    line.account.code,
                    line.debit_minor,
                    line.credit_minor,
                    invariants.clean_memo(line.memo, f"lines[{index}].memo"),
                )
                for index, line in enumerate(request.lines)
            ),
        )
        for (request, _, source), number in zip(checked, numbers, strict=True)
    ]
    _write(
        [
            (view, totals, request.lines)
            for view, (request, totals, _) in zip(views, checked, strict=True)
        ]
    )
    _add_to_balances([line for request in requests for line in request.lines])
    posted = []
    announced: set[UUID] = set()
    for view, request in zip(views, requests, strict=True):
        # An account opened for this run is audited with the first entry that uses it.
        opened = [
            line
            for line in request.lines
            if line.account.opened and line.account.id not in announced
        ]
        announced.update(line.account.id for line in opened)
        posted.append(PostedEntry(view, [*_opened_accounts(opened), _entry_change(view)]))
    return posted


def _write(
    entries: Sequence[tuple[EntryView, invariants.Totals, Sequence[PostingLine]]],
) -> None:
    """The lines first, then the entry rows that close them: SQLite checks, when an entry row
    arrives, that the lines already written are the ones it claims (migrations/0002)."""
    insert_rows(
        Line,
        [
            new_row(
                Line,
                id=None,
                entry_id=view.id,
                line_no=index + 1,
                account_id=posting.account.id,
                debit_minor=line.debit_minor,
                credit_minor=line.credit_minor,
                memo=line.memo,
            )
            for view, _, postings in entries
            for index, (line, posting) in enumerate(zip(view.lines, postings, strict=True))
        ],
    )
    insert_rows(
        Entry,
        [
            new_row(
                Entry,
                id=view.id,
                seq=view.seq,
                number=view.number,
                posted_at=view.posted_at,
                memo=view.memo,
                action=view.action,
                posted_by=view.posted_by,
                source_type=view.source_type,
                source_id=view.source_id,
                reverses_id=view.reverses,
                line_count=totals.line_count,
                debit_total_minor=totals.debit_minor,
                credit_total_minor=totals.credit_minor,
            )
            for view, totals, _ in entries
        ],
    )


def _entry_change(view: EntryView) -> Change:
    # Money is not replicated to devices: audited, not in the change feed.
    return Change("journal_entry", str(view.id), None, view, publish=False)


def _opened_accounts(lines: Sequence[PostingLine]) -> list[Change]:
    """An account opened for this entry is audited with it."""
    opened = {line.account.id: line.account for line in lines if line.account.opened}
    return [
        Change(
            "journal_account",
            str(ref.id),
            None,
            opened_account_view(ref),
            publish=False,
        )
        for ref in opened.values()
    ]


# Guarded, atomic: the totals grow in the database, never read-modify-written here, and a sum
# that would leave 63 bits is refused by the WHERE rather than wrapping or failing in the driver.
_ADD_SQL = (
    "UPDATE journal_accountbalance "
    "SET debit_total_minor = debit_total_minor + %s, credit_total_minor = credit_total_minor + %s "
    "WHERE account_id = %s AND debit_total_minor <= %s AND credit_total_minor <= %s"
)


def _add_to_balances(lines: Sequence[PostingLine]) -> None:
    per_account: dict[UUID, list[int]] = {}
    for line in lines:
        total = per_account.setdefault(line.account.id, [0, 0])
        total[0] += line.debit_minor
        total[1] += line.credit_minor
    limit = invariants.MAX_TOTAL_MINOR
    with connection.cursor() as cursor:
        # Account-id order: every posting takes these row locks in the same order.
        for account_id in sorted(per_account):
            debits, credits = per_account[account_id]
            cursor.execute(
                _ADD_SQL, [debits, credits, uuid_param(account_id), limit - debits, limit - credits]
            )
            if cursor.rowcount != 1:
                raise BalanceOverflow("an account's totals would exceed their limit")


def reverse_entry(entry_id: UUID, *, reason: str, ctx: Context, action: str) -> PostedEntry:
    """Post the mirror image of entry `entry_id` (each debit a credit and back). An entry is
    reversed at most once: the original's row is locked, so a concurrent reversal waits and
    then finds this one (the unique `reverses` column is the database's last word)."""
    original = Entry.objects.select_for_update().filter(pk=entry_id).first()
    if original is None:
        raise NotFound()
    if Entry.objects.filter(reverses_id=entry_id).exists():
        raise AlreadyReversed(f"entry {original.number} is already reversed")
    lines = Line.objects.select_related("account").filter(entry_id=entry_id).order_by("line_no")
    mirror = [
        PostingLine(
            account=account_ref(line.account),
            debit_minor=line.credit_minor,
            credit_minor=line.debit_minor,
            memo=line.memo,
        )
        for line in lines
    ]
    return post_entry(
        lines=mirror,
        memo=f"reverses {original.number}: {reason}"[: invariants.MAX_MEMO_LENGTH],
        source_type=original.source_type,
        source_id=original.source_id,
        ctx=ctx,
        action=action,
        reverses=original.id,
    )


class ManualLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    account: str
    # Absent is 0; present, a positive decimal string parsed once as it arrives.
    debit_minor: MoneyEdit = Field(default=None, alias="debit")
    credit_minor: MoneyEdit = Field(default=None, alias="credit")
    memo: str = ""


@dataclass(frozen=True)
class _Amounts:
    debit_minor: int
    credit_minor: int


def _manual_amounts(lines: Sequence[ManualLine]) -> list[_Amounts]:
    return [
        _Amounts(
            invariants.clean_side(line.debit_minor, f"lines[{index}].debit"),
            invariants.clean_side(line.credit_minor, f"lines[{index}].credit"),
        )
        for index, line in enumerate(lines)
    ]


class PostManualEntry(Command):
    """A manual adjustment: accounts named by code, opened from the chart if new."""

    name = "journal.post"
    memo: str
    lines: tuple[ManualLine, ...]

    def validated(self) -> PostManualEntry:
        memo = invariants.clean_memo(self.memo)
        if not memo:
            raise Invalid.field("memo", "say why this adjustment is made")
        if len(self.lines) > invariants.MAX_LINES:
            raise Invalid.field("lines", f"at most {invariants.MAX_LINES} lines")
        for index, line in enumerate(self.lines):
            invariants.clean_code(line.account, f"lines[{index}].account")
            invariants.clean_memo(line.memo, f"lines[{index}].memo")
        invariants.check_balanced(_manual_amounts(self.lines))
        return self.model_copy(update={"memo": memo})

    def handle(self, ctx: Context) -> Outcome:
        amounts = _manual_amounts(self.lines)
        accounts = _open_by_codes(self.lines)
        posting = [
            PostingLine(
                account=accounts[line.account],
                debit_minor=amount.debit_minor,
                credit_minor=amount.credit_minor,
                memo=line.memo,
            )
            for line, amount in zip(self.lines, amounts, strict=True)
        ]
        posted = post_entry(
            lines=posting, memo=self.memo, source_type="", source_id="", ctx=ctx, action=self.name
        )
        return Outcome(201, posted.view, posted.changes)


def _open_by_codes(lines: Sequence[ManualLine]) -> dict[str, AccountRef]:
    """Each line's account by code: an open one, or one the chart knows, opened now."""
    first_line: dict[str, int] = {}
    for index, line in enumerate(lines):
        first_line.setdefault(line.account, index)
    specs = []
    for code, index in first_line.items():
        spec = _spec_of(code)
        if spec is None:
            raise Invalid.field(
                f"lines[{index}].account", f"unknown account {code} (not open, not in the chart)"
            )
        specs.append(spec)
    return open_accounts(specs)


def _spec_of(code: str) -> invariants.AccountSpec | None:
    """An open account as it is (its kind is settled), else the chart's account, else None."""
    existing = get_account(code)
    if existing is not None:
        return invariants.AccountSpec(existing.code, existing.kind, existing.name)
    known = invariants.chart_entry(code)
    return None if known is None else invariants.AccountSpec(code, known.kind, known.name)


class ReverseEntry(Command):
    name = "journal.reverse"
    entry: UUID
    reason: str

    def validated(self) -> ReverseEntry:
        return self.model_copy(update={"reason": invariants.clean_reason(self.reason)})

    def handle(self, ctx: Context) -> Outcome:
        posted = reverse_entry(self.entry, reason=self.reason, ctx=ctx, action=self.name)
        return Outcome(201, posted.view, posted.changes)
