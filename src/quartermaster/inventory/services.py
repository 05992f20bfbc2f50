"""Command handlers for inventory: items (create, delete, adjust qty), locations, receipts,
distributions, adjustments and the stock rebuild. Every stock change goes through
`ledger.move_stock`, so the movement ledger and the stock projection never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import BulkCommand, Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import (
    DomainError,
    InsufficientStock,
    Invalid,
    NotFound,
    QtyBelowZero,
)
from quartermaster.core.money import Money, MoneyEdit, format_money
from quartermaster.core.names import name_key
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome, Record
from quartermaster.identity import permissions
from quartermaster.inventory import invariants
from quartermaster.inventory.invariants import OWN_KINDS, ItemHasStock, LocationKind, MovementKind
from quartermaster.inventory.ledger import (
    LineSpec,
    MovementSpec,
    PlannedMovement,
    StockBook,
    check_movement,
    move_stock,
    write_movements,
)
from quartermaster.inventory.models import Item, Location, Stock
from quartermaster.inventory.selectors import (
    get_default_location,
    get_item,
    get_items,
    get_virtual_location,
    item_view,
    location_view,
    stock_differences,
    stock_view,
)

ENTITY = "item"


def _duplicate_name(name: str) -> Invalid:
    return Invalid(f"an item named {name!r} already exists", fields={"name": "already exists"})


class CreateItem(Command):
    # On the wire (REST and sync ops) the field is "name", like the item itself; `name` is taken
    # by the command's wire name, so the attribute is item_name.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    name = "item.create"
    item_name: str = Field(alias="name")
    qty: int = 0
    price_minor: Money = Field(default=0, alias="price")
    unit: str = "pcs"
    tracking: str = "bulk"
    tax_rate_bp: int = 0
    deposit_minor: Money = Field(default=0, alias="deposit")
    returnable: bool = False

    def validated(self) -> CreateItem:
        invariants.clean_tax_rate(self.tax_rate_bp)
        if self.tracking == invariants.Tracking.SERIAL and self.qty:
            # Opening stock has no serials here: units nobody could ever name, sell or return.
            raise Invalid.field("qty", "a serialized item's stock arrives by serial (receipts)")
        return self.model_copy(
            update={
                "item_name": invariants.clean_name(self.item_name),
                "qty": invariants.clean_qty(self.qty),
                "unit": invariants.clean_unit(self.unit),
                "tracking": invariants.clean_tracking(self.tracking),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        location = get_default_location()
        policy.authorize(ctx.actor, self.name, location_id=location.id)
        key = name_key(self.item_name)
        if Item.objects.filter(name_key=key, deleted_at__isnull=True).exists():
            raise _duplicate_name(self.item_name)
        try:
            with transaction.atomic():
                item = Item.objects.create(
                    sku=next_number("ITM"),
                    name=self.item_name,
                    name_key=key,
                    unit=self.unit,
                    price_minor=self.price_minor,
                    tracking=self.tracking,
                    tax_rate_bp=self.tax_rate_bp,
                    deposit_minor=self.deposit_minor,
                    returnable=self.returnable,
                )
        except IntegrityError as exc:  # a concurrent create won the unique live name
            raise _duplicate_name(self.item_name) from exc
        changes: list[Change] = []
        if self.qty > 0:
            # Opening stock is a receipt from the supplier, so the ledger explains every unit.
            # Units of a serialized item opened here carry no serials (the items API has none).
            supplier = get_virtual_location(LocationKind.SUPPLIER)
            moved = move_stock(
                kind=MovementKind.RECEIPT,
                lines=[_unserialized(item.pk, supplier.pk, location.pk, self.qty)],
                actor=ctx.actor.username,
                reason="opening stock (items API)",
                allow_unserialized=True,
            )
            changes = moved.changes
        view = item_view(item, self.qty)
        return Outcome(
            status=201,
            body=view,
            changes=[Change(ENTITY, str(item.pk), None, view, item.version, location.id), *changes],
        )


class DeleteItem(Command):
    """Soft delete: the item leaves every list and read, its ledger stays. Deleting twice is fine."""

    name = "item.delete"
    item: UUID

    def handle(self, ctx: Context) -> Outcome:
        found = get_item(self.item)
        if found is None:
            return Outcome(status=204, body=None)
        item, qty = found
        # Its stock rows locked, so no move of this item commits between the count and the delete.
        held = list(
            Stock.objects.select_for_update()
            .filter(item_id=item.pk, location__kind__in=sorted(OWN_KINDS), qty__gt=0)
            .order_by("pk")
            .values_list("qty", flat=True)
        )
        if held:
            raise ItemHasStock(sum(held))
        before = item_view(item, qty)
        deleted = Item.objects.filter(pk=item.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), version=F("version") + 1
        )
        if not deleted:
            return Outcome(status=204, body=None)
        return Outcome(
            status=204,
            body=None,
            changes=[Change(ENTITY, str(item.pk), before, None, item.version + 1)],
        )


class AdjustItemQty(BulkCommand):
    """qty' = qty + delta at the default location: an adjustment movement from/to `loss`."""

    name = "item.adjust"
    item: UUID
    delta: int

    def validated(self) -> AdjustItemQty:
        invariants.clean_delta(self.delta)
        return self

    @classmethod
    def run_many(
        cls, commands: Sequence[Any], contexts: Sequence[Context], *, alone: bool
    ) -> list[Outcome | DomainError]:
        # Nothing is written before every adjustment is decided: alone or not is the same.
        return adjust_items(commands, contexts)


