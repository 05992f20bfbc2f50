"""Wire schemas for items. Strict types: a boolean is not an integer, a number is not a name."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX


class ItemIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    qty: StrictInt
    price: StrictStr = "0.00"
    unit: StrictStr = "pcs"
    tracking: StrictStr = "bulk"
    tax_rate_bp: StrictInt = 0
    deposit: StrictStr = "0.00"
    # A cylinder-like item: its stock is held per condition (full, empty).
    returnable: StrictBool = False


class ItemPatchIn(WireModel):
    """Editable fields only: qty changes through PATCH /items/{id}/qty (deltas), never here."""

    model_config = ConfigDict(extra="forbid")
    name: StrictStr | None = None
    price: StrictStr | None = None
    unit: StrictStr | None = None
    base_version: StrictInt | None = Field(default=None, ge=0, le=INT63_MAX)


class QtyDeltaIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    delta: StrictInt


class ItemOut(BaseModel):
    id: UUID
    sku: str
    name: str
    # Stock at the default location; null for a reader who cannot see that location.
    qty: int | None
    price: str = Field(examples=["12.50"])
    unit: str
    tracking: str
    tax_rate_bp: int
    deposit: str
    returnable: bool
    version: int


class ItemPageOut(BaseModel):
    results: list[ItemOut]
    next_cursor: str | None


class ListQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None


class LocationIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    kind: StrictStr
    # Staff may receive from suppliers here (elsewhere a receipt is a manager's).
    receives: StrictBool = False


class LocationOut(BaseModel):
    id: UUID
    name: str
    kind: str
    is_default: bool
    receives: bool
    created_at: str


class LocationPageOut(BaseModel):
    results: list[LocationOut]
    next_cursor: str | None


class LocationQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    limit: int | None = None
    cursor: str | None = None


class StockQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID | None = None
    location: UUID | None = None
    limit: int | None = None


class StockOut(BaseModel):
    item: UUID
    location: UUID
    qty: int
    # Returnable items only: "full" or "empty".
    condition: str | None = None


class MoveLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    qty: StrictInt
    serials: list[StrictStr] = Field(default_factory=list)
    # Returnable items only: "full" (default) or "empty".
    condition: StrictStr = ""


class AdjustLineIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID
    delta: StrictInt
    serials: list[StrictStr] = Field(default_factory=list)
    condition: StrictStr = ""


class ReceiptIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    to_location: UUID
    lines: list[MoveLineIn]
    supplier: StrictStr = ""
    client_temp_id: StrictStr = ""


class DistributionIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    from_location: UUID
    to_location: UUID
    lines: list[MoveLineIn]
    client_temp_id: StrictStr = ""


class AdjustmentIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    location: UUID
    lines: list[AdjustLineIn]
    reason: StrictStr


class MovementLineOut(BaseModel):
    line: int
    item: UUID
    from_location: UUID
    to_location: UUID
    qty: int
    serials: list[str]
    condition: str | None = None
    to_condition: str | None = None


class MovementOut(BaseModel):
    id: UUID
    kind: str
    reason: str
    reference: str
    reverses: UUID | None
    client_temp_id: str | None
    actor: str
    created_at: str
    lines: list[MovementLineOut]


class AssetQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    item: UUID | None = None
    location: UUID | None = None
    serial: str | None = None
    customer: UUID | None = None
    limit: int | None = None


class AssetOut(BaseModel):
    id: UUID
    item: UUID
    serial: str
    location: UUID
    state: str
    customer: UUID | None
    deposit_held: str
    version: int
