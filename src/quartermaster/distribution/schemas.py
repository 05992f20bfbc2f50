"""Wire schemas for loads. Strict: a boolean is not an integer."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX


class LoadLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    qty: StrictInt
    serials: list[StrictStr] = []
    # Returnable items only: "full" (default) or "empty".
    condition: StrictStr = ""


class LoadIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    from_location: UUID
    to_location: UUID
    lines: list[LoadLineIn]
    client_temp_id: StrictStr = ""


class CountedLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    qty: StrictInt
    serials: list[StrictStr] = []
    reason: StrictStr = ""


class ReceiptIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[CountedLineIn]


class LoadQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    status: StrictStr | None = None
    older_than_hours: int | None = Field(default=None, ge=0, le=100_000)
    limit: int | None = Field(default=None, ge=0, le=INT63_MAX)
    cursor: str | None = None


class LoadLineOut(BaseModel):
    item: UUID
    qty: int
    serials: list[str]
    condition: str | None = None
    received_qty: int | None
    received_serials: list[str]
    reason: str


class LoadOut(BaseModel):
    id: UUID
    number: str
    from_location: UUID
    to_location: UUID
    status: str
    approval: str
    dispatched_at: str
    dispatched_by: str
    received_at: str | None
    received_by: str | None
    shortage: str
    approved_by: str | None
    client_temp_id: str
    version: int
    lines: list[LoadLineOut]


class LoadPageOut(BaseModel):
    results: list[LoadOut]
    next_cursor: str | None


class RefillLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    qty: StrictInt
    # A serialized item's empties by serial (one per unit).
    serials: list[StrictStr] = []


class RefillIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    from_location: UUID
    lines: list[RefillLineIn]
    client_temp_id: StrictStr = ""


class RefillReceiptIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    lines: list[CountedLineIn]


class RefillLineOut(BaseModel):
    item: UUID
    qty: int
    serials: list[str]
    received_qty: int | None
    received_serials: list[str]
    reason: str


class RefillOut(BaseModel):
    id: UUID
    number: str
    from_location: UUID
    status: str
    sent_at: str
    sent_by: str
    received_at: str | None
    received_by: str | None
    client_temp_id: str
    version: int
    lines: list[RefillLineOut]
