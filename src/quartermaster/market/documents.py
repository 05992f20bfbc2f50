"""The market's documents as typed values for the one PDF engine (quartermaster.documents):
a farmer's balance now; the settlement slip's value (`documents.types.SettlementSlip`) is built
where settlements are read, and rendered by `documents.render.render_settlement_slip`."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from quartermaster.core.money import parse_money
from quartermaster.documents.types import FarmerBalance, Name
from quartermaster.market.models import Farmer
from quartermaster.market.selectors import current_settings, farmer_view


def farmer_balance(farmer: Farmer, *, issuer: str) -> FarmerBalance:
    """Where `farmer` stands now, in the market's time zone. The figures are the farmer's wire
    view's (`payable`, `advance_outstanding`), so the document always says what the API says."""
    view = farmer_view(farmer)
    return FarmerBalance(
        farmer_number=farmer.number,
        farmer=Name(en=farmer.name, ta=farmer.name_ta),
        village=farmer.village,
        phone=farmer.phone,
        payable_minor=parse_money(view["payable"]),
        advance_outstanding_minor=parse_money(view["advance_outstanding"]),
        as_of=datetime.now(ZoneInfo(current_settings().timezone)),
        issuer=issuer,
    )
