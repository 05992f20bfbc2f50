"""Which ops a device pushes at once instead of at its next round (API.md "Cluster", seed 002:
"the last unit sold"): a sale or a move that the local replica says takes the last units of an
item at a place. Pure but for reading the replica; a replica that knows nothing of the stock
says nothing is critical (the op then goes with the next round, as any other).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

# Op type → the payload field naming the place stock leaves.
_SOURCE_FIELD = {"sale.record": "location", "stock.move": "from_location"}


class StockReplica(Protocol):
    def stock_qty(self, item_id: str, location_id: str) -> int | None: ...


def takes_last_unit(replica: StockReplica, type: str, payload: Any) -> bool:
    """Whether the op would leave a stock row it draws from at zero (or below) by the replica."""
    if not isinstance(payload, Mapping):
        return False  # the outbox refuses it anyway
    field = _SOURCE_FIELD.get(type)
    location = payload.get(field) if field else None
    lines = payload.get("lines")
    if not isinstance(location, str) or not isinstance(lines, list):
        return False
    wanted: dict[str, int] = {}
    for line in lines:
        if not isinstance(line, Mapping):
            continue
        item, qty = line.get("item"), line.get("qty")
        if isinstance(item, str) and isinstance(qty, int) and not isinstance(qty, bool):
            wanted[item] = wanted.get(item, 0) + qty
    for item, qty in wanted.items():
        held = replica.stock_qty(item, location)
        if held is not None and qty > 0 and held - qty <= 0:
            return True
    return False
