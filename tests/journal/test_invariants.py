"""The journal's pure rules: no database, data in → cleaned data or a typed error out."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import ValidationError

from quartermaster.core.errors import Invalid
from quartermaster.journal import invariants
from quartermaster.journal.invariants import (
    AccountKind,
    AccountRef,
    PostingLine,
    Unbalanced,
    check_balanced,
)
from quartermaster.journal.services import ManualLine

CASH = AccountRef(uuid.uuid4(), "cash", "Cash", AccountKind.ASSET)
INCOME = AccountRef(uuid.uuid4(), "commission_income", "Commission", AccountKind.INCOME)


def line(debit: int = 0, credit: int = 0, account: AccountRef = CASH) -> PostingLine:
    return PostingLine(account=account, debit_minor=debit, credit_minor=credit)


def test_a_balanced_entry_gives_its_totals() -> None:
    totals = check_balanced([line(debit=1000), line(credit=600), line(credit=400, account=INCOME)])

    assert (totals.line_count, totals.debit_minor, totals.credit_minor) == (3, 1000, 1000)


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([line(debit=100)], "lines"),  # one line
        ([line(debit=100), line(credit=99)], "lines"),  # debits differ from credits
        ([line(debit=100, credit=100), line(credit=0, debit=0)], "lines[0]"),  # two-sided
        ([line(debit=100), line()], "lines[1]"),  # a line of nothing
        ([line(debit=-5), line(credit=-5)], "lines[0]"),  # negative amounts
        ([line(debit=10**15 + 1), line(credit=10**15 + 1)], "lines[0]"),  # beyond the limit
        ([line(debit=True), line(credit=1)], "lines[0]"),  # a boolean is not an amount
        ([line(debit=1), line(credit=1)] * 51, "lines"),  # more than MAX_LINES
    ],
)
def test_an_entry_that_breaks_the_rule_is_refused_with_the_field(
    lines: list[PostingLine], field: str
) -> None:
    with pytest.raises(Unbalanced) as refused:
        check_balanced(lines)

    assert refused.value.code == "unbalanced"
    assert refused.value.status == 400
    assert field in (refused.value.fields or {})


def test_the_largest_entry_stays_inside_63_bits() -> None:
    biggest = [line(debit=invariants.MAX_LINE_MINOR)] * 50 + [
        line(credit=invariants.MAX_LINE_MINOR)
    ] * 50

    totals = check_balanced(biggest)

    assert totals.debit_minor * 2 < 2**63


@pytest.mark.parametrize(
    "code", ["cash", "fee_income:loading", "farmer_payable:3f2c9a10-1b2c-4d5e-8f90-0123456789ab"]
)
def test_account_codes(code: str) -> None:
    assert invariants.clean_code(code) == code


@pytest.mark.parametrize("code", ["", "Cash", "cash:", "a:b:c", "9cash", "cash ", "x" * 101, 7])
def test_bad_account_codes_are_refused(code: object) -> None:
    with pytest.raises(Invalid) as refused:
        invariants.clean_code(code, "lines[0].account")

    assert "lines[0].account" in (refused.value.fields or {})


def test_the_chart_knows_accounts_and_families() -> None:
    fee = invariants.chart_entry("fee_income:loading")

    assert invariants.chart_entry("cash") == invariants.ChartEntry(AccountKind.ASSET, "Cash")
    assert fee is not None and fee.kind == AccountKind.INCOME and fee.name.endswith("loading")
    assert invariants.chart_entry("farmer_payable:7") == invariants.ChartEntry(
        AccountKind.LIABILITY, "Payable to farmer 7"
    )
    assert invariants.chart_entry("petty_cash") is None
    assert invariants.chart_entry("fee_income") is None  # a family needs its id


@pytest.mark.parametrize(
    ("text", "minor"), [(None, 0), ("1250.50", 125050), ("0.01", 1), ("10000000000000", 10**15)]
)
def test_a_side_from_the_wire(text: str | None, minor: int) -> None:
    parsed = ManualLine.model_validate_json(json.dumps({"account": "cash", "debit": text}))

    assert invariants.clean_side(parsed.debit_minor, "lines[0].debit") == minor


@pytest.mark.parametrize(
    "text", ["0", "0.00", "-1", "1.005", "abc", "NaN", "1e3", "1 000", "10000000000000.01", 5]
)
def test_a_bad_side_from_the_wire_names_its_field(text: str | int) -> None:
    payload = json.dumps({"account": "cash", "credit": text})
    with pytest.raises(Invalid) as refused:
        try:
            parsed = ManualLine.model_validate_json(payload)
        except ValidationError as exc:
            raise Invalid.from_errors(exc.errors()) from exc
        invariants.clean_side(parsed.credit_minor, "credit")

    assert list(refused.value.fields or {}) == ["credit"]


@pytest.mark.parametrize(
    ("source_type", "source_id"),
    [("settlement", ""), ("", "STL-1"), ("x" * 51, "1"), ("s", "1" * 101)],
)
def test_a_source_is_both_or_neither_and_fits(source_type: str, source_id: str) -> None:
    with pytest.raises(Invalid) as refused:
        invariants.clean_source(source_type, source_id)

    assert list(refused.value.fields or {}) == ["source"]
    assert invariants.clean_source("settlement", "STL-1") == ("settlement", "STL-1")
    assert invariants.clean_source("", "") == ("", "")
