"""Pure item rules (Inventory v2): name.strip() non-empty, qty an integer ≥ 0, delta an integer.

Data in → cleaned data out, or `Invalid` naming the field. No database access; the database
enforces the same rules again (unique live name, CHECK qty >= 0).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from quartermaster.core import names
from quartermaster.core.errors import Conflict, Invalid, QtyBelowZero

MAX_NAME_LENGTH = 200
MAX_UNIT_LENGTH = 20
# Quantities are stored as 64-bit integers; keep every sum comfortably inside that range.
MAX_QTY = 10**15

QTY_BELOW_ZERO = "qty cannot go below 0"


class Tracking(models.TextChoices):
    BULK = "bulk"
    SERIAL = "serial"


class LocationKind(models.TextChoices):
    DEPOT = "depot"
    VEHICLE = "vehicle"
    STORE = "store"
    CUSTOMER_SITE = "customer_site"
    SUPPLIER = "supplier"
    CONSUMED = "consumed"
    LOSS = "loss"
    # Stock on its way between two own locations (a dispatched load): bounded, counted, and
    # seen by no one's location scope.
    IN_TRANSIT = "in_transit"
    # Empties sent to be refilled, until fulls come back against them: bounded and counted like
    # in-transit stock (the plant gives back what it was given, or the difference is a loss).
    FILLING_PLANT = "filling_plant"


# Stock sits in own and external locations; virtual ones are unbounded sources and sinks.
VIRTUAL_KINDS = frozenset({LocationKind.SUPPLIER, LocationKind.CONSUMED, LocationKind.LOSS})
OWN_KINDS = frozenset({LocationKind.DEPOT, LocationKind.VEHICLE, LocationKind.STORE})


class ItemHasStock(Conflict):
    """An item still held at our own locations cannot be deleted: its units would leave every
    list with no movement to explain them. Write them off (an adjustment) first."""

    code = "item_has_stock"

    def __init__(self, qty: int) -> None:
        super().__init__(
            f"the item still has {qty} units in stock; write them off with an adjustment first"
        )


# Kinds a person may create through the API; customer sites come with customers, virtual
# locations come with the database.
CREATABLE_KINDS = OWN_KINDS


class MovementKind(models.TextChoices):
    RECEIPT = "receipt"
    DISTRIBUTION = "distribution"
    ADJUSTMENT = "adjustment"
    SALE = "sale"
    SALE_REVERSAL = "sale_reversal"
    RETURN = "return"
    # Empties to the filling plant, and fulls back from it.
    REFILL = "refill"


class AssetState(models.TextChoices):
    FULL = "full"
    EMPTY = "empty"


class Condition(models.TextChoices):
    """The condition a returnable item's stock is held in (a cylinder is full or empty). The
    stock of an item that is not returnable has no condition (stored as "")."""

    NONE = "", "none"
    FULL = "full"
    EMPTY = "empty"


CONDITIONS = (Condition.FULL.value, Condition.EMPTY.value)


def clean_condition(value: Any, field: str) -> str:
    """A line's condition on the wire: absent ("") or one of full, empty."""
    if value == "" or value in CONDITIONS:
        return str(value)
    raise Invalid.field(field, f"one of {', '.join(CONDITIONS)}")


def resolve_condition(
    *, returnable: bool, condition: str, to_condition: str | None, where: str
) -> tuple[str, str]:
    """The (source, target) conditions of a movement line: a returnable item's stock moves in a
    condition (full unless said otherwise; it may change on the way, as an empty that comes
    back); any other item's has none, and naming one is refused."""
    if not returnable:
        if condition or to_condition:
            raise Invalid.field(f"{where}.condition", "only a returnable item has a condition")
        return "", ""
    source = condition or Condition.FULL.value
    target = to_condition or source
    if source not in CONDITIONS or target not in CONDITIONS:
        raise Invalid.field(f"{where}.condition", f"one of {', '.join(CONDITIONS)}")
    return source, target


def is_integer(value: Any) -> bool:
    """Booleans are not integers on this wire, though Python says they are."""
    return isinstance(value, int) and not isinstance(value, bool)


def clean_name(name: Any) -> str:
    """An item's or location's name: NFC, stripped, no invisible characters (`core.names`)."""
    return names.clean_name(name, max_length=MAX_NAME_LENGTH)


