"""Command handlers for loads: dispatch (stock leaves at once for the in-transit location),
receive (counted line by line: what arrived goes in, what did not is a loss with its reason)
and approve (a manager signs off a shortage worth more than the threshold).

Each is a sync op too (`load.dispatch`, `load.receive`, `load.approve`): a driver receives a
load in a basement and the receipt reaches the server later. A load dispatched offline is named
in its receipt by the dispatch's temp id.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict

from quartermaster.core import policy
from quartermaster.core.commands import Command
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.distribution import invariants
from quartermaster.distribution.invariants import (
    Approval,
    Counted,
    Dispatched,
    LineOutcome,
    LoadAlreadyReceived,
    LoadStatus,
    NothingToApprove,
)
from quartermaster.distribution.models import Load, LoadLine
from quartermaster.distribution.selectors import LoadView, load_view
from quartermaster.identity.permissions import allows
from quartermaster.inventory.invariants import OWN_KINDS, LocationKind, MovementKind
from quartermaster.inventory.ledger import LineSpec, move_stock
from quartermaster.inventory.models import Item, Location, Movement
from quartermaster.inventory.selectors import get_in_transit_location, get_virtual_location
from quartermaster.inventory.services import MoveLine, clean_move_lines

ENTITY = "load"


def _own(location_id: UUID, field: str) -> Location:
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise Invalid.field(field, "unknown location")
    if location.kind not in OWN_KINDS:
        raise Invalid.field(field, "must be a depot, vehicle or store")
    return location


class DispatchLoad(Command):
    """A load leaves `from_location` now, for `to_location`; it is in transit until received."""

    name = "load.dispatch"
    from_location: UUID
    to_location: UUID
    lines: tuple[MoveLine, ...]
    client_temp_id: str = ""

    def validated(self) -> DispatchLoad:
        if self.from_location == self.to_location:
            raise Invalid.field("to_location", "must differ from from_location")
        lines = clean_move_lines(self.lines)
        items = [line.item for line in lines]
        # (Fulls and empties of one item travel on separate loads: a receipt counts by item.)
        if len(set(items)) != len(items):
            raise Invalid.field("lines", "each item once per load (add up its quantities)")
        return self.model_copy(update={"lines": lines})

    def handle(self, ctx: Context) -> Outcome:
        # The sender acts at the source; the destination need only be one of ours.
        policy.authorize(ctx.actor, self.name, location_id=self.from_location)
        source = _own(self.from_location, "from_location")
        target = _own(self.to_location, "to_location")
        transit = get_in_transit_location()
        number = next_number("LOAD")
        moved = move_stock(
            kind=MovementKind.DISTRIBUTION,
            lines=[
                LineSpec(line.item, source.pk, transit.pk, line.qty, line.serials, line.condition)
                for line in self.lines
            ],
            actor=ctx.actor.username,
            reason=f"dispatched on {number}",
            reference=f"load:{number}",
            client_temp_id=self.client_temp_id,
        )
        load = Load.objects.create(
            number=number,
            from_location=source,
            to_location=target,
            dispatched_at=timezone.now(),
            dispatched_by=ctx.actor.username,
            dispatch_movement=moved.movement,
            client_temp_id=self.client_temp_id,
        )
        lines = LoadLine.objects.bulk_create(
            LoadLine(
                load=load,
                line_no=index,
                item_id=line.item,
                qty=line.qty,
                serials=list(line.serials),
                # As the ledger resolved it (a returnable item's default is full).
                condition=moved_line.condition,
            )
            for index, (line, moved_line) in enumerate(zip(self.lines, moved.lines, strict=True))
        )
        view = load_view(load, lines)
        changes = [Change(ENTITY, str(load.pk), None, view, load.version, source.pk)]
        return Outcome(201, view, [*changes, *moved.changes])


class CountedLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    qty: int
    serials: tuple[str, ...] = ()
    reason: str = ""


def _locked_load(ctx: Context, action: str, load_id: UUID) -> Load:
    load = Load.objects.select_for_update().filter(pk=load_id).first()
    if load is None:
        raise NotFound()
    policy.authorize(ctx.actor, action, location_id=load.to_location_id)
    return load


class ReceiveLoad(Command):
    """The receiver counts the load: each line's qty (and serials) that arrived, with a reason
    for any shortfall. Once only: a second receipt is 409 `load_already_received`."""

    name = "load.receive"
    load: UUID
    lines: tuple[CountedLine, ...]

    def validated(self) -> ReceiveLoad:
        cleaned = []
        for index, line in enumerate(self.lines):
            reason = invariants.clean_reason(line.reason, f"lines[{index}].reason")
            cleaned.append(line.model_copy(update={"reason": reason}))
        return self.model_copy(update={"lines": tuple(cleaned)})

    def handle(self, ctx: Context) -> Outcome:
        load = _locked_load(ctx, self.name, self.load)
        if load.status != LoadStatus.IN_TRANSIT:
            raise LoadAlreadyReceived(f"{load.number} was already received ({load.status})")
        before = load_view(load)
        rows = list(load.lines.order_by("line_no"))
        outcomes = invariants.settle_receipt(
            [Dispatched(r.line_no, r.item_id, r.qty, tuple(r.serials)) for r in rows],
            [Counted(c.item, c.qty, c.serials, c.reason) for c in self.lines],
        )
        receipt, loss, movement_changes = _move_counted(load, outcomes, ctx)
        for row, outcome in zip(rows, outcomes, strict=True):
            row.received_qty = outcome.received_qty
            row.received_serials = list(outcome.received_serials)
            row.reason = outcome.reason
        LoadLine.objects.bulk_update(rows, ["received_qty", "received_serials", "reason"])
        prices = dict(
            Item.objects.filter(pk__in=[r.item_id for r in rows]).values_list("pk", "price_minor")
        )
        shortage = invariants.shortage_value(outcomes, prices)
        short = any(outcome.short_qty for outcome in outcomes)
        load.status = LoadStatus.RECEIVED_SHORT if short else LoadStatus.RECEIVED
        load.approval = _approval_for(ctx, load, shortage)
        load.shortage_minor = shortage
        load.received_at = timezone.now()
        load.received_by = ctx.actor.username
        load.receipt_movement = receipt
        load.loss_movement = loss
        load.version = F("version") + 1
        load.save()
        load.refresh_from_db(fields=["version"])
        after = load_view(load, rows)
        changes = [Change(ENTITY, str(load.pk), before, after, load.version, load.to_location_id)]
        return Outcome(200, after, [*changes, *movement_changes])


def _approval_for(ctx: Context, load: Load, shortage_minor: int) -> str:
    """A shortage worth more than QM_LOAD_SHORTAGE_APPROVAL needs a manager: one received by
    someone who may approve is approved by that receipt; anyone else's waits (the stock moves
    either way, since the units are gone; what waits is the sign-off)."""
    if shortage_minor <= settings.LOAD_SHORTAGE_APPROVAL_MINOR:
        return Approval.NOT_NEEDED
    if allows(ctx.actor, ApproveLoad.name, location_id=load.to_location_id):
        return Approval.APPROVED
    return Approval.PENDING


def _move_counted(
    load: Load, outcomes: list[LineOutcome], ctx: Context
) -> tuple[Movement | None, Movement | None, list[Change]]:
    transit = get_in_transit_location()
    conditions = dict(load.lines.values_list("line_no", "condition"))
    arrived = [
        LineSpec(
            o.line.item_id,
            transit.pk,
            load.to_location_id,
            o.received_qty,
            o.received_serials,
            conditions[o.line.line_no],
        )
        for o in outcomes
        if o.received_qty
    ]
    missing = [
        LineSpec(
            o.line.item_id,
            transit.pk,
            get_virtual_location(LocationKind.LOSS).pk,
            o.short_qty,
            o.short_serials,
            conditions[o.line.line_no],
        )
        for o in outcomes
        if o.short_qty
    ]
    return book_receipt(
        MovementKind.DISTRIBUTION,
        arrived,
        missing,
        outcomes,
        ctx,
        f"received on {load.number}",
        number=load.number,
        reference=f"load:{load.number}",
    )


def book_receipt(
    kind: MovementKind,
    arrived: list[LineSpec],
    missing: list[LineSpec],
    outcomes: Sequence[LineOutcome],
    ctx: Context,
    received: str,
    *,
    number: str,
    reference: str,
) -> tuple[Movement | None, Movement | None, list[Change]]:
    """A counted receipt (a load's, a refill's) as at most two movements: what arrived, and
    what fell short to loss with each line's reason."""
    reasons = "; ".join(f"line {o.line.line_no + 1}: {o.reason}" for o in outcomes if o.short_qty)
    changes: list[Change] = []
    receipt = loss = None
    if arrived:
        moved = move_stock(
            kind=kind, lines=arrived, actor=ctx.actor.username, reason=received, reference=reference
        )
        receipt = moved.movement
        changes.extend(moved.changes)
    if missing:
        moved = move_stock(
            kind=MovementKind.ADJUSTMENT,
            lines=missing,
            actor=ctx.actor.username,
            reason=f"short on {number}: {reasons}"[:500],
            reference=reference,
        )
        loss = moved.movement
        changes.extend(moved.changes)
    return receipt, loss, changes


class ApproveLoad(Command):
    """A manager signs off a short receipt that waits for approval."""

    name = "load.approve"
    load: UUID

    def handle(self, ctx: Context) -> Outcome:
        load = _locked_load(ctx, self.name, self.load)
        if load.approval != Approval.PENDING:
            raise NothingToApprove(f"{load.number} has no shortage waiting for approval")
        before = load_view(load)
        load.approval = Approval.APPROVED
        load.approved_by = ctx.actor.username
        load.version = F("version") + 1
        load.save(update_fields=["approval", "approved_by", "version"])
        load.refresh_from_db(fields=["version"])
        after: LoadView = load_view(load)
        return Outcome(
            200,
            after,
            [Change(ENTITY, str(load.pk), before, after, load.version, load.to_location_id)],
        )
