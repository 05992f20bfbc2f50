"""The market's money in the journal: advances, settlements and their payments.

Accounts (opened on first use, `journal.services.open_accounts`):

- `advances_receivable:<FMR number>` (asset): cash given to the farmer, not yet recovered.
- `farmer_payable:<FMR number>` (liability): what the agent owes the farmer, settled and unpaid.
- `market_proceeds` (asset): the proceeds of the farmers' flowers sold on consignment, due from
  (or collected from) the buyers; buyers' accounts are not kept here yet.
- `commission_income`, `fee_income:<fee code>` (income); `cash`, `bank` (assets).

When (see `market.recording` for why an entry posts nothing):

- an advance: Dr advances_receivable, Cr cash or bank;
- a settlement, when generated: Dr market_proceeds (gross); Cr commission_income, each fee's
  income, advances_receivable (what it recovers) and farmer_payable (the net; a negative net
  is a debit: the farmer owes it). Posting at generation, not approval, takes the recovered
  advance off the farmer's outstanding at once, so a second settlement generated before the
  first is approved can never recover the same advance twice;
- cancelling a draft or approved settlement reverses that entry;
- paying it: Dr farmer_payable, Cr cash or bank (the other way round for a negative net).
"""

from __future__ import annotations

from uuid import UUID

from quartermaster.core.types import Context
from quartermaster.journal.invariants import AccountKind, AccountRef, AccountSpec, PostingLine
from quartermaster.journal.services import PostedEntry, open_accounts, post_entry, reverse_entry
from quartermaster.market.invariants import SettlementTotals
from quartermaster.market.selectors import advances_account, payable_account

PROCEEDS = "market_proceeds"
COMMISSION = "commission_income"
# How money leaves or reaches the till: UPI lands in the bank.
METHOD_ACCOUNTS = {"cash": "cash", "bank": "bank", "upi": "bank"}
_NAMES = {"cash": "Cash", "bank": "Bank"}


def _farmer_specs(number: str) -> list[AccountSpec]:
    return [
        AccountSpec(advances_account(number), AccountKind.ASSET, f"Advances to farmer {number}"),
        AccountSpec(payable_account(number), AccountKind.LIABILITY, f"Payable to farmer {number}"),
    ]


def _money_spec(method: str) -> AccountSpec:
    code = METHOD_ACCOUNTS[method]
    return AccountSpec(code, AccountKind.ASSET, _NAMES[code])


def post_advance(
    *, advance_id: UUID, farmer_number: str, amount_minor: int, method: str, ctx: Context
) -> PostedEntry:
    accounts = open_accounts([*_farmer_specs(farmer_number), _money_spec(method)])
    return post_entry(
        lines=[
            PostingLine(accounts[advances_account(farmer_number)], debit_minor=amount_minor),
            PostingLine(accounts[METHOD_ACCOUNTS[method]], credit_minor=amount_minor),
        ],
        memo=f"advance to farmer {farmer_number}",
        source_type="market.advance",
        source_id=str(advance_id),
        ctx=ctx,
        action="market.advance.record",
    )


def _signed(account: AccountRef, credit_minor: int, memo: str = "") -> PostingLine | None:
    """A line crediting `credit_minor` (a debit when negative); None for zero."""
    if credit_minor > 0:
        return PostingLine(account, credit_minor=credit_minor, memo=memo)
    if credit_minor < 0:
        return PostingLine(account, debit_minor=-credit_minor, memo=memo)
    return None


def post_settlement(
    *,
    settlement_id: UUID,
    settlement_number: str,
    farmer_number: str,
    totals: SettlementTotals,
    ctx: Context,
) -> PostedEntry | None:
    """Recognise the settlement; None when it moves no money (a gross of 0)."""
    if totals.gross_minor == 0:
        return None
    specs = [
        *_farmer_specs(farmer_number),
        AccountSpec(PROCEEDS, AccountKind.ASSET, "Proceeds of farmers' flowers sold"),
        AccountSpec(COMMISSION, AccountKind.INCOME, "Commission income"),
        *(
            AccountSpec(f"fee_income:{code}", AccountKind.INCOME, f"Fee income {code}")
            for code, _ in totals.fees_minor
        ),
    ]
    accounts = open_accounts(specs)
    candidates = [
        PostingLine(accounts[PROCEEDS], debit_minor=totals.gross_minor),
        _signed(accounts[COMMISSION], totals.commission_minor),
        *(
            _signed(accounts[f"fee_income:{code}"], amount, code)
            for code, amount in totals.fees_minor
        ),
        _signed(accounts[advances_account(farmer_number)], totals.advance_recovered_minor),
        _signed(accounts[payable_account(farmer_number)], totals.net_minor),
    ]
    return post_entry(
        lines=[line for line in candidates if line is not None],
        memo=f"settlement {settlement_number} of farmer {farmer_number}",
        source_type="market.settlement",
        source_id=str(settlement_id),
        ctx=ctx,
        action="market.settlement.generate",
    )


def post_payment(
    *,
    settlement_id: UUID,
    settlement_number: str,
    farmer_number: str,
    net_minor: int,
    method: str,
    ctx: Context,
) -> PostedEntry | None:
    """Pay the farmer the net (or receive what a negative net says they owe); None for 0."""
    if net_minor == 0:
        return None
    accounts = open_accounts([*_farmer_specs(farmer_number), _money_spec(method)])
    payable = accounts[payable_account(farmer_number)]
    money = accounts[METHOD_ACCOUNTS[method]]
    amount = abs(net_minor)
    lines = (
        [PostingLine(payable, debit_minor=amount), PostingLine(money, credit_minor=amount)]
        if net_minor > 0
        else [PostingLine(money, debit_minor=amount), PostingLine(payable, credit_minor=amount)]
    )
    return post_entry(
        lines=lines,
        memo=f"payment of settlement {settlement_number} to farmer {farmer_number}",
        source_type="market.settlement",
        source_id=str(settlement_id),
        ctx=ctx,
        action="market.settlement.pay",
    )


def reverse_settlement(*, entry_id: UUID, reason: str, ctx: Context) -> PostedEntry:
    return reverse_entry(entry_id, reason=reason, ctx=ctx, action="market.settlement.cancel")
