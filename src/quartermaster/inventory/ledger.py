"""The movement engine: the one place stock and assets change.

`move_stock` appends a movement with its lines and, in the same transaction, updates the stock
projection and the serialized assets it moves. Every command that moves stock (receipts,
distributions, adjustments, the items API, sales, voids, returns) calls it from its handler.

Condition: a returnable item's stock (a cylinder) is held per condition, full or empty, so a
stock row is (item, location, condition). Each line takes from its source in its `condition`
and gives to its target in its `to_condition` (an empty taken back from a customer leaves as
the full it was issued as); `check_movement` resolves both against the item (full unless said
otherwise; "" for an item that is not returnable), and a serialized unit's state follows them.

Locking: every stock row the movement touches, sources and destinations alike, is locked with
`select_for_update()` in primary-key order before anything is checked or written, so two
movements over the same rows queue instead of deadlocking, whatever their line order. Assets are
locked the same way. Each quantity change is then still a guarded `UPDATE … WHERE qty + d >= 0`
(the CHECK constraint is the last line of defence).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import or_
from typing import Any
from uuid import UUID, uuid4

from django.db import connection
from django.db.models import F, Q
from django.utils import timezone

from quartermaster.core.errors import Conflict, InsufficientStock, Invalid
from quartermaster.core.rows import insert_rows, new_row, read_rows, uuid_param
from quartermaster.core.types import Change
from quartermaster.inventory.invariants import (
    VIRTUAL_KINDS,
    AssetState,
    LocationKind,
    MovementKind,
    Tracking,
    resolve_condition,
)
from quartermaster.inventory.models import Asset, Item, Location, Movement, MovementLine, Stock
from quartermaster.inventory.selectors import (
    AssetView,
    MovementView,
    asset_view,
    movement_view,
    stock_view,
)


@dataclass(frozen=True)
class LineSpec:
    item_id: UUID
    from_location_id: UUID
    to_location_id: UUID
    qty: int
    serials: tuple[str, ...] = ()
    # A returnable item's condition as it leaves ("" until resolved: full) and as it arrives
    # (None: the same). Resolved against the item by `check_movement`.
    condition: str = ""
    to_condition: str | None = None

    @property
    def source_key(self) -> StockKey:
        return (self.item_id, self.from_location_id, self.condition)

    @property
    def target_key(self) -> StockKey:
        condition = self.condition if self.to_condition is None else self.to_condition
        return (self.item_id, self.to_location_id, condition)


# A stock row: (item, location, condition); the condition is "" for an item not returnable.
StockKey = tuple[UUID, UUID, str]


@dataclass(frozen=True)
class AssetRule:
    """What a movement requires of, and does to, the serialized units it moves."""

    # The state each unit must be in to leave (a sale issues full cylinders only); a
    # returnable item's line requires its own condition instead.
    require_state: str | None = None
    # The state it arrives in (a return brings back empties); None keeps it. A returnable
    # item's unit arrives in its line's target condition instead.
    set_state: str | None = None
    # The customer holding the units that arrive at a customer's site (units arriving anywhere
    # else are back in our hands: nobody holds them).
    customer_id: UUID | None = None
    # Deposit held per unit that arrives at the customer's site, by item id (absent: 0).
    deposit_by_item: dict[UUID, int] = field(default_factory=dict)


@dataclass
class MoveResult:
    movement: Movement
    view: MovementView
    changes: list[Change]
    # (before, after) views of each asset moved, in line order.
    assets: list[tuple[AssetView | None, AssetView]]
    # The lines as moved, their conditions resolved.
    lines: tuple[LineSpec, ...] = ()


def move_stock(
    *,
    kind: MovementKind,
    lines: Sequence[LineSpec],
    actor: str,
    reason: str = "",
    reference: str = "",
    reverses: Movement | None = None,
    client_temp_id: str = "",
    asset_rule: AssetRule | None = None,
    allow_unserialized: bool = False,
    known_items: dict[Any, Item] | None = None,
    known_locations: dict[Any, Location] | None = None,
) -> MoveResult:
    """Append a movement and apply it to stock and assets, or raise with nothing written.

    InsufficientStock(line=i) names the first line (0-based) whose source runs out.
    """
    spec = MovementSpec(
        kind=kind,
        lines=tuple(lines),
        actor=actor,
        reason=reason,
        reference=reference,
        reverses_id=reverses.pk if reverses else None,
        client_temp_id=client_temp_id,
    )
    # Callers that already read the items and locations pass them in (one query less each).
    items, locations = _load_parties(spec, known_items, known_locations)
    spec = check_movement(spec, items, locations, allow_unserialized=allow_unserialized)
    book = StockBook.lock(spec.stock_keys(locations))
    planned = book.plan(spec, items, locations)
    asset_results = move_assets(kind, spec.lines, items, locations, asset_rule or AssetRule())
    book.take(planned)
    [moved] = write_movements([planned], book)
    moved.changes.extend(asset_change(*asset) for asset in asset_results)
    moved.assets.extend(asset_results)
    return moved


@dataclass(frozen=True)
class MovementSpec:
    """A movement to append, before anything is checked or written."""

    kind: MovementKind
    lines: tuple[LineSpec, ...]
    actor: str
    reason: str = ""
    reference: str = ""
    reverses_id: UUID | None = None
    client_temp_id: str = ""

    def stock_keys(self, locations: dict[Any, Location]) -> list[StockKey]:
        """The (item, location, condition) stock rows it touches: its own locations, not
        virtual ones. (Of a spec `check_movement` returned: its conditions are resolved.)"""
        keys: dict[StockKey, None] = {}
        for line in self.lines:
            for key in (line.source_key, line.target_key):
                if locations[key[1]].kind not in VIRTUAL_KINDS:
                    keys[key] = None
        return list(keys)


def _load_parties(
    spec: MovementSpec,
    known_items: dict[Any, Item] | None,
    known_locations: dict[Any, Location] | None,
) -> tuple[dict[Any, Item], dict[Any, Location]]:
    """The items and locations `spec` names, one query each for those not already known."""
    location_ids = {
        location_id
        for line in spec.lines
        for location_id in (line.from_location_id, line.to_location_id)
    }
    locations = dict(known_locations or {})
    if not location_ids <= set(locations):
        locations.update(Location.objects.in_bulk(list(location_ids - set(locations))))
    items = dict(known_items or {})
    item_ids = {line.item_id for line in spec.lines}
    if not item_ids <= set(items):
        items.update(Item.objects.in_bulk(list(item_ids - set(items))))
    return items, locations


def check_movement(
    spec: MovementSpec,
    items: dict[Any, Item],
    locations: dict[Any, Location],
    *,
    allow_unserialized: bool = False,
) -> MovementSpec:
    """Raise Invalid for a line naming an unknown item or location or breaking its tracking;
    return `spec` with each line's condition resolved against its item (`resolve_condition`)."""
    # A deleted item leaves the catalogue, not the ledger: what is already out (sold, issued)
    # can still be voided or come back.
    deleted_ok = spec.kind in (MovementKind.SALE_REVERSAL, MovementKind.RETURN)
    for index, line in enumerate(spec.lines):
        item = items.get(line.item_id)
        if item is None or (item.deleted_at is not None and not deleted_ok):
            raise Invalid.field(f"lines[{index}].item", "unknown item")
        if line.from_location_id not in locations or line.to_location_id not in locations:
            raise Invalid.field(f"lines[{index}]", "unknown location")
        if line.from_location_id == line.to_location_id:
            raise Invalid.field(f"lines[{index}]", "from and to are the same location")
        if (
            item.tracking == Tracking.SERIAL
            and len(line.serials) != line.qty
            and not (allow_unserialized and not line.serials)
        ):
            raise Invalid.field(f"lines[{index}].serials", "a serialized item moves by serial")
        if item.tracking == Tracking.BULK and line.serials:
            raise Invalid.field(f"lines[{index}].serials", "a bulk item has no serials")
    return replace(
        spec,
        lines=tuple(
            _resolved(line, items[line.item_id], index) for index, line in enumerate(spec.lines)
        ),
    )


