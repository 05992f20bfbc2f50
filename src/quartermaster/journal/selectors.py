"""Reads of the journal: accounts with their balances, entries with their lines, and the check
that the balance projection and every entry agree with the lines (`verify_journal`).

Views are typed values (`core.types.View`): each builds its wire body and its audit snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import Prefetch

from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, int_key, text_key
from quartermaster.core.types import View
from quartermaster.journal.invariants import AccountRef
from quartermaster.journal.models import Account, AccountBalance, Entry, Line


@dataclass(frozen=True)
class LineView:
    account: str
    debit_minor: int
    credit_minor: int
    memo: str

    def snapshot(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "debit": format_money(self.debit_minor),
            "credit": format_money(self.credit_minor),
            "memo": self.memo,
        }


@dataclass(frozen=True)
class EntryView(View):
    """A journal entry (docs/api-additions.md "Journal"). Chain format 1: it began as the wire
    body of the time and stays as it is; the API may rename its fields in `to_wire`, never
    here."""

    id: UUID
    number: str
    seq: int
    posted_at: datetime
    memo: str
    action: str
    posted_by: str
    source_type: str
    source_id: str
    reverses: UUID | None
    lines: tuple[LineView, ...]

    @property
    def total_minor(self) -> int:
        return sum(line.debit_minor for line in self.lines)

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "posted_at": self.posted_at.isoformat(),
            "memo": self.memo,
            "action": self.action,
            "posted_by": self.posted_by,
            "source": {"type": self.source_type, "id": self.source_id}
            if self.source_type
            else None,
            "reverses": str(self.reverses) if self.reverses else None,
            "total": format_money(self.total_minor),
            "lines": [line.snapshot() for line in self.lines],
        }


@dataclass(frozen=True)
class AccountView(View):
    """An account with its balance. Chain format 1 sealed an account as it was opened (its
    id, code, name and kind: never a balance, which the entries' lines make)."""

    id: UUID
    code: str
    name: str
    kind: str
    debit_total_minor: int
    credit_total_minor: int

    @property
    def balance_minor(self) -> int:
        """Debits less credits: positive for an asset or expense in its normal state."""
        return self.debit_total_minor - self.credit_total_minor

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "code": self.code,
            "name": self.name,
            "kind": self.kind,
            "debit_total": format_money(self.debit_total_minor),
            "credit_total": format_money(self.credit_total_minor),
            "balance": format_money(self.balance_minor),
        }

    def to_snapshot(self) -> dict[str, Any]:
        return {"id": str(self.id), "code": self.code, "name": self.name, "kind": self.kind}


def opened_account_view(ref: AccountRef) -> AccountView:
    """An account as it is opened: nothing posted to it yet."""
    return AccountView(ref.id, ref.code, ref.name, ref.kind, 0, 0)


def account_ref(account: Account) -> AccountRef:
    return AccountRef(id=account.id, code=account.code, name=account.name, kind=account.kind)


def get_account(code: str) -> AccountRef | None:
    account = Account.objects.filter(code=code).first()
    return None if account is None else account_ref(account)


def _entry_view(entry: Entry) -> EntryView:
    return EntryView(
        id=entry.id,
        number=entry.number,
        seq=entry.seq,
        posted_at=entry.posted_at,
        memo=entry.memo,
        action=entry.action,
        posted_by=entry.posted_by,
        source_type=entry.source_type,
        source_id=entry.source_id,
        reverses=entry.reverses_id,
        lines=tuple(
            LineView(line.account.code, line.debit_minor, line.credit_minor, line.memo)
            for line in entry.lines.all()
        ),
    )


def _with_lines() -> Prefetch[str, Any, str]:
    return Prefetch("lines", queryset=Line.objects.select_related("account").order_by("line_no"))


def find_posting(source_type: str, source_id: str) -> UUID | None:
    """The id of the entry a domain posted for its record (`source_type`, `source_id`) that is
    not itself a reversal, or None: what a domain reverses when it undoes the record."""
    return (
        Entry.objects.filter(source_type=source_type, source_id=source_id, reverses_id__isnull=True)
        .order_by("seq")
        .values_list("id", flat=True)
        .first()
    )


def reversal_of(entry_id: UUID) -> UUID | None:
    """The id of the entry that reversed entry `entry_id`, or None (reversed at most once)."""
    return Entry.objects.filter(reverses_id=entry_id).values_list("id", flat=True).first()


def posted_sources(source_type: str) -> tuple[set[str], set[str]]:
    """The source ids of `source_type` the journal holds an entry for (not a reversal), and
    those whose entry is reversed: what a domain checks its records against in bulk."""
    posted: set[str] = set()
    reversed_: set[str] = set()
    rows = Entry.objects.filter(source_type=source_type).values_list("source_id", "reverses_id")
    for source_id, reverses_id in rows.iterator(chunk_size=5000):
        (posted if reverses_id is None else reversed_).add(source_id)
    return posted, reversed_


def get_entry(entry_id: UUID) -> EntryView | None:
    entry = Entry.objects.prefetch_related(_with_lines()).filter(pk=entry_id).first()
    return None if entry is None else _entry_view(entry)


ENTRY_ORDER = Keyset(fields=(int_key("seq"),), descending=True)
ACCOUNT_ORDER = Keyset(fields=(text_key("code"),))


