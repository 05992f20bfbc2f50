"""Inventory's critical events: which stock changes people must hear of at once.

Core publishes live events but cannot know what a stock row is; inventory installs
`out_of_stock_events` as core's hook at start-up (InventoryConfig.ready). Pure: changes in,
events out, no database access (the stock views' type is all it needs of selectors).
"""

from __future__ import annotations

from collections.abc import Sequence

from quartermaster.core.events import CriticalEvent
from quartermaster.core.types import Change
from quartermaster.inventory.selectors import StockView

OUT_OF_STOCK = "out_of_stock"


def out_of_stock_events(changes: Sequence[Change]) -> list[CriticalEvent]:
    """Stock rows that went from some to none."""
    events = []
    for change in changes:
        after, before = change.after, change.before
        if change.entity_type != "stock" or not isinstance(after, StockView):
            continue
        if change.location_id is None:
            continue
        # Running out of empties (all sent to be refilled) is no shortage of anything to sell.
        if after.condition == "empty":
            continue
        before_qty = before.qty if isinstance(before, StockView) else 0
        if after.qty == 0 and before_qty > 0:
            events.append(
                CriticalEvent(
                    name=OUT_OF_STOCK, location_id=change.location_id, detail={"item": after.item}
                )
            )
    return events