def adjust_items(
    commands: Sequence[AdjustItemQty], contexts: Sequence[Context]
) -> list[Outcome | DomainError]:
    """`item.adjust` for one command or a run of them, each answering what it would alone: the
    items read in one query, every stock row locked once up front, each adjustment planned
    against the running quantities (`StockBook`), the movements written in bulk."""
    location = get_default_location()
    loss = get_virtual_location(LocationKind.LOSS)
    locations = {location.pk: location, loss.pk: loss}
    found = get_items(command.item for command in commands)
    items = {item.pk: item for item, _ in found.values()}
    answers: list[Outcome | DomainError | None] = [None] * len(commands)
    checked: list[tuple[int, AdjustItemQty, Context, MovementSpec | None]] = []
    for index, (command, ctx) in enumerate(zip(commands, contexts, strict=True)):
        try:
            policy.authorize(ctx.actor, command.name, location_id=location.id)
            if command.item not in found:
                raise NotFound()
            spec = None
            if command.delta != 0:
                source, target = (
                    (loss.pk, location.pk) if command.delta > 0 else (location.pk, loss.pk)
                )
                spec = MovementSpec(
                    kind=MovementKind.ADJUSTMENT,
                    lines=(_unserialized(command.item, source, target, abs(command.delta)),),
                    actor=ctx.actor.username,
                    reason="found (items API)" if command.delta > 0 else "loss (items API)",
                )
                spec = check_movement(spec, items, locations, allow_unserialized=True)
            checked.append((index, command, ctx, spec))
        except DomainError as error:
            answers[index] = error
    book = StockBook.lock(
        [key for *_, spec in checked if spec for key in spec.stock_keys(locations)]
    )
    passed: list[tuple[int, AdjustItemQty, Context, PlannedMovement]] = []
    for index, command, ctx, spec in checked:
        item, read_qty = found[command.item]
        # The item's qty is its sellable stock: a returnable item's full units.
        key = (item.pk, location.pk, "full" if item.returnable else "")
        if spec is None:
            # Nothing moves: the qty as it stands (a row this run moves: as the run left it).
            qty = book.qty.get(key, read_qty)
            answers[index] = Outcome(status=200, body=item_view(item, qty))
            continue
        try:
            planned = book.plan(spec, items, locations)
        except InsufficientStock:
            answers[index] = QtyBelowZero(
                invariants.QTY_BELOW_ZERO, fields={"delta": invariants.QTY_BELOW_ZERO}
            )
            continue
        book.take(planned)
        passed.append((index, command, ctx, planned))
    moves = write_movements([planned for *_, planned in passed], book)
    for (index, command, _, planned), moved in zip(passed, moves, strict=True):
        item, _ = found[command.item]
        key = (item.pk, location.pk, "full" if item.returnable else "")
        qty = planned.before[key]
        before = item_view(item, qty)
        after = before.with_qty(qty + planned.deltas[key])
        answers[index] = Outcome(
            status=200,
            body=after,
            changes=[
                Change(ENTITY, str(item.pk), before, after, item.version, location.id),
                *moved.changes,
            ],
        )
    return [answer for answer in answers if answer is not None]


def _unserialized(item_id: UUID, source: UUID, target: UUID, qty: int) -> LineSpec:
    return LineSpec(item_id=item_id, from_location_id=source, to_location_id=target, qty=qty)


