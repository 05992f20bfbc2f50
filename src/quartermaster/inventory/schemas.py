"""Wire schemas for items. Strict types: a boolean is not an integer, a number is not a name."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class ItemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: StrictStr
    qty: StrictInt
    price: StrictStr = "0.00"
    unit: StrictStr = "pcs"
    tracking: StrictStr = "bulk"


class QtyDeltaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    delta: StrictInt


class ItemOut(BaseModel):
    id: UUID
    sku: str
    name: str
    qty: int
    price: str = Field(examples=["12.50"])
    unit: str
    tracking: str
    version: int


class ItemPageOut(BaseModel):
    results: list[ItemOut]
    next_cursor: str | None


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: int | None = None
    cursor: str | None = None
