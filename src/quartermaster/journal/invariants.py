"""Pure journal rules: account codes and kinds, posting lines, and the one balancing rule.

Money is integer minor units (paise). A line moves money one way only: exactly one of its debit
and credit is more than 0. An entry has at least two lines and its debits equal its credits. The
limits keep every sum inside 63 bits: a line is at most 10^15 minor units and an entry at most
MAX_LINES lines, so an entry's total stays below 10^18 < 2^63.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from django.db import models

from quartermaster.core.errors import Invalid

MAX_LINES = 100
MAX_LINE_MINOR = 10**15
# The largest total a balance column may reach (a signed 64-bit column).
MAX_TOTAL_MINOR = 2**63 - 1
MAX_MEMO_LENGTH = 500
MAX_CODE_LENGTH = 100
MAX_NAME_LENGTH = 200
MAX_REASON_LENGTH = 500
# `cash`, `fee_income:loading`, `farmer_payable:3f2c…`: a lowercase head, then an optional
# `:` and the id of what the account is kept for.
CODE_PATTERN = re.compile(r"[a-z][a-z0-9_]*(:[A-Za-z0-9_.-]+)?")
# Rupees as people write them: "1250.50", "7". No sign (a side is its direction), no exponent.


class AccountKind(models.TextChoices):
    ASSET = "asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"
    EQUITY = "equity"


@dataclass(frozen=True)
class ChartEntry:
    kind: AccountKind
    name: str


# The accounts a manual posting may open by code alone. Domains open theirs with
# `services.account(code, kind, name)`; these are the ones the engine knows by name. A key
# ending in ":" is a family: `fee_income:loading` is a `fee_income:` account.
CHART: dict[str, ChartEntry] = {
    "cash": ChartEntry(AccountKind.ASSET, "Cash"),
    "bank": ChartEntry(AccountKind.ASSET, "Bank"),
    "advances_receivable": ChartEntry(AccountKind.ASSET, "Advances to farmers"),
    "commission_income": ChartEntry(AccountKind.INCOME, "Commission income"),
    "adjustments": ChartEntry(AccountKind.EXPENSE, "Adjustments"),
    "opening_balances": ChartEntry(AccountKind.EQUITY, "Opening balances"),
    "sales_revenue": ChartEntry(AccountKind.INCOME, "Sales revenue"),
    "tax_payable": ChartEntry(AccountKind.LIABILITY, "Tax collected, payable"),
    "cheques": ChartEntry(AccountKind.ASSET, "Cheques in hand"),
    "shortages": ChartEntry(AccountKind.EXPENSE, "Cash and stock shortages"),
    "fee_income:": ChartEntry(AccountKind.INCOME, "Fee income"),
    "farmer_payable:": ChartEntry(AccountKind.LIABILITY, "Payable to farmer"),
    "customer_receivable:": ChartEntry(AccountKind.ASSET, "Receivable from customer"),
    "customer_deposits:": ChartEntry(AccountKind.LIABILITY, "Deposits held for customer"),
}


def clean_code(code: Any, field: str = "account") -> str:
    if not isinstance(code, str) or not code:
        raise Invalid.field(field, "must be an account code such as cash or fee_income:loading")
    if len(code) > MAX_CODE_LENGTH or CODE_PATTERN.fullmatch(code) is None:
        raise Invalid.field(
            field,
            f"an account code: lowercase letters, digits, _ and one :id (at most {MAX_CODE_LENGTH})",
        )
    return code


def clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        raise Invalid.field("name", f"a non-blank string of at most {MAX_NAME_LENGTH} characters")
    return name.strip()


def chart_entry(code: str) -> ChartEntry | None:
    """The chart's entry for `code` (its own, or its family's), None if the chart has none."""
    known = CHART.get(code)
    if known is not None:
        return known
    head, colon, _ = code.partition(":")
    family = CHART.get(head + ":") if colon else None
    return (
        None
        if family is None
        else ChartEntry(family.kind, f"{family.name} {code[len(head) + 1 :]}")
    )


def clean_memo(memo: Any, field: str = "memo") -> str:
    if not isinstance(memo, str) or len(memo) > MAX_MEMO_LENGTH:
        raise Invalid.field(field, f"a string of at most {MAX_MEMO_LENGTH} characters")
    return memo.strip()


MAX_SOURCE_TYPE_LENGTH = 50
MAX_SOURCE_ID_LENGTH = 100


def clean_source(source_type: str, source_id: str) -> tuple[str, str]:
    """What an entry is about: both given or both empty, each within its column."""
    if len(source_type) > MAX_SOURCE_TYPE_LENGTH or len(source_id) > MAX_SOURCE_ID_LENGTH:
        raise Invalid.field("source", "the source's type or id is too long")
    if bool(source_type) != bool(source_id):
        raise Invalid.field("source", "name both the source's type and its id, or neither")
    return source_type, source_id


def clean_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON_LENGTH:
        raise Invalid.field(
            "reason", f"a non-blank string of at most {MAX_REASON_LENGTH} characters"
        )
    return reason.strip()


def clean_side(minor: int | None, field: str) -> int:
    """A line's debit or credit, parsed from the wire (`core.money`): absent is 0, present is
    more than 0 and within a line's ceiling."""
    if minor is None:
        return 0
    if not 0 < minor <= MAX_LINE_MINOR:
        raise Invalid.field(field, f"must be more than 0 and at most {MAX_LINE_MINOR // 100}")
    return minor


