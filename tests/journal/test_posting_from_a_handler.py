"""Other domains post from inside their own command handlers: `account` opens what they need,
`post_entry` writes the entry in their transaction, and their Outcome carries its changes, so
the pipeline audits the money with the command that moved it, or rolls it all back."""

from __future__ import annotations

from typing import ClassVar

import pytest

from quartermaster.core.commands import Command, execute
from quartermaster.core.errors import Conflict
from quartermaster.core.models import AuditEntry
from quartermaster.core.types import SYSTEM_ACTOR, Context, Outcome
from quartermaster.journal.invariants import AccountKind, AccountSpec, PostingLine
from quartermaster.journal.models import Account, AccountBalance, Entry, Line
from quartermaster.journal.selectors import verify_journal
from quartermaster.journal.services import (
    AccountKindMismatch,
    account,
    open_accounts,
    post_entry,
)
from tests.conftest import audit_count

pytestmark = pytest.mark.django_db


class SettleForTest(Command):
    """A stand-in for the market's settlement: the farmer is paid in cash, less commission."""

    name: ClassVar[str] = "test.journal.settle"
    syncable: ClassVar[bool] = False  # a stand-in run by this test, never an op type
    farmer: str
    gross_minor: int
    commission_minor: int
    fail_after_posting: bool = False

    def handle(self, ctx: Context) -> Outcome:
        payable_code = f"farmer_payable:{self.farmer}"
        opened = open_accounts(
            [
                AccountSpec(payable_code, AccountKind.LIABILITY, "Farmer"),
                AccountSpec("cash", AccountKind.ASSET, "Cash"),
                AccountSpec("commission_income", AccountKind.INCOME, "Commission income"),
            ]
        )
        payable, cash, income = opened[payable_code], opened["cash"], opened["commission_income"]
        posted = post_entry(
            lines=[
                PostingLine(payable, debit_minor=self.gross_minor),
                PostingLine(cash, credit_minor=self.gross_minor - self.commission_minor),
                PostingLine(income, credit_minor=self.commission_minor, memo="10 %"),
            ],
            memo="settlement STL-000001",
            source_type="settlement",
            source_id="STL-000001",
            ctx=ctx,
            action=self.name,
        )
        if self.fail_after_posting:
            raise Conflict("the settlement changed meanwhile")
        return Outcome(201, {"entry": posted.view.number}, posted.changes)


SYSTEM = Context(actor=SYSTEM_ACTOR)


def test_a_handler_posts_in_its_own_transaction_and_the_pipeline_audits_it() -> None:
    audit_before = audit_count()

    response = execute(
        SettleForTest(farmer="7", gross_minor=10_000, commission_minor=1_000), SYSTEM
    )

    assert (response.status, response.body) == (201, {"entry": "JE-000001"})
    entry = Entry.objects.get()
    assert (entry.source_type, entry.source_id, entry.action) == (
        "settlement",
        "STL-000001",
        "test.journal.settle",
    )
    totals = {
        b.account.code: (b.debit_total_minor, b.credit_total_minor)
        for b in AccountBalance.objects.select_related("account")
    }
    assert totals == {
        "farmer_payable:7": (10_000, 0),
        "cash": (0, 9_000),
        "commission_income": (0, 1_000),
    }
    audited = AuditEntry.objects.filter(seq__gt=audit_before).order_by("seq")
    assert [a.entity_type for a in audited] == ["journal_account"] * 3 + ["journal_entry"]
    assert {a.after["code"] for a in audited[:3]} == {
        "cash",
        "commission_income",
        "farmer_payable:7",
    }
    assert {a.action for a in audited} == {"test.journal.settle"}
    assert verify_journal().ok


def test_a_second_posting_reuses_the_accounts_and_audits_only_the_entry() -> None:
    execute(SettleForTest(farmer="7", gross_minor=10_000, commission_minor=1_000), SYSTEM)
    audit_before = audit_count()

    execute(SettleForTest(farmer="7", gross_minor=500, commission_minor=50), SYSTEM)

    assert Account.objects.count() == 3
    assert list(
        AuditEntry.objects.filter(seq__gt=audit_before).values_list("entity_type", flat=True)
    ) == ["journal_entry"]
    assert AccountBalance.objects.get(account__code="cash").credit_total_minor == 9_450


def test_a_handler_that_fails_after_posting_leaves_no_trace() -> None:
    audit_before = audit_count()

    response = execute(
        SettleForTest(
            farmer="7", gross_minor=10_000, commission_minor=1_000, fail_after_posting=True
        ),
        SYSTEM,
    )

    assert response.status == 409
    assert (Account.objects.count(), Entry.objects.count(), Line.objects.count()) == (0, 0, 0)
    assert AccountBalance.objects.count() == 0
    assert audit_count() == audit_before


def test_an_unbalanced_posting_is_400_and_writes_nothing() -> None:
    response = execute(SettleForTest(farmer="7", gross_minor=10_000, commission_minor=0), SYSTEM)

    # A commission of 0 makes a line of nothing: the rule refuses it, naming the line.
    assert (response.status, response.body["code"]) == (400, "unbalanced")
    assert response.body["fields"] == {"lines[2]": "exactly one of debit and credit is more than 0"}
    assert Entry.objects.count() == 0


def test_an_account_opened_under_one_kind_is_not_reopened_as_another() -> None:
    account("cash", AccountKind.ASSET, "Cash")

    with pytest.raises(AccountKindMismatch):
        account("cash", AccountKind.INCOME, "Cash")
    again = account("cash", AccountKind.ASSET, "Another name")

    assert (again.name, again.opened) == ("Cash", False)
    assert Account.objects.count() == 1