def list_entries(*, account: str | None, page: PageRequest) -> Page[EntryView]:
    """Entries newest first (by number), those touching `account` only when it is given."""
    query = Entry.objects.prefetch_related(_with_lines())
    if account is not None:
        query = query.filter(id__in=Line.objects.filter(account__code=account).values("entry_id"))
    return ENTRY_ORDER.page(query, page).map(_entry_view)


def every_entry() -> Iterator[EntryView]:
    """Every entry with its lines, as the handler sealed it (`audit verify --state`), a few
    hundred rows in memory at a time."""
    for entry in Entry.objects.prefetch_related(_with_lines()).iterator(chunk_size=500):
        yield _entry_view(entry)


def list_accounts(*, page: PageRequest) -> Page[AccountView]:
    """Accounts by code, each with its balance (the projection, not a sum of lines)."""
    query = Account.objects.select_related("balance")
    return ACCOUNT_ORDER.page(query, page).map(_account_view)


def _account_view(account: Account) -> AccountView:
    # An account's balance row is opened with it; a missing one reads as zero here and is
    # named by `verify_journal`.
    balance: AccountBalance | None = getattr(account, "balance", None)
    return AccountView(
        id=account.id,
        code=account.code,
        name=account.name,
        kind=account.kind,
        debit_total_minor=balance.debit_total_minor if balance else 0,
        credit_total_minor=balance.credit_total_minor if balance else 0,
    )


@dataclass(frozen=True)
class Drift:
    """An account whose balance row disagrees with the sum of its lines."""

    code: str
    recorded: tuple[int, int] | None  # (debits, credits) in the projection; None: no row
    computed: tuple[int, int]  # the same summed from the lines


@dataclass(frozen=True)
class BadEntry:
    """An entry whose lines do not balance or differ from the totals the entry claims."""

    number: str
    claimed: tuple[int, int, int]  # (line count, debits, credits) on the entry row
    found: tuple[int, int, int]  # the same counted from its lines


@dataclass(frozen=True)
class JournalReport:
    entries: int
    accounts: int
    drifted: tuple[Drift, ...]
    unbalanced: tuple[BadEntry, ...]

    @property
    def ok(self) -> bool:
        return not self.drifted and not self.unbalanced


VERIFY_CHUNK = 5_000

# One chunk of entries (by seq) with what their lines add up to. Table and column names are
# the models'; values go through parameters.
_ENTRY_SUMS_SQL = """
    SELECT e.seq, e.number, e.line_count, e.debit_total_minor, e.credit_total_minor,
           COUNT(l.id), COALESCE(SUM(l.debit_minor), 0), COALESCE(SUM(l.credit_minor), 0)
    FROM journal_entry e LEFT JOIN journal_line l ON l.entry_id = e.id
    WHERE e.seq > %s GROUP BY e.id, e.seq, e.number, e.line_count, e.debit_total_minor,
          e.credit_total_minor
    ORDER BY e.seq LIMIT %s"""
_ACCOUNT_SUMS_SQL = """
    SELECT l.account_id, SUM(l.debit_minor), SUM(l.credit_minor)
    FROM journal_line l JOIN journal_entry e ON e.id = l.entry_id
    WHERE e.seq > %s AND e.seq <= %s GROUP BY l.account_id"""


def verify_journal(progress: Callable[[int], None] | None = None) -> JournalReport:
    """Recompute every entry's totals and every account's balance from the lines, a chunk of
    entries at a time (`progress(entries read so far)` after each), and name what disagrees."""
    unbalanced: list[BadEntry] = []
    sums: dict[Any, list[int]] = {}
    after, read = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(_ENTRY_SUMS_SQL, [after, VERIFY_CHUNK])
            rows = cursor.fetchall()
            if not rows:
                break
            for _, number, *counts in rows:
                claimed, found = tuple(counts[:3]), tuple(counts[3:])
                if claimed != found or found[0] < 2 or found[1] != found[2] or found[1] <= 0:
                    unbalanced.append(BadEntry(number, claimed, found))
            cursor.execute(_ACCOUNT_SUMS_SQL, [after, rows[-1][0]])
            for account_id, debits, credits in cursor.fetchall():
                total = sums.setdefault(str(account_id).replace("-", ""), [0, 0])
                total[0] += int(debits)
                total[1] += int(credits)
            after, read = rows[-1][0], read + len(rows)
            if progress is not None:
                progress(read)
    drifted = _drifted_accounts(sums)
    return JournalReport(read, Account.objects.count(), tuple(drifted), tuple(unbalanced))


def _drifted_accounts(sums: dict[Any, list[int]]) -> list[Drift]:
    drifted = []
    for account in Account.objects.select_related("balance").order_by("code"):
        debits, credits = sums.get(account.id.hex, [0, 0])
        balance: AccountBalance | None = getattr(account, "balance", None)
        recorded = (
            None if balance is None else (balance.debit_total_minor, balance.credit_total_minor)
        )
        if recorded != (debits, credits):
            drifted.append(Drift(account.code, recorded, (debits, credits)))
    return drifted


def balances_of(codes: list[str]) -> dict[str, int]:
    """Debits less credits of each account named (the projection), by code; an account not
    open yet is absent (a zero balance). One query, for a page of records that own accounts."""
    if not codes:
        return {}
    rows = AccountBalance.objects.filter(account__code__in=codes).values_list(
        "account__code", "debit_total_minor", "credit_total_minor"
    )
    return {code: debits - credits for code, debits, credits in rows}
