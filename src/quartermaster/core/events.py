"""Live notifications after commit: a poke with the newest feed seq, plus critical events.

Sent only from `transaction.on_commit`, so nobody hears of a change that rolled back. They are
hints, not data: a client that misses one loses nothing, because it pulls the change feed.
Publishing never fails a command: the change is already committed when it runs. Which changes
are critical, a domain says through the hook it installs at start-up (`install_critical_events`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from quartermaster.core.types import Change

logger = logging.getLogger(__name__)

FEED_GROUP = "feed"


@dataclass(frozen=True)
class CriticalEvent:
    """Something people must hear of at once, told to whoever may see `location_id`. Which
    changes are critical is the domains' knowledge, not core's."""

    name: str
    location_id: UUID
    # The event's own fields as the wire carries them, e.g. {"item": "<uuid>"}.
    detail: dict[str, str | None] = field(default_factory=dict)

    def message(self) -> dict[str, str | None]:
        return {"event": self.name, **self.detail, "location": str(self.location_id)}


class CriticalEvents(Protocol):
    def __call__(self, changes: Sequence[Change]) -> list[CriticalEvent]: ...


# Installed at start-up by the domain that knows (InventoryConfig.ready). Until then no change
# is critical: events are hints, so a missing one costs a client nothing it cannot pull.
_critical_events: CriticalEvents | None = None


def install_critical_events(critical_events: CriticalEvents) -> None:
    global _critical_events
    _critical_events = critical_events


def critical_events(changes: Sequence[Change]) -> list[CriticalEvent]:
    """The critical events of `changes`, as the installed domain hook judges them."""
    return _critical_events(changes) if _critical_events is not None else []


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
        "critical": [event.message() for event in critical_events(published)],
    }
    transaction.on_commit(lambda: _send(FEED_GROUP, message))


def announce_after_commit(group: str, message: dict[str, Any]) -> None:
    """Send `message` to `group`'s listeners once the current transaction commits (at once
    outside one); never if it rolls back. A domain names its own groups and messages."""
    transaction.on_commit(lambda: _send(group, message))


USER_EVENT = "user.event"


def user_group(user_id: UUID) -> str:
    """The group of one user's sockets, on whichever device and process they are open."""
    return f"user.{user_id.hex}"


def tell_user_after_commit(user_id: UUID, event: str, detail: dict[str, Any]) -> None:
    """A critical `event` for `user_id`'s sockets only (`op_rejected`), once the current
    transaction commits (at once outside one)."""
    announce_after_commit(
        user_group(user_id), {"type": USER_EVENT, "event": event, "detail": detail}
    )


# The server's event loop (bound by the HTTP edge): messages are handed to it without waiting,
# so a commit never blocks on the channel layer. Without one (CLI, tests): sent in place.
_loop: asyncio.AbstractEventLoop | None = None


def bind_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    global _loop
    _loop = loop


CLUSTER_EVENT = "cluster.event"


def send_cluster_event(event: str, epoch: int, detail: dict[str, Any]) -> None:
    """Tell every connected socket of a change of the cluster (`primary_changed`), at once.

    Every server process sends it when it learns of the change, so a socket on any process
    hears it even when the channel layer is per process; the consumer passes each epoch on
    once, so with a shared layer (Redis) nobody hears it twice."""
    _send(FEED_GROUP, {"type": CLUSTER_EVENT, "event": event, "epoch": epoch, "detail": detail})


def _send(group: str, message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    loop = _loop
    try:
        if loop is not None and loop.is_running():
            sent = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
            sent.add_done_callback(lambda done: _log_failure(done, message))
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # the commit stands; clients will pull the feed anyway
        logger.warning("could not publish %s", _label(message), exc_info=True)


def _log_failure(done: Future[None], message: dict[str, Any]) -> None:
    if not done.cancelled() and done.exception() is not None:
        logger.warning("could not publish %s: %r", _label(message), done.exception())


def _label(message: dict[str, Any]) -> str:
    if "seq" in message:
        return f"feed seq {message['seq']}"
    return f"{message.get('event')} epoch {message.get('epoch')}"
