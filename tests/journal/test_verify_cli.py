"""`quartermaster journal verify`, run through the command's own entry point (`cli.main`) on
the test database: a clean journal passes; a balance changed behind the projection's back, or
an entry's line edited with the append-only trigger dropped, is named and exits 1."""

from __future__ import annotations

import pytest

from quartermaster import cli
from quartermaster.journal import selectors
from tests.conftest import Api, is_postgres
from tests.journal.test_database_rules import check_now, raw

pytestmark = pytest.mark.django_db

ENTRIES = "/api/v1/journal/entries"


def post(api: Api, debit: str, credit: str, amount: str) -> dict[str, object]:
    reply = api.post(
        ENTRIES,
        {
            "memo": "test",
            "lines": [{"account": debit, "debit": amount}, {"account": credit, "credit": amount}],
        },
    )
    assert reply.status == 201, reply.body
    return dict(reply.body)


def verify(capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(["journal", "verify"])
    return code, capsys.readouterr().out.splitlines()


def test_a_journal_that_agrees_with_its_lines_verifies(
    admin: Api, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(selectors, "VERIFY_CHUNK", 2)  # progress after every 2 entries
    post(admin, "cash", "opening_balances", "100.00")
    post(admin, "bank", "cash", "40.00")
    post(admin, "adjustments", "bank", "0.01")

    code, out = verify(capsys)

    assert code == 0, out
    assert out == [
        "  checked 2 entries…",
        "  checked 3 entries…",
        "journal OK: 3 entries, 4 accounts balance",
    ]


def test_a_balance_changed_behind_the_projection_is_named(
    admin: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    post(admin, "cash", "opening_balances", "100.00")
    raw(
        "UPDATE journal_accountbalance SET credit_total_minor = credit_total_minor + 5"
        " WHERE account_id = (SELECT id FROM journal_account WHERE code = 'cash')"
    )

    code, out = verify(capsys)

    assert code == 1
    assert "  account cash drifted: balance 100.00 / 0.05, lines 100.00 / 0.00" in out
    assert out[-1] == "journal BROKEN: 0 unbalanced entries, 1 drifted account (1 entry read)"


def test_an_entry_edited_in_the_database_is_named(
    admin: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    post(admin, "cash", "opening_balances", "100.00")
    second = post(admin, "bank", "cash", "40.00")
    # The entries are committed as far as PostgreSQL's deferred checks go (they run now, as at
    # COMMIT); then someone with a database shell drops the guard and edits a line.
    check_now()
    if is_postgres():
        raw("DROP TRIGGER journal_line_append_only ON journal_line")
    else:
        raw("DROP TRIGGER journal_line_no_update")
    raw("UPDATE journal_line SET debit_minor = 4100 WHERE debit_minor = 4000")

    code, out = verify(capsys)

    assert code == 1
    assert (
        f"  entry {second['number']} does not balance: 2 lines, debits 41.00, credits 40.00"
        " (the entry claims 2 lines, 40.00 / 40.00)"
    ) in out
    # bank's lines now say 41.00 while its balance row says 40.00.
    assert "  account bank drifted: balance 40.00 / 0.00, lines 41.00 / 0.00" in out
    assert out[-1] == "journal BROKEN: 1 unbalanced entry, 1 drifted account (2 entries read)"