class CreateLocation(Command):
    name = "location.create"
    # `name` on the wire (and in sync payloads); the attribute `name` is the command's wire name.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)
    location_name: str = Field(alias="name")
    kind: str
    # Staff may receive from suppliers here (elsewhere a receipt is a manager's).
    receives: bool = False

    def validated(self) -> CreateLocation:
        return self.model_copy(
            update={
                "location_name": invariants.clean_name(self.location_name),
                "kind": invariants.clean_location_kind(self.kind),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        if Location.objects.filter(name=self.location_name).exists():
            raise Invalid.field("name", "already exists")
        try:
            with transaction.atomic():
                location = Location.objects.create(
                    name=self.location_name, kind=self.kind, receives=self.receives
                )
        except IntegrityError as exc:
            raise Invalid.field("name", "already exists") from exc
        view = location_view(location)
        return Outcome(
            201, view, [Change("location", str(location.id), None, view, None, location.id)]
        )


class MoveLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    qty: int
    serials: tuple[str, ...] = ()
    # A returnable item's condition (default full); refused for any other item.
    condition: str = ""


class AdjustLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    delta: int
    serials: tuple[str, ...] = ()
    condition: str = ""


def clean_move_lines(lines: tuple[MoveLine, ...]) -> tuple[MoveLine, ...]:
    invariants.clean_line_count(len(lines))
    cleaned = []
    for index, line in enumerate(lines):
        qty, serials = invariants.clean_line(index, line.qty, line.serials)
        condition = invariants.clean_condition(line.condition, f"lines[{index}].condition")
        cleaned.append(
            line.model_copy(update={"qty": qty, "serials": serials, "condition": condition})
        )
    invariants.check_serials_once([(line.item, line.serials) for line in cleaned])
    return tuple(cleaned)


def own_location(ctx: Context, action: str, location_id: UUID, field: str) -> Location:
    """A location the actor may act at (404 otherwise) that holds our own stock (400 otherwise)."""
    policy.authorize(ctx.actor, action, location_id=location_id)
    location = Location.objects.filter(pk=location_id).first()
    if location is None:
        raise NotFound()
    if location.kind not in OWN_KINDS:
        raise Invalid.field(field, "must be a depot, vehicle or store")
    return location


class ReceiveStock(Command):
    """Stock arrives from the virtual supplier location into an own location."""

    name = "stock.receive"
    to_location: UUID
    lines: tuple[MoveLine, ...]
    supplier: str = ""
    client_temp_id: str = ""

    def validated(self) -> ReceiveStock:
        return self.model_copy(
            update={
                "lines": clean_move_lines(self.lines),
                "supplier": invariants.clean_reason(self.supplier, required=False),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        target = own_location(ctx, self.name, self.to_location, "to_location")
        permissions.authorize_receipt(ctx.actor, location_receives=target.receives)
        supplier = get_virtual_location(LocationKind.SUPPLIER)
        moved = move_stock(
            kind=MovementKind.RECEIPT,
            lines=[
                LineSpec(line.item, supplier.pk, target.pk, line.qty, line.serials, line.condition)
                for line in self.lines
            ],
            actor=ctx.actor.username,
            reason=self.supplier,
            client_temp_id=self.client_temp_id,
        )
        return Outcome(201, moved.view, moved.changes)


class DistributeStock(Command):
    """Own location → own location, no financial effect (load a truck, restock a store)."""

    name = "stock.move"
    from_location: UUID
    to_location: UUID
    lines: tuple[MoveLine, ...]
    client_temp_id: str = ""

    def validated(self) -> DistributeStock:
        if self.from_location == self.to_location:
            raise Invalid.field("to_location", "must differ from from_location")
        return self.model_copy(update={"lines": clean_move_lines(self.lines)})

    def handle(self, ctx: Context) -> Outcome:
        source = own_location(ctx, self.name, self.from_location, "from_location")
        target = own_location(ctx, self.name, self.to_location, "to_location")
        moved = move_stock(
            kind=MovementKind.DISTRIBUTION,
            lines=[
                LineSpec(line.item, source.pk, target.pk, line.qty, line.serials, line.condition)
                for line in self.lines
            ],
            actor=ctx.actor.username,
            client_temp_id=self.client_temp_id,
        )
        return Outcome(201, moved.view, moved.changes)


class AdjustStock(Command):
    """Count corrections: a negative delta goes to `loss`, a positive one is found (from `loss`)."""

    name = "stock.adjust"
    location: UUID
    lines: tuple[AdjustLine, ...]
    reason: str

    def validated(self) -> AdjustStock:
        invariants.clean_line_count(len(self.lines))
        for index, line in enumerate(self.lines):
            if not invariants.is_integer(line.delta) or line.delta == 0:
                raise Invalid.field(f"lines[{index}].delta", "a non-zero integer")
            invariants.clean_line(index, abs(line.delta), line.serials)
            invariants.clean_condition(line.condition, f"lines[{index}].condition")
        invariants.check_serials_once([(line.item, line.serials) for line in self.lines])
        return self.model_copy(
            update={"reason": invariants.clean_reason(self.reason, required=True)}
        )

    def handle(self, ctx: Context) -> Outcome:
        location = own_location(ctx, self.name, self.location, "location")
        loss = get_virtual_location(LocationKind.LOSS)
        moved = move_stock(
            kind=MovementKind.ADJUSTMENT,
            lines=[
                LineSpec(
                    line.item,
                    loss.pk if line.delta > 0 else location.pk,
                    location.pk if line.delta > 0 else loss.pk,
                    abs(line.delta),
                    line.serials,
                    line.condition,
                )
                for line in self.lines
            ],
            actor=ctx.actor.username,
            reason=self.reason,
        )
        return Outcome(201, moved.view, moved.changes)


class RebuildStock(Command):
    """Reset every stock row to what the ledger says. Audited; a healthy database changes nothing."""

    name = "stock.rebuild"
    # An operator's repair tool (CLI), never a device op.
    syncable: ClassVar[bool] = False

    def handle(self, ctx: Context) -> Outcome:
        changes: list[Change] = []
        differences = stock_differences()
        for difference in differences:
            item_id, location_id = UUID(difference["item"]), UUID(difference["location"])
            condition = difference.get("condition", "")
            Stock.objects.update_or_create(
                item_id=item_id,
                location_id=location_id,
                condition=condition,
                defaults={"qty": difference["ledger"]},
            )
            before = stock_view(item_id, location_id, difference["stock"], condition)
            changes.append(
                Change(
                    "stock",
                    before.key,
                    before,
                    stock_view(item_id, location_id, difference["ledger"], condition),
                    None,
                    location_id,
                )
            )
        body: dict[str, Any] = {"differences": differences}
        return Outcome(200, body, changes)


class UpdateItem(VersionedUpdate):
    """Edit an item's name, price or unit. Never qty: stock travels as deltas and movements."""

    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    name = "item.update"
    entity: ClassVar[str] = ENTITY
    editable: ClassVar[tuple[str, ...]] = ("name", "price", "unit")
    item_name: str | None = Field(default=None, alias="name")
    price_minor: MoneyEdit = Field(default=None, alias="price")
    unit: str | None = None

    def validated(self) -> UpdateItem:
        super().validated()
        return self.model_copy(
            update={
                "item_name": None
                if self.item_name is None
                else invariants.clean_name(self.item_name),
                "unit": None if self.unit is None else invariants.clean_unit(self.unit),
            }
        )

    def proposed(self) -> dict[str, Any]:
        price = None if self.price_minor is None else format_money(self.price_minor)
        fields = {"name": self.item_name, "price": price, "unit": self.unit}
        return {key: value for key, value in fields.items() if value is not None}

    def load(self, ctx: Context) -> tuple[Record, int]:
        location = get_default_location()
        policy.authorize(ctx.actor, self.name, location_id=location.id)
        locked = list(
            Item.objects.select_for_update()
            .filter(pk=self.id, deleted_at__isnull=True)
            .values_list("pk", flat=True)
        )
        found = get_item(self.id) if locked else None
        if found is None:
            raise NotFound()
        item, qty = found
        if self.price_minor is not None and self.price_minor != item.price_minor:
            permissions.authorize_price_change(ctx.actor)
        return item_view(item, qty), item.version

    def apply(self, ctx: Context, before: Record) -> Outcome:
        values: dict[str, Any] = {"version": F("version") + 1}
        if self.item_name is not None:
            values["name"] = self.item_name
            values["name_key"] = name_key(self.item_name)
            duplicate = (
                Item.objects.filter(name_key=values["name_key"], deleted_at__isnull=True)
                .exclude(pk=self.id)
                .exists()
            )
            if duplicate:
                raise _duplicate_name(self.item_name)
        if self.price_minor is not None:
            values["price_minor"] = self.price_minor
        if self.unit is not None:
            values["unit"] = self.unit
        try:
            with transaction.atomic():
                Item.objects.filter(pk=self.id).update(**values)
        except IntegrityError as exc:  # a concurrent create or rename won the name
            raise _duplicate_name(self.item_name or "") from exc
        found = get_item(self.id)
        assert found is not None
        item, qty = found
        after = item_view(item, qty)
        location = get_default_location()
        return Outcome(
            status=200,
            body=after,
            changes=[Change(ENTITY, str(item.pk), before, after, item.version, location.id)],
        )
