"""Refills, the supplier exchange: a depot sends empties to the filling plant and receives fulls
back against them, so an empty is refilled and sold again.

Send (`refill.send`): the empties leave the depot at once for the filling plant, a counted
location like in-transit. Receive (`refill.receive`, once): each line's fulls come back into the
depot; fewer back than sent is a loss from the plant with its reason. Both are sync ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict

from quartermaster.core import policy
from quartermaster.core.commands import Command
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Actor, Change, Context, Outcome, View
from quartermaster.distribution import invariants
from quartermaster.distribution.invariants import (
    Counted,
    Dispatched,
    LineOutcome,
    RefillAlreadyReceived,
    RefillStatus,
)
from quartermaster.distribution.models import Refill, RefillLine
from quartermaster.distribution.services import book_receipt
from quartermaster.identity.permissions import sees_every_location
from quartermaster.inventory import invariants as inventory_rules
from quartermaster.inventory.invariants import OWN_KINDS, Condition, LocationKind, MovementKind
from quartermaster.inventory.ledger import LineSpec, move_stock
from quartermaster.inventory.models import Item, Location, Movement
from quartermaster.inventory.selectors import get_filling_plant, get_virtual_location

ENTITY = "refill"


@dataclass(frozen=True)
class RefillLineView:
    item: UUID
    qty: int
    serials: tuple[str, ...]
    received_qty: int | None
    received_serials: tuple[str, ...]
    reason: str

    def body(self) -> dict[str, Any]:
        return {
            "item": str(self.item),
            "qty": self.qty,
            "serials": list(self.serials),
            "received_qty": self.received_qty,
            "received_serials": list(self.received_serials),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class RefillView(View):
    id: UUID
    number: str
    location: UUID
    status: str
    sent_at: datetime
    sent_by: str
    received_at: datetime | None
    received_by: str
    client_temp_id: str
    version: int
    lines: tuple[RefillLineView, ...]

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "from_location": str(self.location),
            "status": self.status,
            "sent_at": self.sent_at.isoformat(),
            "sent_by": self.sent_by,
            "received_at": self.received_at.isoformat() if self.received_at else None,
            "received_by": self.received_by or None,
            "client_temp_id": self.client_temp_id,
            "version": self.version,
            "lines": [line.body() for line in self.lines],
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: the wire body as first published."""
        return self.to_wire()


def refill_view(refill: Refill, lines: Sequence[RefillLine] | None = None) -> RefillView:
    rows = lines if lines is not None else list(refill.lines.order_by("line_no"))
    return RefillView(
        id=refill.id,
        number=refill.number,
        location=refill.location_id,
        status=refill.status,
        sent_at=refill.sent_at,
        sent_by=refill.sent_by,
        received_at=refill.received_at,
        received_by=refill.received_by,
        client_temp_id=refill.client_temp_id,
        version=refill.version,
        lines=tuple(
            RefillLineView(
                row.item_id,
                row.qty,
                tuple(row.serials),
                row.received_qty,
                tuple(row.received_serials),
                row.reason,
            )
            for row in rows
        ),
    )


def get_refill(*, actor: Actor, refill_id: UUID) -> Refill | None:
    """A refill, for one who sees its depot (else None: 404)."""
    refill = Refill.objects.filter(pk=refill_id).first()
    if refill is None:
        return None
    if not sees_every_location(actor) and refill.location_id not in actor.location_ids:
        return None
    return refill


class RefillLineIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    qty: int
    serials: tuple[str, ...] = ()


class SendRefill(Command):
    """Empties leave `from_location` now for the filling plant."""

    name = "refill.send"
    from_location: UUID
    lines: tuple[RefillLineIn, ...]
    client_temp_id: str = ""

    def validated(self) -> SendRefill:
        inventory_rules.clean_line_count(len(self.lines))
        cleaned = []
        for index, line in enumerate(self.lines):
            qty, serials = inventory_rules.clean_line(index, line.qty, line.serials)
            cleaned.append(line.model_copy(update={"qty": qty, "serials": serials}))
        items = [line.item for line in cleaned]
        if len(set(items)) != len(items):
            raise Invalid.field("lines", "each item once per refill (add up its quantities)")
        return self.model_copy(update={"lines": tuple(cleaned)})

    def handle(self, ctx: Context) -> Outcome:
        policy.authorize(ctx.actor, self.name, location_id=self.from_location)
        source = Location.objects.filter(pk=self.from_location).first()
        if source is None:
            raise NotFound()
        if source.kind not in OWN_KINDS:
            raise Invalid.field("from_location", "must be a depot, vehicle or store")
        items = Item.objects.in_bulk([line.item for line in self.lines])
        for index, line in enumerate(self.lines):
            item = items.get(line.item)
            if item is not None and not item.returnable:
                raise Invalid.field(f"lines[{index}].item", "only a returnable item is refilled")
        number = next_number("RFL")
        moved = move_stock(
            kind=MovementKind.REFILL,
            lines=[
                LineSpec(
                    line.item,
                    source.pk,
                    get_filling_plant().pk,
                    line.qty,
                    line.serials,
                    condition=Condition.EMPTY,
                )
                for line in self.lines
            ],
            actor=ctx.actor.username,
            reason=f"sent for refilling on {number}",
            reference=f"refill:{number}",
            client_temp_id=self.client_temp_id,
            known_items=items,
        )
        refill = Refill.objects.create(
            number=number,
            location=source,
            sent_at=timezone.now(),
            sent_by=ctx.actor.username,
            send_movement=moved.movement,
            client_temp_id=self.client_temp_id,
        )
        lines = RefillLine.objects.bulk_create(
            RefillLine(
                refill=refill,
                line_no=index,
                item_id=line.item,
                qty=line.qty,
                serials=list(line.serials),
            )
            for index, line in enumerate(self.lines)
        )
        view = refill_view(refill, lines)
        change = Change(ENTITY, str(refill.pk), None, view, refill.version, source.pk)
        return Outcome(201, view, [change, *moved.changes])


class CountedRefillLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    qty: int
    serials: tuple[str, ...] = ()
    reason: str = ""


class ReceiveRefill(Command):
    """Fulls come back against a refill, counted line by line (0 when none came back); a line
    short says why, and its difference is a loss from the plant. Once only: again → 409."""

    name = "refill.receive"
    refill: UUID
    lines: tuple[CountedRefillLine, ...]

    def validated(self) -> ReceiveRefill:
        if len(self.lines) > inventory_rules.MAX_LINES:
            raise Invalid.field("lines", f"at most {inventory_rules.MAX_LINES} lines")
        cleaned = []
        for index, line in enumerate(self.lines):
            reason = invariants.clean_reason(line.reason, f"lines[{index}].reason")
            cleaned.append(line.model_copy(update={"reason": reason}))
        return self.model_copy(update={"lines": tuple(cleaned)})

    def handle(self, ctx: Context) -> Outcome:
        refill = Refill.objects.select_for_update().filter(pk=self.refill).first()
        if refill is None:
            raise NotFound()
        policy.authorize(ctx.actor, self.name, location_id=refill.location_id)
        if refill.status != RefillStatus.SENT:
            raise RefillAlreadyReceived(f"{refill.number} was already received ({refill.status})")
        before = refill_view(refill)
        rows = list(refill.lines.order_by("line_no"))
        outcomes = invariants.settle_receipt(
            [Dispatched(r.line_no, r.item_id, r.qty, tuple(r.serials)) for r in rows],
            [Counted(c.item, c.qty, c.serials, c.reason) for c in self.lines],
        )
        receipt, loss, movement_changes = _move_back(refill, outcomes, ctx)
        for row, outcome in zip(rows, outcomes, strict=True):
            row.received_qty = outcome.received_qty
            row.received_serials = list(outcome.received_serials)
            row.reason = outcome.reason
        RefillLine.objects.bulk_update(rows, ["received_qty", "received_serials", "reason"])
        short = any(outcome.short_qty for outcome in outcomes)
        refill.status = RefillStatus.RECEIVED_SHORT if short else RefillStatus.RECEIVED
        refill.received_at = timezone.now()
        refill.received_by = ctx.actor.username
        refill.receipt_movement = receipt
        refill.loss_movement = loss
        refill.version = F("version") + 1
        refill.save()
        refill.refresh_from_db(fields=["version"])
        after = refill_view(refill, rows)
        change = Change(ENTITY, str(refill.pk), before, after, refill.version, refill.location_id)
        return Outcome(200, after, [change, *movement_changes])


def _move_back(
    refill: Refill, outcomes: list[LineOutcome], ctx: Context
) -> tuple[Movement | None, Movement | None, list[Change]]:
    """Fulls from the plant into the depot (sent empty, back full); the rest to loss, empty."""
    plant = get_filling_plant().pk
    back = [
        LineSpec(
            o.line.item_id,
            plant,
            refill.location_id,
            o.received_qty,
            o.received_serials,
            condition=Condition.EMPTY,
            to_condition=Condition.FULL,
        )
        for o in outcomes
        if o.received_qty
    ]
    lost = [
        LineSpec(
            o.line.item_id,
            plant,
            get_virtual_location(LocationKind.LOSS).pk,
            o.short_qty,
            o.short_serials,
            condition=Condition.EMPTY,
        )
        for o in outcomes
        if o.short_qty
    ]
    return book_receipt(
        MovementKind.REFILL,
        back,
        lost,
        outcomes,
        ctx,
        f"refilled on {refill.number}",
        number=refill.number,
        reference=f"refill:{refill.number}",
    )