def _resolved(line: LineSpec, item: Item, index: int) -> LineSpec:
    condition, to_condition = resolve_condition(
        returnable=item.returnable,
        condition=line.condition,
        to_condition=line.to_condition,
        where=f"lines[{index}]",
    )
    return replace(line, condition=condition, to_condition=to_condition)


@dataclass
class PlannedMovement:
    """A checked movement: the stock rows it moves, by how much, from which quantities."""

    spec: MovementSpec
    deltas: dict[StockKey, int]  # each row it changes (delta != 0), in row pk order
    before: dict[StockKey, int]  # each such row's qty just before it
    first_source: UUID | None  # the first line's own (not virtual) source location, if any


class StockBook:
    """The locked stock rows of one or more movements and their running quantities.

    Movements are planned one after another against it, each seeing what those taken before it
    left, so a whole batch of movements is checked exactly as if each ran alone in turn, with
    every row locked once, in primary-key order, up front.
    """

    def __init__(self, rows: dict[StockKey, Stock]) -> None:
        self.rows = rows
        self.qty = {key: row.qty for key, row in rows.items()}

    @classmethod
    def lock(cls, keys: Sequence[StockKey]) -> StockBook:
        return cls(_lock_stock_rows(list(dict.fromkeys(keys))))

    def plan(
        self, spec: MovementSpec, items: dict[Any, Item], locations: dict[Any, Location]
    ) -> PlannedMovement:
        """Check `spec` against the running quantities, or raise InsufficientStock. Changes
        nothing: `take` applies the plan to the running quantities."""
        # The movement's own running change per row (a run's book holds many rows; copying
        # all of them for each movement would cost the run a quadratic walk).
        deltas: dict[StockKey, int] = {}
        first_source = None
        for index, line in enumerate(spec.lines):
            source = line.source_key
            if source in self.qty:  # a virtual source is unbounded
                first_source = first_source or line.from_location_id
                deltas[source] = deltas.get(source, 0) - line.qty
                have = self.qty[source] + deltas[source]
                if have < 0:
                    item, where = items[line.item_id], locations[line.from_location_id]
                    raise InsufficientStock(
                        f"insufficient stock on line {index}: {item.name} at {where.name} has "
                        f"{have + line.qty}, {line.qty} needed",
                        line=index,
                    )
            target = line.target_key
            if target in self.qty:
                deltas[target] = deltas.get(target, 0) + line.qty
        moved = sorted(
            ((key, delta) for key, delta in deltas.items() if delta != 0),
            key=lambda kv: self.rows[kv[0]].pk,
        )
        before = {key: self.qty[key] for key, _ in moved}
        return PlannedMovement(spec, dict(moved), before, first_source)

    def take(self, planned: PlannedMovement) -> None:
        for key, delta in planned.deltas.items():
            self.qty[key] += delta


