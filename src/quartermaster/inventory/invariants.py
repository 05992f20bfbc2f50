"""Pure item rules (Inventory v2): name.strip() non-empty, qty an integer ≥ 0, delta an integer.

Data in → cleaned data out, or `Invalid` naming the field. No database access; the database
enforces the same rules again (unique live name, CHECK qty >= 0).
"""

from __future__ import annotations

from typing import Any

from django.db import models

from quartermaster.core.errors import Invalid
from quartermaster.core.money import parse_money

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


def is_integer(value: Any) -> bool:
    """Booleans are not integers on this wire, though Python says they are."""
    return isinstance(value, int) and not isinstance(value, bool)


def clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise Invalid.field("name", "must be a non-blank string")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise Invalid.field("name", f"at most {MAX_NAME_LENGTH} characters")
    return name


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
        raise Invalid(QTY_BELOW_ZERO, fields={"delta": QTY_BELOW_ZERO})
    return result


def clean_price(price: Any) -> int:
    """`"12.50"` → 1250 minor units."""
    try:
        minor = parse_money(price)
    except ValueError as exc:
        raise Invalid.field("price", str(exc)) from exc
    if minor < 0:
        raise Invalid.field("price", "must be 0 or more")
    return minor


def clean_unit(unit: Any) -> str:
    if not isinstance(unit, str) or not unit.strip() or len(unit.strip()) > MAX_UNIT_LENGTH:
        raise Invalid.field("unit", f"1 to {MAX_UNIT_LENGTH} characters")
    return unit.strip()


def clean_tracking(tracking: Any) -> str:
    if tracking not in Tracking.values:
        raise Invalid.field("tracking", f"one of {', '.join(Tracking.values)}")
    return str(tracking)
