"""Wire schemas for sync: the batch, its per-op results, the change feed, device status."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from quartermaster.core.references import WireModel
from quartermaster.core.schemas import INT63_MAX
from quartermaster.sync.errors import BatchTooLarge
from quartermaster.sync.ops import MAX_OPS


class OpIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    op_id: StrictStr = Field(min_length=1, max_length=255)
    type: StrictStr = Field(min_length=1, max_length=100, examples=["item.create"])
    payload: dict[str, Any] = Field(default_factory=dict)
    client_temp_id: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    client_ts: StrictStr | None = Field(default=None, max_length=40)
    device_seq: StrictInt | None = Field(default=None, ge=1, le=INT63_MAX)
    group: StrictStr | None = Field(default=None, min_length=1, max_length=100)
    base_version: StrictInt | None = Field(default=None, ge=0, le=INT63_MAX)

    @field_validator("client_ts")
    @classmethod
    def iso_timestamp(cls, value: str | None) -> str | None:
        # Kept as the device sent it (it is the device's claim), but it must be a timestamp.
        if value is not None:
            try:
                datetime.fromisoformat(value)
            except ValueError as exc:
                raise ValueError("an ISO 8601 timestamp, e.g. 2026-11-21T05:12:03Z") from exc
        return value


class BatchIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    device_id: StrictStr = Field(min_length=1, max_length=200)
    ops: list[OpIn] = Field(description=f"at most {MAX_OPS}; more → 413")

    @model_validator(mode="before")
    @classmethod
    def at_most_max_ops(cls, data: Any) -> Any:
        # Before validating a single op: an oversized batch is 413, whatever is inside it.
        ops = data.get("ops") if isinstance(data, dict) else None
        if isinstance(ops, list) and len(ops) > MAX_OPS:
            raise BatchTooLarge(f"at most {MAX_OPS} ops per batch, got {len(ops)}")
        return data


class BatchQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = False


class OpResultOut(BaseModel):
    op_id: str
    status: int
    body: Any
    id_map: dict[str, str]
    replayed: bool
    review: bool = Field(
        default=False,
        description="applied, but captured (client_ts) on a day since closed (a truck's "
        "day-end): booked at server time and listed for review on the day-end",
    )


class BatchOut(BaseModel):
    results: list[OpResultOut]
    cursor: str = Field(
        description="the change-feed position after this batch: every change it made is at or "
        "below it. A device keeps pulling /sync/changes from its own cursor (jumping to this one "
        "would skip other devices' changes); this one says how far to pull to see its own ops."
    )
    dry_run: bool


class ChangesQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    since: str | None = Field(default=None, description="a cursor from an earlier answer; 0")
    limit: int | None = None


class ChangeOut(BaseModel):
    seq: int
    entity: str
    id: str
    op: str = Field(examples=["upsert", "delete"])
    version: int | None
    data: dict[str, Any] | None


class ChangesOut(BaseModel):
    changes: list[ChangeOut]
    cursor: str
    has_more: bool


class SyncStatusOut(BaseModel):
    device_id: str
    last_contiguous_seq: int
    missing: list[list[int]]
    last_seen: str | None


class ConflictOut(BaseModel):
    id: UUID
    entity: str
    entity_id: str
    base_version: int
    client_snapshot: dict[str, Any]
    server_snapshot: dict[str, Any]
    base_snapshot: dict[str, Any] | None
    status: str
    resolution: str | None
    actor: str
    device: str
    created_at: str | None


class ConflictPageOut(BaseModel):
    results: list[ConflictOut]
    next_cursor: str | None


class ConflictQuery(WireModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["open", "resolved"] | None = None
    limit: int | None = None
    cursor: str | None = None


class ResolveIn(WireModel):
    model_config = ConfigDict(extra="forbid")
    strategy: Literal["keep_mine", "keep_theirs", "merge"]
    merged: dict[str, Any] | None = None