def write_movements(planned: Sequence[PlannedMovement], book: StockBook) -> list[MoveResult]:
    """Write planned movements, taken from `book` in this order: one guarded UPDATE for every
    stock row they move, one INSERT of the movements, one of their lines."""
    net: dict[StockKey, int] = {}
    for plan in planned:
        for key, delta in plan.deltas.items():
            net[key] = net.get(key, 0) + delta
    _update_stock([(book.rows[key], delta) for key, delta in net.items() if delta != 0])
    now = timezone.now()
    movements = [
        new_row(
            Movement,
            id=uuid4(),
            kind=plan.spec.kind.value,
            reason=plan.spec.reason,
            reference=plan.spec.reference,
            reverses_id=plan.spec.reverses_id,
            client_temp_id=plan.spec.client_temp_id,
            actor=plan.spec.actor,
            created_at=now,
        )
        for plan in planned
    ]
    lines = [
        [
            new_row(
                MovementLine,
                id=None,
                movement_id=movement.pk,
                line_no=index,
                item_id=line.item_id,
                from_location_id=line.from_location_id,
                to_location_id=line.to_location_id,
                qty=line.qty,
                serials=list(line.serials),
                condition=line.condition,
                to_condition=line.target_key[2],
            )
            for index, line in enumerate(plan.spec.lines)
        ]
        for plan, movement in zip(planned, movements, strict=True)
    ]
    insert_rows(Movement, movements)
    insert_rows(MovementLine, [line for per_movement in lines for line in per_movement])
    results = []
    # Each stock row's ids as text, once per call: a batch's movements touch the same few rows.
    row_texts: dict[StockKey, tuple[str, str, str]] = {}
    for plan, movement, line_rows in zip(planned, movements, lines, strict=True):
        view = movement_view(movement, line_rows)
        changes = [
            Change(
                "movement",
                str(movement.id),
                None,
                view,
                None,
                plan.first_source or plan.spec.lines[0].to_location_id,
            )
        ]
        for key, delta in plan.deltas.items():
            texts = row_texts.get(key)
            if texts is None:
                texts = row_texts[key] = (str(key[0]), str(key[1]), key[2])
            item_text, location_text, condition = texts
            qty = plan.before[key]
            before = stock_view(item_text, location_text, qty, condition)
            changes.append(
                Change(
                    "stock",
                    before.key,
                    before,
                    stock_view(item_text, location_text, qty + delta, condition),
                    None,
                    key[1],
                )
            )
        results.append(
            MoveResult(
                movement=movement, view=view, changes=changes, assets=[], lines=plan.spec.lines
            )
        )
    return results


