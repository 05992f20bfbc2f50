"""The database refuses what the code never writes: unbalanced or one-line entries, lines added
to a closed entry, and any UPDATE or DELETE of entries and lines. Raw SQL, straight past the
posting function, on whichever database the suite runs on.

PostgreSQL checks balance at commit (deferred constraint triggers); a test's transaction never
commits, so `SET CONSTRAINTS ALL IMMEDIATE` runs those checks at the point the test asks.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import DatabaseError, connection, transaction

from quartermaster.core.types import SYSTEM_ACTOR, Context
from quartermaster.journal.invariants import AccountKind, PostingLine
from quartermaster.journal.models import AccountBalance, Entry, Line
from quartermaster.journal.services import account, post_entry
from tests.conftest import is_postgres

pytestmark = pytest.mark.django_db


def raw(sql: str, params: list[Any] | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return int(cursor.rowcount)


def db_uuid(value: uuid.UUID) -> Any:
    return value if is_postgres() else value.hex


def check_now() -> None:
    """Run PostgreSQL's deferred checks now, as COMMIT would (SQLite checked on INSERT)."""
    if is_postgres():
        raw("SET CONSTRAINTS ALL IMMEDIATE")


@contextmanager
def refused(message: str) -> Iterator[None]:
    with pytest.raises(DatabaseError, match=message), transaction.atomic():
        yield
        check_now()
    if is_postgres():
        raw("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def accounts() -> tuple[uuid.UUID, uuid.UUID]:
    with transaction.atomic():
        cash = account("cash", AccountKind.ASSET, "Cash")
        income = account("commission_income", AccountKind.INCOME, "Commission")
    return cash.id, income.id


Writer = Callable[..., uuid.UUID]


@pytest.fixture
def write(accounts: tuple[uuid.UUID, uuid.UUID]) -> Writer:
    """write([(debit, credit), ...], claims=(count, debits, credits)) → the entry's id: its lines
    then the entry row, in raw SQL. `claims` defaults to what the lines add up to."""
    seq = iter(range(900_000, 1_000_000))

    def write_entry(
        lines: list[tuple[int, int]],
        claims: tuple[int, int, int] | None = None,
        entry_id: uuid.UUID | None = None,
        close: bool = True,
    ) -> uuid.UUID:
        entry_id = entry_id or uuid.uuid4()
        for line_no, (debit, credit) in enumerate(lines, start=1):
            raw(
                "INSERT INTO journal_line (entry_id, line_no, account_id, debit_minor,"
                " credit_minor, memo) VALUES (%s, %s, %s, %s, %s, '')",
                [db_uuid(entry_id), line_no, db_uuid(accounts[line_no % 2]), debit, credit],
            )
        if close:
            count, debits, credits = claims or (
                len(lines),
                sum(d for d, _ in lines),
                sum(c for _, c in lines),
            )
            number = next(seq)
            raw(
                "INSERT INTO journal_entry (id, seq, number, posted_at, memo, action, posted_by,"
                " source_type, source_id, reverses_id, line_count, debit_total_minor,"
                " credit_total_minor) VALUES (%s, %s, %s, %s, '', 'raw', 'dba', '', '', NULL,"
                " %s, %s, %s)",
                [
                    db_uuid(entry_id),
                    number,
                    f"RAW-{number}",
                    "2026-01-01 00:00:00+00:00",
                    count,
                    debits,
                    credits,
                ],
            )
        return entry_id

    return write_entry


def posted() -> uuid.UUID:
    cash = account("cash", AccountKind.ASSET, "Cash")
    income = account("commission_income", AccountKind.INCOME, "Commission")
    entry = post_entry(
        lines=[PostingLine(cash, debit_minor=500), PostingLine(income, credit_minor=500)],
        memo="commission",
        source_type="",
        source_id="",
        ctx=Context(actor=SYSTEM_ACTOR),
        action="test",
    )
    return entry.view.id


def test_a_balanced_entry_written_raw_is_accepted(write: Writer) -> None:
    with transaction.atomic():
        entry_id = write([(1000, 0), (0, 600), (0, 400)])
        check_now()

    assert Entry.objects.get(pk=entry_id).line_count == 3


def test_an_unbalanced_entry_is_refused(write: Writer) -> None:
    # The entry row claims a balance its lines do not have: the trigger compares them.
    with refused("does not balance"):
        write([(1000, 0), (0, 999)], claims=(2, 1000, 1000))
    # Claiming the lines' own unbalanced totals breaks the entry's CHECK instead.
    with refused("journal_entry_balances|CHECK|does not balance"):
        write([(1000, 0), (0, 999)])

    assert (Entry.objects.count(), Line.objects.count()) == (0, 0)


def test_a_one_line_entry_is_refused(write: Writer) -> None:
    with refused("does not balance"):
        write([(1000, 0)], claims=(2, 1000, 1000))
    with refused("journal_entry_two_lines|CHECK|does not balance"):
        write([(1000, 0)], claims=(1, 1000, 1000))

    assert Entry.objects.count() == 0


def test_a_two_sided_or_empty_line_is_refused(write: Writer) -> None:
    with refused("journal_line_one_side|CHECK"):
        write([(500, 500), (0, 0)], close=False)


def test_lines_cannot_be_added_to_a_closed_entry(write: Writer) -> None:
    with transaction.atomic():
        entry_id = write([(1000, 0), (0, 1000)])
        check_now()

    # Two more lines that balance between themselves still change what the entry claimed.
    with refused("closed|does not balance"):
        raw(
            "INSERT INTO journal_line (entry_id, line_no, account_id, debit_minor, credit_minor,"
            " memo) SELECT entry_id, line_no + 2, account_id, debit_minor, credit_minor, memo"
            " FROM journal_line WHERE entry_id = %s",
            [db_uuid(entry_id)],
        )

    assert Line.objects.filter(entry_id=entry_id).count() == 2


def test_lines_without_an_entry_are_refused_at_commit(write: Writer) -> None:
    if is_postgres():
        with refused("no entry row|foreign key"):
            write([(1000, 0), (0, 1000)], close=False)
        return
    # SQLite checks the deferred foreign key at COMMIT, which a test never reaches: ask it
    # what COMMIT would refuse.
    with transaction.atomic():
        entry_id = write([(1000, 0), (0, 1000)], close=False)
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA foreign_key_check(journal_line)")
            orphans = cursor.fetchall()
        transaction.set_rollback(True)

    assert [(table, parent) for table, _, parent, _ in orphans] == [
        ("journal_line", "journal_entry")
    ] * 2
    assert entry_id is not None


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_line SET debit_minor = debit_minor + 1 WHERE debit_minor > 0",
        "UPDATE journal_line SET memo = 'edited'",
        "UPDATE journal_entry SET memo = 'edited'",
        "DELETE FROM journal_line",
        "DELETE FROM journal_entry",
    ],
)
def test_entries_and_lines_are_append_only(statement: str) -> None:
    with transaction.atomic():
        entry_id = posted()
        check_now()

    with refused("append-only"):
        raw(statement)

    assert Entry.objects.filter(pk=entry_id).count() == 1
    assert sorted(Line.objects.filter(entry_id=entry_id).values_list("debit_minor", flat=True)) == [
        0,
        500,
    ]


def test_the_balance_projection_is_not_append_only(accounts: tuple[uuid.UUID, uuid.UUID]) -> None:
    # `journal verify` finds a drift made this way; only entries and lines are a ledger.
    changed = raw(
        "UPDATE journal_accountbalance SET debit_total_minor = 7 WHERE account_id = %s",
        [db_uuid(accounts[0])],
    )

    assert changed == 1
    assert AccountBalance.objects.get(account_id=accounts[0]).debit_total_minor == 7
