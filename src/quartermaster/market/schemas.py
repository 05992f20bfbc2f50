"""Wire schemas for the market. Strict: a boolean is not an integer, money is a decimal string."""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from quartermaster.core.references import WireModel


class PageQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class RatesQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    date: str | None = None
    flower: UUID | None = None
    limit: int | None = None
    cursor: str | None = None


class FlowerIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    code: StrictStr
    name: StrictStr
    name_ta: StrictStr
    unit: StrictStr


class FlowerOut(BaseModel):
    id: UUID
    code: str
    name: str
    name_ta: str
    unit: str
    created_at: str


class FlowerPageOut(BaseModel):
    results: list[FlowerOut]
    next_cursor: str | None


class SlotIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    code: StrictStr
    starts: StrictStr
    ends: StrictStr


class FeeIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    code: StrictStr
    name: StrictStr
    name_ta: StrictStr
    kind: StrictStr
    # Basis points (an integer) for percent_bp; a money string for per_unit and per_entry.
    value: StrictInt | StrictStr


class SettingsIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    timezone: StrictStr
    slots: list[SlotIn] = Field(max_length=24)
    commission_bp: StrictInt
    fees: list[FeeIn] = Field(default_factory=list, max_length=20)


class SlotOut(BaseModel):
    code: str
    starts: str
    ends: str


class FeeOut(BaseModel):
    code: str
    name: str
    name_ta: str
    kind: str
    value: int | str


class SettingsOut(BaseModel):
    timezone: str
    slots: list[SlotOut]
    commission_bp: int
    fees: list[FeeOut]
    version: int
    created_at: str | None


class FarmerIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    name_ta: StrictStr = ""
    phone: StrictStr
    whatsapp: StrictStr = ""
    language: StrictStr
    village: StrictStr = ""
    commission_bp: StrictInt | None = None
    user: UUID | None = None


class FarmerPatchIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = None
    name_ta: StrictStr | None = None
    phone: StrictStr | None = None
    whatsapp: StrictStr | None = None
    language: StrictStr | None = None
    village: StrictStr | None = None
    commission_bp: StrictInt | None = None
    user: UUID | None = None
    base_version: StrictInt | None = Field(default=None, ge=0)


class FarmerOut(BaseModel):
    id: UUID
    number: str
    name: str
    name_ta: str | None
    phone: str
    whatsapp: str | None
    language: str
    village: str | None
    commission_bp: int | None
    user: UUID | None
    advance_outstanding: str
    payable: str
    version: int
    created_at: str


class FarmerPageOut(BaseModel):
    results: list[FarmerOut]
    next_cursor: str | None


class RateIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    flower: UUID
    date: StrictStr
    slot: StrictStr
    rate: StrictStr


class RatePostingOut(BaseModel):
    id: UUID
    number: str
    flower: UUID
    date: str
    slot: str
    rate: str
    posted_by: str
    posted_at: str


class RatePostedOut(RatePostingOut):
    priced_entries: int = Field(description="entries that were awaiting this rate, priced now")


class RateInForceOut(BaseModel):
    flower: UUID
    flower_code: str
    slot: str
    rate: str | None
    effective_from: str | None
    posting: UUID | None
    history: list[RatePostingOut]


class RatesOut(BaseModel):
    date: str
    results: list[RateInForceOut]
    next_cursor: str | None


class EntryIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    farmer: UUID
    flower: UUID
    qty: StrictInt | StrictStr = Field(
        description='a kg flower: a decimal string with up to 3 places ("12.500"); a piece or '
        "bundle flower: an integer"
    )
    arrived_at: StrictStr | None = Field(
        default=None, description="ISO 8601 with offset; default: the time of receipt"
    )
    client_temp_id: StrictStr = Field(default="", max_length=100)


class EntryPatchIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    qty: StrictInt | StrictStr | None = None
    flower: UUID | None = None
    farmer: UUID | None = None
    base_version: StrictInt | None = Field(default=None, ge=0)


class ReasonIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    reason: StrictStr