def _update_stock(moves: list[tuple[Stock, int]]) -> None:
    """One guarded UPDATE for all the rows (we hold their locks): each row only when it stays
    >= 0, and the row count proves every one was applied. Plain SQL: every write runs it."""
    if not moves:
        return
    moves.sort(key=lambda move: move[0].pk)
    cases = " ".join(["WHEN %s THEN %s"] * len(moves))
    guard = " OR ".join(["(id = %s AND qty >= %s)"] * len(moves))
    params = [value for row, delta in moves for value in (row.pk, delta)]
    params += [value for row, delta in moves for value in (row.pk, -delta)]
    sql = f"UPDATE inventory_stock SET qty = qty + CASE id {cases} END WHERE {guard}"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        updated = cursor.rowcount
    if updated != len(moves):  # unreachable while we hold the row locks; the guard stays
        raise InsufficientStock()


def _lock_stock_rows(keys: list[StockKey]) -> dict[StockKey, Stock]:
    """Open missing rows at qty 0, then lock every row in primary-key order."""
    if not keys:
        return {}
    rows = {_key_of(row): row for row in _select_stock_for_update(keys)}
    missing = [key for key in keys if key not in rows]
    if missing:
        # First stock of an item at a location: open the row (a concurrent opener wins
        # harmlessly), then lock the full set again, still in primary-key order.
        Stock.objects.bulk_create(
            [
                Stock(item_id=item_id, location_id=location_id, condition=condition, qty=0)
                for item_id, location_id, condition in missing
            ],
            ignore_conflicts=True,
        )
        rows = {_key_of(row): row for row in _select_stock_for_update(keys)}
    return rows


def _key_of(row: Stock) -> StockKey:
    return (row.item_id, row.location_id, row.condition)


