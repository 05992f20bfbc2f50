"""The market's documents as typed values for the one PDF engine (quartermaster.documents):
a farmer's balance and a settlement slip."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from quartermaster.documents.types import (
    FarmerBalance,
    Name,
    Quantity,
    SettlementSlip,
    SlipEntry,
    SlipFee,
)
from quartermaster.market import invariants
from quartermaster.market.models import Farmer, Settlement
from quartermaster.market.selectors import current_settings, farmer_view


def farmer_balance(farmer: Farmer, *, issuer: str) -> FarmerBalance:
    """Where `farmer` stands now, in the market's time zone. The figures are the farmer's
    view's (`payable`, `advance_outstanding`), so the document always says what the API says."""
    view = farmer_view(farmer)
    return FarmerBalance(
        farmer_number=farmer.number,
        farmer=Name(en=farmer.name, ta=farmer.name_ta),
        village=farmer.village,
        phone=farmer.phone,
        payable_minor=view.payable_minor,
        advance_outstanding_minor=view.advance_outstanding_minor,
        as_of=datetime.now(ZoneInfo(current_settings().timezone)),
        issuer=issuer,
    )


def settlement_slip(settlement: Settlement, *, issuer: str) -> SettlementSlip:
    """The slip of `settlement` as it was generated (its figures are fixed then); fee names in
    both scripts from the market's settings, the code alone for a fee since removed."""
    farmer = settlement.farmer
    fee_names = {fee.code: Name(en=fee.name, ta=fee.name_ta) for fee in current_settings().fees}
    entries = settlement.entries.select_related("flower").order_by("seq")
    return SettlementSlip(
        number=settlement.number,
        status=settlement.status,
        farmer_number=farmer.number,
        farmer=Name(en=farmer.name, ta=farmer.name_ta),
        village=farmer.village,
        period_from=settlement.period_from,
        period_to=settlement.period_to,
        entries=tuple(
            SlipEntry(
                number=entry.number,
                day=entry.market_day,
                slot=entry.slot,
                flower=Name(en=entry.flower.name, ta=entry.flower.name_ta),
                qty=Quantity(
                    str(invariants.format_qty(entry.qty_base, entry.flower.unit)), entry.flower.unit
                ),
                rate_minor=entry.rate_minor or 0,
                gross_minor=entry.gross_minor or 0,
            )
            for entry in entries
        ),
        gross_minor=settlement.gross_minor,
        commission_bp=settlement.commission_bp,
        commission_minor=settlement.commission_minor,
        fees=tuple(
            SlipFee(
                code=fee["code"],
                name=fee_names.get(fee["code"], Name(en=fee["code"])),
                amount_minor=fee["amount_minor"],
            )
            for fee in settlement.fees
        ),
        advance_recovered_minor=settlement.advance_recovered_minor,
        net_minor=settlement.net_minor,
        issued_at=datetime.now(ZoneInfo(current_settings().timezone)),
        issuer=issuer,
    )