def clean_qty(qty: Any) -> int:
    if not is_integer(qty):
        raise Invalid.field("qty", "must be an integer")
    if qty < 0:
        raise Invalid.field("qty", "must be 0 or more")
    if qty > MAX_QTY:
        raise Invalid.field("qty", f"at most {MAX_QTY}")
    return int(qty)


def clean_delta(delta: Any) -> int:
    if not is_integer(delta):
        raise Invalid.field("delta", "must be an integer")
    if abs(delta) > MAX_QTY:
        raise Invalid.field("delta", f"must be between -{MAX_QTY} and {MAX_QTY}")
    return int(delta)


def apply_delta(qty: int, delta: int) -> int:
    """The transition qty' = qty + delta, refused when it would go below zero."""
    result = qty + delta
    if result < 0:
        raise QtyBelowZero(QTY_BELOW_ZERO, fields={"delta": QTY_BELOW_ZERO})
    return result


def clean_unit(unit: Any) -> str:
    if not isinstance(unit, str) or not unit.strip() or len(unit.strip()) > MAX_UNIT_LENGTH:
        raise Invalid.field("unit", f"1 to {MAX_UNIT_LENGTH} characters")
    return unit.strip()


def clean_tracking(tracking: Any) -> str:
    if tracking not in Tracking.values:
        raise Invalid.field("tracking", f"one of {', '.join(Tracking.values)}")
    return str(tracking)


MAX_REASON_LENGTH = 500
MAX_SERIAL_LENGTH = 100
MAX_LINES = 200
# Tax rates are basis points: 1800 = 18 %. 100 % is the sanity ceiling.
MAX_TAX_RATE_BP = 10_000


def clean_reason(reason: Any, *, required: bool) -> str:
    if not isinstance(reason, str):
        raise Invalid.field("reason", "must be a string")
    reason = reason.strip()
    if required and not reason:
        raise Invalid.field("reason", "a reason is required")
    if len(reason) > MAX_REASON_LENGTH:
        raise Invalid.field("reason", f"at most {MAX_REASON_LENGTH} characters")
    return reason


def clean_location_kind(kind: Any) -> str:
    if kind not in {k.value for k in CREATABLE_KINDS}:
        allowed = ", ".join(sorted(k.value for k in CREATABLE_KINDS))
        raise Invalid.field("kind", f"one of {allowed}")
    return str(kind)


def clean_tax_rate(rate_bp: Any) -> int:
    if not is_integer(rate_bp) or not 0 <= rate_bp <= MAX_TAX_RATE_BP:
        raise Invalid.field("tax_rate_bp", f"an integer from 0 to {MAX_TAX_RATE_BP} (basis points)")
    return int(rate_bp)


def clean_line(index: int, qty: Any, serials: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """One movement line: qty a positive integer; serials, when given, distinct and one per unit."""
    where = f"lines[{index}]"
    if not is_integer(qty) or qty <= 0 or qty > MAX_QTY:
        raise Invalid.field(f"{where}.qty", f"an integer from 1 to {MAX_QTY}")
    cleaned = tuple(s.strip() for s in serials)
    if any(not s or len(s) > MAX_SERIAL_LENGTH for s in cleaned):
        raise Invalid.field(f"{where}.serials", f"1 to {MAX_SERIAL_LENGTH} characters each")
    if len(set(cleaned)) != len(cleaned):
        raise Invalid.field(f"{where}.serials", "a serial appears twice")
    if cleaned and len(cleaned) != qty:
        raise Invalid.field(f"{where}.serials", "one serial per unit: qty must equal their count")
    return int(qty), cleaned


def clean_line_count(count: int) -> None:
    if not 1 <= count <= MAX_LINES:
        raise Invalid.field("lines", f"1 to {MAX_LINES} lines")


def check_serials_once(lines: list[tuple[Any, tuple[str, ...]]]) -> None:
    """A serial of an item may appear on one line only: a unit cannot move twice at once."""
    seen: set[tuple[Any, str]] = set()
    for index, (item, serials) in enumerate(lines):
        for serial in serials:
            if (item, serial) in seen:
                raise Invalid.field(f"lines[{index}].serials", f"serial {serial} appears twice")
            seen.add((item, serial))