def _select_stock_for_update(keys: list[StockKey]) -> list[Stock]:
    match = " OR ".join(["(item_id = %s AND location_id = %s AND condition = %s)"] * len(keys))
    params = [
        value
        for item_id, location_id, condition in keys
        for value in (uuid_param(item_id), uuid_param(location_id), condition)
    ]
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return read_rows(Stock, match, params, f" ORDER BY id{lock}")


def reversing_lines(movement: Movement) -> list[LineSpec]:
    """The lines that undo `movement`: each line back the way it came, in the condition it
    arrived in, to the condition it left in; the last first (an exchange's empty goes back to
    the customer before the full it stood for leaves them)."""
    return [
        LineSpec(
            line.item_id,
            line.to_location_id,
            line.from_location_id,
            line.qty,
            tuple(line.serials),
            condition=line.to_condition,
            to_condition=line.condition,
        )
        for line in movement.lines.order_by("-line_no")
    ]


def asset_change(before: AssetView | None, after: AssetView) -> Change:
    """The change a moved unit declares."""
    return Change("asset", str(after.id), before, after, after.version, after.location)


def move_assets(
    kind: MovementKind,
    lines: Sequence[LineSpec],
    items: dict[Any, Item],
    locations: dict[Any, Location],
    rule: AssetRule,
) -> list[tuple[AssetView | None, AssetView]]:
    wanted = [(index, line, serial) for index, line in enumerate(lines) for serial in line.serials]
    if not wanted:
        return []
    match = reduce(or_, (Q(item_id=line.item_id, serial=serial) for _, line, serial in wanted))
    assets = {
        (a.item_id, a.serial): a
        for a in Asset.objects.select_for_update().filter(match).order_by("pk")
    }
    results: list[tuple[AssetView | None, AssetView]] = []
    for index, line, serial in wanted:
        where = f"lines[{index}].serials"
        asset = assets.get((line.item_id, serial))
        source = locations[line.from_location_id]
        # Units at a customer's site are that customer's; anywhere else they are in our hands
        # (an exchange's empties come back in the movement that issues its fulls).
        at_customer = locations[line.to_location_id].kind == LocationKind.CUSTOMER_SITE
        holder = rule.customer_id if at_customer else None
        deposit = rule.deposit_by_item.get(line.item_id, 0) if holder else 0
        if asset is None:
            if kind != MovementKind.RECEIPT and source.kind != LocationKind.SUPPLIER:
                raise Conflict(
                    f"serial {serial} is not at {source.name}",
                    fields={where: f"{serial} is not there"},
                )
            asset = Asset(
                item_id=line.item_id,
                serial=serial,
                location_id=line.to_location_id,
                state=line.target_key[2] or rule.set_state or AssetState.FULL,
                customer_id=holder,
                deposit_held_minor=deposit,
            )
            asset.save(force_insert=True)
            results.append((None, asset_view(asset)))
            continue
        if asset.location_id != line.from_location_id:
            raise Conflict(
                f"serial {serial} is not at {source.name}", fields={where: f"{serial} is not there"}
            )
        # A returnable item's unit is in the condition its line moves (its stock row's), and
        # arrives in the line's target condition; other items follow the movement's rule.
        required = line.condition or rule.require_state
        if required and asset.state != required:
            raise Conflict(
                f"serial {serial} is {asset.state}", fields={where: f"{serial} is {asset.state}"}
            )
        before = asset_view(asset)
        new_state = (
            line.target_key[2]
            or rule.set_state
            or (AssetState.FULL if kind == MovementKind.RECEIPT else asset.state)
        )
        Asset.objects.filter(pk=asset.pk).update(
            location_id=line.to_location_id,
            state=new_state,
            customer_id=holder,
            deposit_held_minor=deposit,
            version=F("version") + 1,
        )
        asset.location_id = line.to_location_id
        asset.state = new_state
        asset.customer_id = holder
        asset.deposit_held_minor = deposit
        asset.version += 1
        results.append((before, asset_view(asset)))
    return results