class EntryOut(BaseModel):
    id: UUID
    number: str
    farmer: UUID
    flower: UUID
    unit: str
    qty: int | str
    arrived_at: str
    market_day: str
    slot: str
    rate: str | None
    gross: str | None
    status: str = Field(examples=["open", "awaiting_rate", "settled", "void"])
    settlement: UUID | None
    void_reason: str | None
    version: int
    created_by: str
    client_temp_id: str | None


class EntryPageOut(BaseModel):
    results: list[EntryOut]
    next_cursor: str | None


class EntriesQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    date: str | None = None
    farmer: UUID | None = None
    status: str | None = None
    limit: int | None = None
    cursor: str | None = None


class AdvanceIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    farmer: UUID
    amount: StrictStr
    method: StrictStr = Field(examples=["cash", "bank", "upi"])
    note: StrictStr = ""
    client_temp_id: StrictStr = Field(default="", max_length=100)


class AdvanceOut(BaseModel):
    id: UUID
    number: str
    farmer: UUID
    amount: str
    method: str
    note: str | None
    journal_entry: UUID
    created_by: str
    created_at: str
    client_temp_id: str | None
    advance_outstanding: str | None = None


class AdvancePageOut(BaseModel):
    results: list[AdvanceOut]
    next_cursor: str | None


class SettlementIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    farmer: UUID
    period_from: StrictStr
    period_to: StrictStr


class PayIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    method: StrictStr = Field(examples=["cash", "bank", "upi"])


class SettlementFeeOut(BaseModel):
    code: str
    amount: str


class SettlementEntryOut(BaseModel):
    id: UUID
    number: str
    market_day: str
    slot: str
    flower: UUID
    qty: int | str
    rate: str | None
    gross: str | None


class SettlementOut(BaseModel):
    id: UUID
    number: str
    farmer: UUID
    period_from: str
    period_to: str
    status: str = Field(examples=["draft", "approved", "paid", "cancelled"])
    entry_count: int
    gross: str
    commission_bp: int
    commission: str
    fees: list[SettlementFeeOut]
    advance_recovered: str
    net: str
    payment_method: str | None
    cancel_reason: str | None
    version: int
    created_by: str
    created_at: str
    approved_by: str | None
    approved_at: str | None
    paid_by: str | None
    paid_at: str | None
    cancelled_by: str | None
    cancelled_at: str | None
    entries: list[SettlementEntryOut] | None = None
    awaiting_rate_entries: int | None = None


class SettlementPageOut(BaseModel):
    results: list[SettlementOut]
    next_cursor: str | None


class SettlementsQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    farmer: UUID | None = None
    status: str | None = None
    limit: int | None = None
    cursor: str | None = None


class AdvancesQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    farmer: UUID | None = None
    limit: int | None = None
    cursor: str | None = None


class StatementQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    date_from: str | None = Field(default=None, alias="from")
    date_to: str | None = Field(default=None, alias="to")
    format: Literal["json", "csv", "xlsx"] = "json"


class StatementLineOut(BaseModel):
    at: str
    kind: str = Field(
        examples=["entry", "advance", "settlement", "settlement_cancelled", "payment"]
    )
    reference: str
    description: str
    qty: int | str | None
    gross: str | None
    amount: str | None
    balance: str


class StatementOut(BaseModel):
    farmer: UUID
    number: str
    name: str
    period_from: str | None
    period_to: str | None
    opening_balance: str
    lines: list[StatementLineOut]
    balance: str
    advance_outstanding: str
    payable: str


class ReportQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    date: str
    format: Literal["json", "csv", "xlsx"] = "json"


class ReportFlowerOut(BaseModel):
    flower: UUID
    code: str
    name: str
    unit: str
    entries: int
    qty: int | str
    gross: str


class ReportSlotOut(BaseModel):
    slot: str
    entries: int
    gross: str


class ReportFarmerOut(BaseModel):
    farmer: UUID
    number: str
    name: str
    entries: int
    gross: str


class DailyReportOut(BaseModel):
    date: str
    entries: int
    gross: str
    awaiting_rate: int
    by_flower: list[ReportFlowerOut]
    by_slot: list[ReportSlotOut]
    by_farmer: list[ReportFarmerOut]
