"""Inventory's critical events: which stock changes people must hear of at once.

Core publishes live events but cannot know what a stock row is; inventory installs
`out_of_stock_events` as core's hook at start-up (InventoryConfig.ready). Pure: changes in,
events out, no database access.
"""

from __future__ import annotations

from collections.abc import Sequence

from quartermaster.core.events import CriticalEvent
from quartermaster.core.types import Change

OUT_OF_STOCK = "out_of_stock"


def out_of_stock_events(changes: Sequence[Change]) -> list[CriticalEvent]:
    """Stock rows that went from some to none."""
    events = []
    for change in changes:
        if change.entity_type != "stock" or not change.after or change.location_id is None:
            continue
        before_qty = (change.before or {}).get("qty", 0)
        if change.after.get("qty") == 0 and before_qty > 0:
            events.append(
                CriticalEvent(
                    name=OUT_OF_STOCK,
                    location_id=change.location_id,
                    detail={"item": change.after.get("item")},
                )
            )
    return events
