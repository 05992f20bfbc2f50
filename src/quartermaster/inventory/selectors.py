"""Reads for inventory, always through these functions (never a bare lookup in an adapter)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import connection
from django.db.models import OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, uuid_key
from quartermaster.core.rows import read_rows, read_rows_with, uuid_param
from quartermaster.core.types import Actor, View
from quartermaster.identity.permissions import sees_every_location
from quartermaster.inventory.invariants import VIRTUAL_KINDS, LocationKind
from quartermaster.inventory.models import Asset, Item, Location, Movement, MovementLine, Stock


def get_default_location() -> Location:
    """The location the simple items API works on; created by migration 0002."""
    return _reference_location("default", Q(is_default=True))


VIRTUAL_LOCATION_NAMES = {
    LocationKind.SUPPLIER: "(supplier)",
    LocationKind.CONSUMED: "(consumed)",
    LocationKind.LOSS: "(loss)",
}


def get_virtual_location(kind: LocationKind) -> Location:
    """The virtual source or sink of `kind`; created by migration 0004."""
    return _reference_location(kind.value, Q(name=VIRTUAL_LOCATION_NAMES[kind]))


def get_in_transit_location() -> Location:
    """Where dispatched loads wait until received; created by migration 0005."""
    return _reference_location("in_transit", Q(kind=LocationKind.IN_TRANSIT))


def get_filling_plant() -> Location:
    """Where empties wait to be refilled; created by migration 0008."""
    return _reference_location("filling_plant", Q(kind=LocationKind.FILLING_PLANT))


# Reference rows made by migrations and never changed by any command (no command edits a
# location's kind, name or default flag): each process reads each once, per database.
_reference_locations: dict[tuple[str, str], Location] = {}


def _reference_location(role: str, lookup: Q) -> Location:
    key = (str(connection.settings_dict["NAME"]), role)
    location = _reference_locations.get(key)
    if location is None:
        location = Location.objects.get(lookup)
        _reference_locations[key] = location
    return location


# An item's `qty` is its sellable stock: a returnable item's full units (its empties are
# listed by GET /stock, with their condition).
SELLABLE = ("", "full")


def _items_with_default_qty(default_location_id: UUID) -> QuerySet[Item]:
    qty = Stock.objects.filter(
        item=OuterRef("pk"), location_id=default_location_id, condition__in=SELLABLE
    ).values("qty")
    return Item.objects.filter(deleted_at__isnull=True).annotate(
        qty=Coalesce(Subquery(qty[:1]), Value(0))
    )


def get_locations(location_ids: Iterable[UUID]) -> dict[UUID, Location]:
    """The locations among `location_ids`, by id, in one plain statement (every sale reads its
    own and its customers' sites this way)."""
    ids = [uuid_param(location_id) for location_id in dict.fromkeys(location_ids)]
    if not ids:
        return {}
    found = read_rows(Location, f"id IN ({', '.join(['%s'] * len(ids))})", ids)
    return {location.pk: location for location in found}


def get_item(item_id: UUID) -> tuple[Item, int] | None:
    """The live item and its qty at the default location, or None."""
    return get_items([item_id]).get(item_id)


def get_items(item_ids: Iterable[UUID]) -> dict[UUID, tuple[Item, int]]:
    """`get_item` for many ids in one plain statement (every write of the items API reads its
    item this way): the live ones among them, by id."""
    ids = [uuid_param(item_id) for item_id in dict.fromkeys(item_ids)]
    if not ids:
        return {}
    found = read_rows_with(
        Item,
        "COALESCE(s.qty, 0)",
        "LEFT JOIN inventory_stock s ON s.item_id = inventory_item.id AND s.location_id = %s"
        " AND s.condition IN ('', 'full')",
        f"inventory_item.id IN ({', '.join(['%s'] * len(ids))})"
        " AND inventory_item.deleted_at IS NULL",
        [uuid_param(get_default_location().id), *ids],
    )
    return {item.pk: (item, qty) for item, (qty,) in found}


ITEM_ORDER = Keyset(fields=(text_key("name"), uuid_key("id")))


def list_items(*, page: PageRequest) -> Page[tuple[Item, int]]:
    """Live items and their qty at the default location."""
    items = ITEM_ORDER.page(_items_with_default_qty(get_default_location().id), page)
    return items.map(lambda item: (item, item.qty))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ItemView(View):
    """An item and its qty at the default location."""

    id: UUID
    sku: str
    name: str
    qty: int
    price_minor: int
    unit: str
    tracking: str
    tax_rate_bp: int
    deposit_minor: int
    version: int
    returnable: bool = False

    def with_qty(self, qty: int) -> ItemView:
        return replace(self, qty=qty)

    def to_wire(self) -> dict[str, Any]:
        """API.md "Items"."""
        return {
            "id": str(self.id),
            "sku": self.sku,
            "name": self.name,
            "qty": self.qty,
            "price": format_money(self.price_minor),
            "unit": self.unit,
            "tracking": self.tracking,
            "tax_rate_bp": self.tax_rate_bp,
            "deposit": format_money(self.deposit_minor),
            "returnable": self.returnable,
            "version": self.version,
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (it began as the wire body of the time; now it stays as it is), plus
        `returnable` for a returnable item only (so every other item's snapshot is unchanged)."""
        return ({"returnable": True} if self.returnable else {}) | {
            "id": str(self.id),
            "sku": self.sku,
            "name": self.name,
            "qty": self.qty,
            "price": format_money(self.price_minor),
            "unit": self.unit,
            "tracking": self.tracking,
            "tax_rate_bp": self.tax_rate_bp,
            "deposit": format_money(self.deposit_minor),
            "version": self.version,
        }


def item_view(item: Item, qty: int) -> ItemView:
    return ItemView(
        id=item.id,
        sku=item.sku,
        name=item.name,
        qty=qty,
        price_minor=item.price_minor,
        unit=item.unit,
        tracking=item.tracking,
        tax_rate_bp=item.tax_rate_bp,
        deposit_minor=item.deposit_minor,
        version=item.version,
        returnable=item.returnable,
    )


def _scoped_locations(actor: Actor) -> QuerySet[Location]:
    """Unscoped roles see every location; staff see the ones assigned to them."""
    query = Location.objects.all()
    if not sees_every_location(actor):
        query = query.filter(pk__in=list(actor.location_ids))
    return query


@dataclass(frozen=True)
class LocationView(View):
    """A location (a store, a depot, a vehicle, a virtual source or sink)."""

    id: UUID
    name: str
    kind: str
    is_default: bool
    receives: bool
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        """API.md "Locations"."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "name": self.name,
            "kind": self.kind,
            "is_default": self.is_default,
            "receives": self.receives,
            "created_at": self.created_at.isoformat(),
        }


def location_view(location: Location) -> LocationView:
    return LocationView(
        id=location.id,
        name=location.name,
        kind=location.kind,
        is_default=location.is_default,
        receives=location.receives,
        created_at=location.created_at,
    )


LOCATION_ORDER = Keyset(fields=(text_key("name"), uuid_key("id")))


def list_locations(*, actor: Actor, kind: str | None, page: PageRequest) -> Page[Location]:
    query = _scoped_locations(actor)
    if kind:
        query = query.filter(kind=kind)
    return LOCATION_ORDER.page(query, page)


def get_location(*, actor: Actor, location_id: UUID) -> Location | None:
    return _scoped_locations(actor).filter(pk=location_id).first()


@dataclass(frozen=True)
class StockView(View):
    """The qty of one item at one location, in one condition for a returnable item (ids as
    text: a movement's rows share them)."""

    item: str
    location: str
    qty: int
    condition: str = ""

    @property
    def key(self) -> str:
        """The stock row's id in the audit chain and the feed."""
        head = f"{self.item}:{self.location}"
        return f"{head}:{self.condition}" if self.condition else head

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (`condition` only on a returnable item's rows), written apart from
        the wire so that an API rename leaves it."""
        sealed: dict[str, Any] = {"item": self.item, "location": self.location, "qty": self.qty}
        if self.condition:
            sealed["condition"] = self.condition
        return sealed


def stock_view(
    item_id: UUID | str, location_id: UUID | str, qty: int, condition: str = ""
) -> StockView:
    return StockView(str(item_id), str(location_id), qty, condition)


def list_stock(
    *, actor: Actor, item_id: UUID | None, location_id: UUID | None, limit: int
) -> list[StockView]:
    """Stock rows the actor may see, by (location, item); rows of deleted items are left out."""
    query = Stock.objects.filter(
        location__in=_scoped_locations(actor), item__deleted_at__isnull=True
    ).order_by("location_id", "item_id", "condition")
    if item_id is not None:
        query = query.filter(item_id=item_id)
    if location_id is not None:
        query = query.filter(location_id=location_id)
    return [stock_view(r.item_id, r.location_id, r.qty, r.condition) for r in query[:limit]]


@dataclass(frozen=True)
class MovementLineView(View):
    """One line of a movement; a returnable item's line states its conditions."""

    line: int
    item: UUID
    from_location: UUID
    to_location: UUID
    qty: int
    serials: tuple[str, ...]
    condition: str = ""
    to_condition: str = ""

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: the conditions only on a returnable item's line."""
        sealed: dict[str, Any] = {
            "line": self.line,
            "item": str(self.item),
            "from_location": str(self.from_location),
            "to_location": str(self.to_location),
            "qty": self.qty,
            "serials": list(self.serials),
        }
        if self.condition:
            sealed |= {"condition": self.condition, "to_condition": self.to_condition}
        return sealed


@dataclass(frozen=True)
class MovementView(View):
    """A movement of the ledger with its lines (appended once, never changed)."""

    id: UUID
    kind: str
    reason: str
    reference: str
    reverses: UUID | None
    client_temp_id: str | None
    actor: str
    created_at: datetime
    lines: tuple[MovementLineView, ...]

    def to_wire(self) -> dict[str, Any]:
        """API.md "Movements"."""
        return {
            "id": str(self.id),
            "kind": self.kind,
            "reason": self.reason,
            "reference": self.reference,
            "reverses": str(self.reverses) if self.reverses else None,
            "client_temp_id": self.client_temp_id,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "lines": [line.wire for line in self.lines],
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "kind": self.kind,
            "reason": self.reason,
            "reference": self.reference,
            "reverses": str(self.reverses) if self.reverses else None,
            "client_temp_id": self.client_temp_id,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "lines": [line.snapshot for line in self.lines],
        }


def movement_view(movement: Movement, lines: Iterable[MovementLine]) -> MovementView:
    return MovementView(
        id=movement.id,
        kind=movement.kind,
        reason=movement.reason,
        reference=movement.reference,
        reverses=movement.reverses_id,
        client_temp_id=movement.client_temp_id or None,
        actor=movement.actor,
        created_at=movement.created_at,
        lines=tuple(
            MovementLineView(
                line=line.line_no,
                item=line.item_id,
                from_location=line.from_location_id,
                to_location=line.to_location_id,
                qty=line.qty,
                serials=tuple(line.serials),
                condition=line.condition,
                to_condition=line.to_condition if line.condition else "",
            )
            for line in lines
        ),
    )


def get_movement(*, actor: Actor, movement_id: UUID) -> MovementView | None:
    """A movement is visible when the actor sees one of the locations it touches."""
    movement = Movement.objects.filter(pk=movement_id).first()
    if movement is None:
        return None
    lines = list(movement.lines.order_by("line_no"))
    visible = _scoped_locations(actor).filter(
        pk__in={line.from_location_id for line in lines} | {line.to_location_id for line in lines}
    )
    if not visible.exists():
        return None
    return movement_view(movement, lines)


@dataclass(frozen=True)
class AssetView(View):
    """One serialized unit: where it is, in what state, and whose it is."""

    id: UUID
    item: UUID
    serial: str
    location: UUID
    state: str
    customer: UUID | None
    deposit_held_minor: int
    version: int

    def to_wire(self) -> dict[str, Any]:
        """API.md "Assets"."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "item": str(self.item),
            "serial": self.serial,
            "location": str(self.location),
            "state": self.state,
            "customer": str(self.customer) if self.customer else None,
            "deposit_held": format_money(self.deposit_held_minor),
            "version": self.version,
        }


def asset_view(asset: Asset) -> AssetView:
    return AssetView(
        id=asset.id,
        item=asset.item_id,
        serial=asset.serial,
        location=asset.location_id,
        state=asset.state,
        customer=asset.customer_id,
        deposit_held_minor=asset.deposit_held_minor,
        version=asset.version,
    )


def list_assets(
    *,
    actor: Actor,
    item_id: UUID | None,
    location_id: UUID | None,
    serial: str | None,
    customer_id: UUID | None,
    limit: int,
) -> list[AssetView]:
    query = Asset.objects.filter(location__in=_scoped_locations(actor)).order_by(
        "item_id", "serial"
    )
    if item_id is not None:
        query = query.filter(item_id=item_id)
    if location_id is not None:
        query = query.filter(location_id=location_id)
    if serial is not None:
        query = query.filter(serial=serial)
    if customer_id is not None:
        query = query.filter(customer_id=customer_id)
    return [asset_view(a) for a in query[:limit]]


def stock_from_ledger() -> dict[tuple[UUID, UUID, str], int]:
    """Every tracked (item, location, condition) quantity recomputed from the movement ledger
    alone: a line takes from its source in its `condition`, gives to its target in its
    `to_condition`."""
    totals: dict[tuple[UUID, UUID, str], int] = {}
    virtual = set(Location.objects.filter(kind__in=VIRTUAL_KINDS).values_list("id", flat=True))
    sides = (("to_location_id", "to_condition", 1), ("from_location_id", "condition", -1))
    for column, condition, sign in sides:
        sums = MovementLine.objects.values("item_id", column, condition).annotate(total=Sum("qty"))
        for row in sums:
            location_id = row[column]
            if location_id in virtual:
                continue
            key = (row["item_id"], location_id, row[condition])
            totals[key] = totals.get(key, 0) + sign * int(row["total"])
    return totals


def stock_differences() -> list[dict[str, Any]]:
    """Rows where the stock projection disagrees with the ledger (there must never be any)."""
    expected = stock_from_ledger()
    actual = {(r.item_id, r.location_id, r.condition): r.qty for r in Stock.objects.all()}
    differences = []
    for key in sorted(set(expected) | set(actual), key=lambda k: (str(k[0]), str(k[1]), k[2])):
        ledger_qty, stock_qty = expected.get(key, 0), actual.get(key, 0)
        if ledger_qty != stock_qty:
            differences.append(
                {
                    "item": str(key[0]),
                    "location": str(key[1]),
                    **({"condition": key[2]} if key[2] else {}),
                    "ledger": ledger_qty,
                    "stock": stock_qty,
                }
            )
    return differences
