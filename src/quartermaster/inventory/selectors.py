"""Reads for inventory, always through these functions (never a bare lookup in an adapter)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from quartermaster.core.money import format_money
from quartermaster.inventory.models import Item, Location, Stock


def get_default_location() -> Location:
    """The location the simple items API works on; created by migration 0002."""
    return Location.objects.get(is_default=True)


def _items_with_default_qty(default_location_id: UUID) -> QuerySet[Item]:
    qty = Stock.objects.filter(item=OuterRef("pk"), location_id=default_location_id).values("qty")
    return Item.objects.filter(deleted_at__isnull=True).annotate(
        qty=Coalesce(Subquery(qty[:1]), Value(0))
    )


def get_item(item_id: UUID) -> tuple[Item, int] | None:
    """The live item and its qty at the default location, or None."""
    location = get_default_location()
    item = _items_with_default_qty(location.id).filter(pk=item_id).first()
    if item is None:
        return None
    return item, item.qty  # type: ignore[attr-defined]


def list_items(*, after: tuple[str, str] | None, limit: int) -> list[tuple[Item, int]]:
    """Live items ordered by (name, id), after the keyset position `after`."""
    location = get_default_location()
    query = _items_with_default_qty(location.id).order_by("name", "id")
    if after is not None:
        name, pk = after
        query = query.filter(name__gt=name) | query.filter(name=name, id__gt=pk)
    return [(item, item.qty) for item in query[:limit]]  # type: ignore[attr-defined]


def item_view(item: Item, qty: int) -> dict[str, Any]:
    """The item on the wire, in responses, audit entries and the change feed."""
    return {
        "id": str(item.id),
        "sku": item.sku,
        "name": item.name,
        "qty": qty,
        "price": format_money(item.price_minor),
        "unit": item.unit,
        "tracking": item.tracking,
        "version": item.version,
    }
