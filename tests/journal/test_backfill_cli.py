"""`quartermaster journal backfill`: a database upgraded from before the journal holds sales,
returns, payments and refunds with no entries and no deposit movements (`journal verify` passes,
the receivables are missing). Backfill posts what the sales commands would have posted, through
the pipeline (audited), and a second run posts nothing.

The old database is played by doing a day's business through the API, then deleting its journal
and deposit rows with raw SQL (the journal's append-only triggers set aside for it, in this test
only): what was there before is what a fresh database doing the same business holds, so the
backfilled balances must equal it."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction

from quartermaster.cli import main
from quartermaster.core.models import AuditEntry
from quartermaster.journal.models import AccountBalance, Entry
from quartermaster.sales.models import DepositMovement
from tests.conftest import Api
from tests.ledger_helpers import make_customer, make_item, ok, receive, sell

pytestmark = pytest.mark.django_db

JOURNAL_TABLES = ("journal_entry", "journal_line")


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(list(args))
    return code, capsys.readouterr().out


def a_days_business(api: Api, depot: str) -> None:
    """Sales (one voided), new connections charging deposits (one voided), empties returned
    with their deposits refunded in cash and as credit, a payment and a refund."""
    hose = make_item(api, "hose", price="190.55", tax_rate_bp=1800)
    gas = make_item(
        api, "14.2 kg LPG", price="900.00", tax_rate_bp=500, deposit="1500.00", returnable=True
    )
    receive(api, depot, [{"item": hose, "qty": 10}, {"item": gas, "qty": 10}])
    lakshmi, ravi = make_customer(api, "Lakshmi Stores")["id"], make_customer(api, "Ravi")["id"]
    ok(sell(api, lakshmi, depot, [{"item": hose, "qty": 2}]))
    voided = ok(sell(api, lakshmi, depot, [{"item": hose, "qty": 1}]))
    ok(api.post(f"/api/v1/transactions/{voided['id']}/void", {"reason": "wrong customer"}), 200)
    ok(sell(api, ravi, depot, [{"item": gas, "qty": 3, "mode": "new"}]))
    connection_voided = ok(sell(api, lakshmi, depot, [{"item": gas, "qty": 1, "mode": "new"}]))
    ok(api.post(f"/api/v1/transactions/{connection_voided['id']}/void", {"reason": "oops"}), 200)
    for refund in ("cash", "credit"):
        returned = {"customer": ravi, "location": depot, "lines": [{"item": gas, "qty": 1}]}
        ok(api.post("/api/v1/returns", {**returned, "refund": refund}))
    paid = {"customer": lakshmi, "amount": "500.00", "method": "cash"}
    ok(api.post("/api/v1/payments", paid))
    ok(api.post("/api/v1/refunds", {"customer": lakshmi, "amount": "10.00", "method": "cash"}))


def balances() -> dict[str, tuple[int, int]]:
    """Every account with its debit and credit totals, by code (accounts never used left out)."""
    return {
        row.account.code: (row.debit_total_minor, row.credit_total_minor)
        for row in AccountBalance.objects.select_related("account")
        if row.debit_total_minor or row.credit_total_minor
    }


def deposits_held() -> list[tuple[str, str, int, int]]:
    return sorted(
        (str(row.customer_id), row.source.partition(":")[0], row.qty, row.amount_minor)
        for row in DepositMovement.objects.all()
    )


def forget_the_journal() -> None:
    """The database as before the journal: no entries, no accounts, no deposits charged or
    voided by sales. (A return's deposit movements are kept: a return made before deposits
    existed refunded none, so only a return's entry can be missing with its movements there.)"""
    sqlite = connection.vendor == "sqlite"
    with transaction.atomic(), connection.cursor() as cursor:
        if not sqlite:  # the test's transaction: its deferred checks run first, so it may ALTER
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in JOURNAL_TABLES:
            cursor.execute(
                f"DROP TRIGGER {table}_no_delete"
                if sqlite
                else f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"
            )
        for table in ("journal_line", "journal_entry", "journal_accountbalance", "journal_account"):
            cursor.execute(f"DELETE FROM {table}")
        cursor.execute("DELETE FROM sales_depositmovement WHERE source NOT LIKE 'return:%%'")
        for table in JOURNAL_TABLES:
            cursor.execute(
                f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}"
                " BEGIN SELECT RAISE(ABORT, 'journal entries and lines are append-only'); END"
                if sqlite
                else f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"
            )
        if not sqlite:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def test_backfill_posts_what_the_sales_would_have_and_a_second_run_posts_nothing(
    admin: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_days_business(admin, default_location_id)
    fresh_balances, fresh_deposits = balances(), deposits_held()
    assert fresh_balances and len(fresh_deposits) == 5
    forget_the_journal()
    assert balances() == {} and [row[1] for row in deposits_held()] == ["return", "return"]
    assert cli(capsys, "journal", "verify")[0] == 0  # what is there balances: nothing

    code, out = cli(capsys, "journal", "backfill", "--dry-run")
    assert code == 0, out
    assert (
        "would backfill: 4 sales (10454.55; 2 voided), 2 returns (3000.00),"
        " 1 payment (500.00), 1 refund (10.00)" in out
    )
    assert Entry.objects.count() == 0 and len(deposits_held()) == 2  # a dry run writes nothing

    audited = AuditEntry.objects.count()
    code, out = cli(capsys, "journal", "backfill")

    assert code == 0, out
    assert "backfilling: 4 sales (10454.55; 2 voided), 2 returns (3000.00)" in out
    assert "  8/8 records…" in out
    # 4 invoices, 2 reversals, 2 deposit refunds, a payment, a refund; deposits: 2 charged
    # (Ravi's connection, Lakshmi's), 1 voided.
    assert "backfilled: 10 journal entries, 3 deposit movements (audited)" in out
    assert balances() == fresh_balances
    assert deposits_held() == fresh_deposits
    assert set(Entry.objects.values_list("action", flat=True)) == {"journal.backfill"}
    backfills = AuditEntry.objects.filter(seq__gt=audited, action="journal.backfill")
    assert backfills.filter(entity_type="journal_entry").count() == 10
    assert cli(capsys, "journal", "verify")[0] == 0
    assert cli(capsys, "audit", "verify")[0] == 0

    audited = AuditEntry.objects.count()
    code, out = cli(capsys, "journal", "backfill")

    assert code == 0, out
    assert "backfilling: 0 sales, 0 returns, 0 payments, 0 refunds" in out
    assert AuditEntry.objects.count() == audited
    assert Entry.objects.count() == 10


def test_a_healthy_database_has_nothing_to_backfill(
    admin: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    a_days_business(admin, default_location_id)
    before: dict[str, Any] = {"balances": balances(), "entries": Entry.objects.count()}

    code, out = cli(capsys, "journal", "backfill")

    assert code == 0, out
    assert "backfilling: 0 sales, 0 returns, 0 payments, 0 refunds" in out
    assert {"balances": balances(), "entries": Entry.objects.count()} == before