class Unbalanced(Invalid):
    """An entry that breaks the balancing rule: nothing is posted."""

    code = "unbalanced"


class Amounts(Protocol):
    """One line's money, as the balancing rule reads it."""

    @property
    def debit_minor(self) -> int: ...
    @property
    def credit_minor(self) -> int: ...


@dataclass(frozen=True)
class AccountSpec:
    """An account to open if it is not open yet."""

    code: str
    kind: str
    name: str


@dataclass(frozen=True)
class AccountRef:
    """An open account, as posting names it. `opened`: this call opened it (so the entry that
    first uses it audits the opening)."""

    id: UUID
    code: str
    name: str
    kind: str
    opened: bool = False


@dataclass(frozen=True)
class PostingLine:
    """One line another domain asks to post: an account and the money, in one direction."""

    account: AccountRef
    debit_minor: int = 0
    credit_minor: int = 0
    memo: str = ""


def check_line(index: int, debit_minor: int, credit_minor: int) -> None:
    field = f"lines[{index}]"
    for side in (debit_minor, credit_minor):
        if isinstance(side, bool) or not isinstance(side, int) or not 0 <= side <= MAX_LINE_MINOR:
            raise Unbalanced.field(field, f"amounts are integers from 0 to {MAX_LINE_MINOR}")
    if (debit_minor > 0) == (credit_minor > 0):
        raise Unbalanced.field(field, "exactly one of debit and credit is more than 0")


@dataclass(frozen=True)
class Totals:
    line_count: int
    debit_minor: int
    credit_minor: int


def check_balanced(lines: Sequence[Amounts]) -> Totals:
    """The rule every entry obeys, in code (the database enforces it again): 2 to MAX_LINES
    lines, each one-sided and positive, debits equal to credits. Returns the entry's totals."""
    if not 2 <= len(lines) <= MAX_LINES:
        raise Unbalanced.field("lines", f"an entry has from 2 to {MAX_LINES} lines")
    for index, line in enumerate(lines):
        check_line(index, line.debit_minor, line.credit_minor)
    debits = sum(line.debit_minor for line in lines)
    credits = sum(line.credit_minor for line in lines)
    if debits != credits:
        raise Unbalanced.field("lines", f"debits ({debits}) and credits ({credits}) differ")
    return Totals(len(lines), debits, credits)
