"""Reads for the day-end: the books (stock expected on a truck, money its drivers took), a
day-end as a typed view, lists scoped to the reader's locations, and the ops that arrived for
a day after it was closed.

`expected_stock` is the ONE place the day-end reads stock: when stock gains a condition (full,
empty) for returnable items, only it changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from quartermaster.core.commands import Command
from quartermaster.core.models import AuditEntry
from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, time_key, uuid_key
from quartermaster.core.types import Actor, View
from quartermaster.dayend.invariants import (
    CASH_METHOD,
    CHEQUE_METHOD,
    DayEndStatus,
    StockRow,
    local_day_of,
)
from quartermaster.dayend.models import DayEnd, DayEndLine
from quartermaster.identity.models import Role, User
from quartermaster.identity.permissions import sees_every_location
from quartermaster.inventory.models import Asset, Item, MovementLine
from quartermaster.sales.models import Payment
from quartermaster.sync.review import Captured

# How many late ops a day-end lists (a device that synced a week of one day is still shown).
MAX_LATE_OPS = 500


def day_zone() -> ZoneInfo:
    """The zone a business day is kept in (a truck's day ends at local midnight)."""
    return ZoneInfo(settings.DAY_END_TIMEZONE)


def expected_stock(location_id: UUID, until: datetime) -> list[StockRow]:
    """Stock at `location_id` as the movement ledger has it up to `until`: what came in minus
    what went out, per item and condition (None for an item that is not returnable: its rows
    carry ""), rows with none left out. Read from the ledger, not the projection, so a day-end
    made the next morning still expects the day's own evening. A unit arrives in its line's
    `to_condition` and leaves in its `condition` (an exchange's empty came in as one)."""
    moved = MovementLine.objects.filter(movement__created_at__lt=until)
    incoming = {
        (item, condition): total
        for item, condition, total in moved.filter(to_location_id=location_id)
        .values_list("item_id", "to_condition")
        .annotate(total=Sum("qty"))
        .values_list("item_id", "to_condition", "total")
    }
    outgoing = {
        (item, condition): total
        for item, condition, total in moved.filter(from_location_id=location_id)
        .values_list("item_id", "condition")
        .annotate(total=Sum("qty"))
        .values_list("item_id", "condition", "total")
    }
    rows = []
    for item, condition in sorted(set(incoming) | set(outgoing), key=lambda k: (str(k[0]), k[1])):
        qty = int(incoming.get((item, condition)) or 0) - int(outgoing.get((item, condition)) or 0)
        if qty:
            rows.append(StockRow(item=item, condition=condition or None, qty=qty))
    return rows


def serialized_items(item_ids: list[UUID]) -> set[UUID]:
    return set(Item.objects.filter(pk__in=item_ids, tracking="serial").values_list("pk", flat=True))


def serials_at(location_id: UUID, item_id: UUID, *, state: str | None = None) -> list[str]:
    """The serials of `item_id` the asset register has at `location_id`, in order; only those
    in `state` (full, empty) when one is named (a returnable item is counted per condition)."""
    held = Asset.objects.filter(location_id=location_id, item_id=item_id)
    if state is not None:
        held = held.filter(state=state)
    return list(held.order_by("serial").values_list("serial", flat=True))


def drivers_of(location_id: UUID) -> list[str]:
    """The staff assigned to the truck, by username: their payments are money in the truck."""
    return sorted(
        User.objects.filter(locations=location_id, role=Role.STAFF, is_active=True).values_list(
            "username", flat=True
        )
    )


@dataclass(frozen=True)
class MoneyTaken:
    cash_minor: int
    cheques_minor: int


def money_taken(drivers: list[str], start: datetime, end: datetime) -> MoneyTaken:
    """Cash and cheques the drivers recorded as payments in [start, end): booked at server
    time, so a payment synced late is counted on the day it reached the server."""
    sums = dict(
        Payment.objects.filter(
            created_by__in=drivers,
            created_at__gte=start,
            created_at__lt=end,
            method__in=[CASH_METHOD, CHEQUE_METHOD],
        )
        .values_list("method")
        .annotate(total=Sum("amount_minor"))
        .values_list("method", "total")
    )
    return MoneyTaken(int(sums.get(CASH_METHOD) or 0), int(sums.get(CHEQUE_METHOD) or 0))


@dataclass(frozen=True)
class DayEndLineView:
    item: UUID
    condition: str | None
    expected: int
    counted: int
    reason: str
    missing_serials: tuple[str, ...]

    @property
    def difference(self) -> int:
        return self.counted - self.expected


@dataclass(frozen=True)
class DayEndView(View):
    id: UUID
    number: str
    location: UUID
    day: date
    status: str
    drivers: tuple[str, ...]
    counted_at: datetime
    expected_cash_minor: int
    expected_cheques_minor: int
    cash_handed_in_minor: int
    cheques_handed_in_minor: int
    lines: tuple[DayEndLineView, ...]
    created_by: str
    created_at: datetime
    closed_by: str
    closed_at: datetime | None
    loss_movement: UUID | None
    found_movement: UUID | None
    journal_entry: UUID | None
    client_temp_id: str
    version: int

    def differences(self) -> list[dict[str, Any]]:
        stock = [
            {
                "kind": "stock",
                "item": str(line.item),
                "condition": line.condition,
                "expected": line.expected,
                "counted": line.counted,
                "difference": line.difference,
                "reason": line.reason,
                "serials": list(line.missing_serials),
            }
            for line in self.lines
            if line.difference
        ]
        money = [
            {
                "kind": kind,
                "expected": format_money(expected),
                "counted": format_money(counted),
                "difference": format_money(counted - expected),
            }
            for kind, expected, counted in (
                ("cash", self.expected_cash_minor, self.cash_handed_in_minor),
                ("cheques", self.expected_cheques_minor, self.cheques_handed_in_minor),
            )
            if counted != expected
        ]
        return [*stock, *money]

    def to_wire(self) -> dict[str, Any]:
        """API.md "Distributor": day-ends."""
        return {
            "id": str(self.id),
            "number": self.number,
            "location": str(self.location),
            "date": self.day.isoformat(),
            "status": self.status,
            "drivers": list(self.drivers),
            "expected": {
                "stock": [
                    {"item": str(line.item), "condition": line.condition, "qty": line.expected}
                    for line in self.lines
                    if line.expected
                ],
                "cash": format_money(self.expected_cash_minor),
                "cheques": format_money(self.expected_cheques_minor),
            },
            "counted": {
                "stock": [
                    {"item": str(line.item), "condition": line.condition, "qty": line.counted}
                    for line in self.lines
                    if line.counted
                ],
                "cash": format_money(self.cash_handed_in_minor),
                "cheques": format_money(self.cheques_handed_in_minor),
            },
            "differences": self.differences(),
            "counted_at": self.counted_at.isoformat(),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "closed_by": self.closed_by or None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "loss_movement": str(self.loss_movement) if self.loss_movement else None,
            "found_movement": str(self.found_movement) if self.found_movement else None,
            "journal_entry": str(self.journal_entry) if self.journal_entry else None,
            "client_temp_id": self.client_temp_id,
            "version": self.version,
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: the figures in minor units, as first recorded."""
        return {
            "id": str(self.id),
            "number": self.number,
            "location": str(self.location),
            "day": self.day.isoformat(),
            "status": self.status,
            "drivers": list(self.drivers),
            "expected_cash_minor": self.expected_cash_minor,
            "expected_cheques_minor": self.expected_cheques_minor,
            "cash_handed_in_minor": self.cash_handed_in_minor,
            "cheques_handed_in_minor": self.cheques_handed_in_minor,
            "lines": [
                {
                    "item": str(line.item),
                    "condition": line.condition,
                    "expected": line.expected,
                    "counted": line.counted,
                    "reason": line.reason,
                    "missing_serials": list(line.missing_serials),
                }
                for line in self.lines
            ],
            "closed_by": self.closed_by,
            "loss_movement": str(self.loss_movement) if self.loss_movement else None,
            "found_movement": str(self.found_movement) if self.found_movement else None,
            "journal_entry": str(self.journal_entry) if self.journal_entry else None,
            "version": self.version,
        }


def day_end_view(day_end: DayEnd, lines: list[DayEndLine] | None = None) -> DayEndView:
    rows = lines if lines is not None else list(day_end.lines.order_by("line_no"))
    return DayEndView(
        id=day_end.id,
        number=day_end.number,
        location=day_end.location_id,
        day=day_end.day,
        status=day_end.status,
        drivers=tuple(day_end.drivers),
        counted_at=day_end.counted_at,
        expected_cash_minor=day_end.expected_cash_minor,
        expected_cheques_minor=day_end.expected_cheques_minor,
        cash_handed_in_minor=day_end.cash_handed_in_minor,
        cheques_handed_in_minor=day_end.cheques_handed_in_minor,
        lines=tuple(
            DayEndLineView(
                item=row.item_id,
                condition=row.condition or None,
                expected=row.expected_qty,
                counted=row.counted_qty,
                reason=row.reason,
                missing_serials=tuple(row.missing_serials),
            )
            for row in rows
        ),
        created_by=day_end.created_by,
        created_at=day_end.created_at,
        closed_by=day_end.closed_by,
        closed_at=day_end.closed_at,
        loss_movement=day_end.loss_movement_id,
        found_movement=day_end.found_movement_id,
        journal_entry=day_end.journal_entry,
        client_temp_id=day_end.client_temp_id,
        version=day_end.version,
    )


def get_day_end(*, actor: Actor, day_end_id: UUID) -> DayEnd | None:
    """The day-end, if the reader sees its location (None otherwise: 404, as if absent)."""
    query = DayEnd.objects.filter(pk=day_end_id)
    if not sees_every_location(actor):
        query = query.filter(location__in=list(actor.location_ids))
    return query.first()


def find_day_end(location_id: UUID, day: date) -> DayEnd | None:
    return DayEnd.objects.filter(location_id=location_id, day=day).first()


DAY_END_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")))


def list_day_ends(
    *,
    actor: Actor,
    location: UUID | None,
    status: str | None,
    page: PageRequest,
) -> Page[DayEnd]:
    query = DayEnd.objects.prefetch_related("lines")
    if not sees_every_location(actor):
        query = query.filter(location__in=list(actor.location_ids))
    if location is not None:
        query = query.filter(location_id=location)
    if status is not None:
        query = query.filter(status=status)
    return DAY_END_ORDER.page(query, page)


@dataclass(frozen=True)
class LateOp:
    """An op captured on a closed day and booked after it was closed: one per command, with
    the records it changed."""

    action: str
    actor: str
    device: str
    client_ts: str
    booked_at: datetime
    first_seq: int
    records: tuple[tuple[str, str], ...]

    def wire(self) -> dict[str, Any]:
        return {
            "seq": self.first_seq,
            "action": self.action,
            "actor": self.actor,
            "device": self.device,
            "client_ts": self.client_ts,
            "booked_at": self.booked_at.isoformat(),
            "records": [{"type": kind, "id": entity} for kind, entity in self.records],
            "review": True,
        }


def late_ops(day_end: DayEnd) -> list[LateOp]:
    """What the truck's drivers recorded for the day-end's day but the server booked after the
    day was closed — captured on it (`client_ts`, an offline op synced late) or, without a
    capture time, booked on it — read from the audit chain, which keeps both times: accepted,
    never dated back into the day's figures, listed here for a person to review."""
    if day_end.status != DayEndStatus.CLOSED or day_end.closed_at is None or not day_end.drivers:
        return []
    zone = day_zone()
    entries = (
        AuditEntry.objects.filter(at__gt=day_end.closed_at, actor__in=day_end.drivers)
        .order_by("seq")
        .only("seq", "at", "actor", "device", "action", "entity_type", "entity_id", "client_ts")
    )
    found: list[LateOp] = []
    for entry in entries[: MAX_LATE_OPS * 10]:
        if not _is_record_of_the_day(entry.action):
            continue
        captured = local_day_of(entry.client_ts, zone) or entry.at.astimezone(zone).date()
        if captured != day_end.day:
            continue
        record = (entry.entity_type, entry.entity_id)
        last = found[-1] if found else None
        # One command's entries share its action, actor, capture and booking time.
        if last is not None and (last.action, last.actor, last.client_ts, last.booked_at) == (
            entry.action,
            entry.actor,
            entry.client_ts,
            entry.at,
        ):
            found[-1] = replace(last, records=(*last.records, record))
            continue
        if len(found) == MAX_LATE_OPS:
            break
        found.append(
            LateOp(
                entry.action,
                entry.actor,
                entry.device,
                entry.client_ts,
                entry.at,
                entry.seq,
                (record,),
            )
        )
    return found


def _is_record_of_the_day(action: str) -> bool:
    """Work a driver records (an op type: sales, payments, moves), not their sessions or
    device claims."""
    command = Command.registry.get(action)
    return command is not None and getattr(command, "syncable", True)


def closed_day_for(actor: Actor, ops: Sequence[Captured]) -> list[bool]:
    """sync's review check, for a batch: does each op, captured at its `client_ts` (now, when
    it has none), fall on a closed day of a truck it concerns — one the actor is assigned to,
    or one its payload names? One query for the batch."""
    zone = day_zone()
    today = timezone.now().astimezone(zone).date()
    wanted = [(local_day_of(op.client_ts, zone) or today, _locations_of(actor, op)) for op in ops]
    days = {day for day, _ in wanted}
    places = {place for _, located in wanted for place in located}
    if not places:
        return [False] * len(ops)
    closed = set(
        DayEnd.objects.filter(
            location__in=places, day__in=days, status=DayEndStatus.CLOSED
        ).values_list("location_id", "day")
    )
    return [any((place, day) in closed for place in located) for day, located in wanted]


def _locations_of(actor: Actor, op: Captured) -> set[UUID]:
    places = set(actor.location_ids)
    for key in ("location", "from_location", "to_location"):
        value = op.payload.get(key)
        if isinstance(value, str):
            try:
                places.add(UUID(value))
            except ValueError:
                continue
    return places
