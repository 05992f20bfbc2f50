"""Reads of loads: one load with its lines, and lists by status and age, scoped to the
locations the reader may see (a load shows to those who see either end of it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db.models import Q
from django.utils import timezone

from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, time_key, uuid_key
from quartermaster.core.types import Actor, View
from quartermaster.distribution.models import Load, LoadLine
from quartermaster.identity.permissions import sees_every_location


@dataclass(frozen=True)
class LoadLineView:
    item: UUID
    qty: int
    serials: tuple[str, ...]
    received_qty: int | None
    received_serials: tuple[str, ...]
    reason: str
    condition: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "qty": self.qty,
            "serials": list(self.serials),
            # A returnable item's line only (so every other line reads as it always has).
            **({"condition": self.condition} if self.condition else {}),
            "received_qty": self.received_qty,
            "received_serials": list(self.received_serials),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class LoadView(View):
    id: UUID
    number: str
    from_location: UUID
    to_location: UUID
    status: str
    approval: str
    dispatched_at: datetime
    dispatched_by: str
    received_at: datetime | None
    received_by: str
    shortage_minor: int
    approved_by: str
    client_temp_id: str
    version: int
    lines: tuple[LoadLineView, ...]

    def to_wire(self) -> dict[str, Any]:
        """API.md "Distributor": loads."""
        return {
            "id": str(self.id),
            "number": self.number,
            "from_location": str(self.from_location),
            "to_location": str(self.to_location),
            "status": self.status,
            "approval": self.approval,
            "dispatched_at": self.dispatched_at.isoformat(),
            "dispatched_by": self.dispatched_by,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "received_by": self.received_by or None,
            "shortage": format_money(self.shortage_minor),
            "approved_by": self.approved_by or None,
            "client_temp_id": self.client_temp_id,
            "version": self.version,
            "lines": [line.body() for line in self.lines],
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: the wire body as first published, kept as it is from here on."""
        return {
            "id": str(self.id),
            "number": self.number,
            "from_location": str(self.from_location),
            "to_location": str(self.to_location),
            "status": self.status,
            "approval": self.approval,
            "received_by": self.received_by,
            "shortage_minor": self.shortage_minor,
            "approved_by": self.approved_by,
            "version": self.version,
            "lines": [line.body() for line in self.lines],
        }


def load_view(load: Load, lines: list[LoadLine] | None = None) -> LoadView:
    rows = lines if lines is not None else list(load.lines.order_by("line_no"))
    return LoadView(
        id=load.id,
        number=load.number,
        from_location=load.from_location_id,
        to_location=load.to_location_id,
        status=load.status,
        approval=load.approval,
        dispatched_at=load.dispatched_at,
        dispatched_by=load.dispatched_by,
        received_at=load.received_at,
        received_by=load.received_by,
        shortage_minor=load.shortage_minor,
        approved_by=load.approved_by,
        client_temp_id=load.client_temp_id,
        version=load.version,
        lines=tuple(
            LoadLineView(
                item=row.item_id,
                qty=row.qty,
                serials=tuple(row.serials),
                received_qty=row.received_qty,
                received_serials=tuple(row.received_serials),
                reason=row.reason,
                condition=row.condition,
            )
            for row in rows
        ),
    )


def get_load(load_id: UUID) -> Load | None:
    return Load.objects.filter(pk=load_id).first()


def visible_to(actor: Actor, load: Load) -> bool:
    if sees_every_location(actor):
        return True
    return bool({load.from_location_id, load.to_location_id} & actor.location_ids)


LOAD_ORDER = Keyset(fields=(time_key("dispatched_at"), uuid_key("id")))


def list_loads(
    *, actor: Actor, status: str | None, older_than_hours: int | None, page: PageRequest
) -> Page[Load]:
    """Loads oldest first (the ones waiting longest lead the list)."""
    query = Load.objects.prefetch_related("lines")
    if not sees_every_location(actor):
        mine = list(actor.location_ids)
        query = query.filter(Q(from_location__in=mine) | Q(to_location__in=mine))
    if status is not None:
        query = query.filter(status=status)
    if older_than_hours is not None:
        query = query.filter(dispatched_at__lt=timezone.now() - timedelta(hours=older_than_hours))
    return LOAD_ORDER.page(query, page)
