"""Wire schemas for day-ends. Strict: a boolean is not an integer, money is a decimal string."""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from quartermaster.core.schemas import INT63_MAX


class DayEndCountLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    condition: Literal["full", "empty"] | None = None
    qty: StrictInt = Field(ge=0, le=INT63_MAX)
    serials: list[StrictStr] = Field(default=[], max_length=10_000)
    reason: StrictStr = Field(default="", max_length=500)


class DayEndIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: UUID
    date: date
    counted: list[DayEndCountLineIn] = Field(max_length=500)
    cash_handed_in: StrictStr = Field(examples=["1250.00"])
    cheques_handed_in: StrictStr = Field(default="0.00", examples=["0.00"])
    client_temp_id: StrictStr = Field(default="", max_length=100)


class DayEndQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    location: UUID | None = None
    status: Literal["open", "closed"] | None = None
    limit: int | None = Field(default=None, ge=0, le=INT63_MAX)
    cursor: str | None = None


class DayEndStockOut(BaseModel):
    item: UUID
    condition: str | None
    qty: int


class DayEndBooksOut(BaseModel):
    stock: list[DayEndStockOut]
    cash: str
    cheques: str


class DayEndDifferenceOut(BaseModel):
    kind: Literal["stock", "cash", "cheques"]
    item: UUID | None = None
    condition: str | None = None
    expected: int | str
    counted: int | str
    difference: int | str
    reason: str | None = None
    serials: list[str] | None = None


class DayEndLateOpOut(BaseModel):
    seq: int
    action: str
    actor: str
    device: str
    client_ts: str
    booked_at: str
    records: list[dict[str, str]]
    review: bool


class DayEndOut(BaseModel):
    id: UUID
    number: str
    location: UUID
    date: str
    status: Literal["open", "closed"]
    drivers: list[str]
    expected: DayEndBooksOut
    counted: DayEndBooksOut
    differences: list[DayEndDifferenceOut]
    counted_at: str
    created_by: str
    created_at: str
    closed_by: str | None
    closed_at: str | None
    loss_movement: UUID | None
    found_movement: UUID | None
    journal_entry: UUID | None
    client_temp_id: str
    version: int


class DayEndDetailOut(DayEndOut):
    late_ops: list[DayEndLateOpOut] = Field(
        description="ops captured on this day but booked after it was closed: accepted, "
        "booked at server time, flagged for review"
    )


class DayEndPageOut(BaseModel):
    results: list[DayEndOut]
    next_cursor: str | None
