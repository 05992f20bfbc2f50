"""Live notifications after commit: a poke with the newest feed seq, plus critical events.

Sent only from `transaction.on_commit`, so nobody hears of a change that rolled back. They are
hints, not data: a client that misses one loses nothing, because it pulls the change feed.
Publishing never fails a command: the change is already committed when it runs.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import Future
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from quartermaster.core.types import Change

logger = logging.getLogger(__name__)

FEED_GROUP = "feed"


def out_of_stock_events(changes: list[Change]) -> list[dict[str, Any]]:
    """Stock rows that went from some to none."""
    events = []
    for change in changes:
        if change.entity_type != "stock" or not change.after or change.location_id is None:
            continue
        before_qty = (change.before or {}).get("qty", 0)
        if change.after.get("qty") == 0 and before_qty > 0:
            events.append(
                {
                    "event": "out_of_stock",
                    "item": change.after.get("item"),
                    "location": str(change.location_id),
                }
            )
    return events


def publish_after_commit(feed_seq: int, changes: list[Change]) -> None:
    published = [change for change in changes if change.publish]
    if not published:
        return
    message = {
        "type": "feed.commit",
        "seq": feed_seq,
        # None means "not tied to a location": every reader may hear of it.
        "locations": sorted({str(c.location_id) if c.location_id else "" for c in published} - {""})
        if all(c.location_id for c in published)
        else None,
        "critical": out_of_stock_events(published),
    }
    transaction.on_commit(lambda: _send(message))


# The server's event loop (bound by the HTTP edge): messages are handed to it without waiting,
# so a commit never blocks on the channel layer. Without one (CLI, tests): sent in place.
_loop: asyncio.AbstractEventLoop | None = None


def bind_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _loop
    _loop = loop


def _send(message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _loop
    try:
        if loop is not None and loop.is_running():
            sent = asyncio.run_coroutine_threadsafe(layer.group_send(FEED_GROUP, message), loop)
            sent.add_done_callback(lambda done: _log_failure(done, message))
        else:
            async_to_sync(layer.group_send)(FEED_GROUP, message)
    except Exception:  # the commit stands; clients will pull the feed anyway
        logger.warning("could not publish feed seq %s", message["seq"], exc_info=True)


def _log_failure(done: Future[None], message: dict[str, Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        logger.warning("could not publish feed seq %s: %r", message["seq"], done.exception())
