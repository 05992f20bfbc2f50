"""Critical live events: inventory tells core which stock changes people must hear of at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from quartermaster.core.events import FEED_GROUP, CriticalEvent
from quartermaster.core.types import Change
from quartermaster.inventory.events import out_of_stock_events
from quartermaster.inventory.selectors import stock_view
from tests.conftest import Api
from tests.ledger_helpers import make_item, ok

OnCommit = Callable[..., AbstractContextManager[Any]]


@pytest.fixture
def feed() -> Iterator[Callable[[], dict[str, Any]]]:
    """A listener on the feed group of the in-process channel layer: call it for the next message."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(FEED_GROUP, channel)
    yield lambda: dict(async_to_sync(layer.receive)(channel))
    async_to_sync(layer.group_discard)(FEED_GROUP, channel)


@pytest.mark.django_db
def test_selling_the_last_unit_publishes_out_of_stock(
    admin: Api,
    default_location_id: str,
    feed: Callable[[], dict[str, Any]],
    django_capture_on_commit_callbacks: OnCommit,
) -> None:
    item = make_item(admin, "last one", qty=1)

    with django_capture_on_commit_callbacks(execute=True):
        ok(admin.patch(f"/api/v1/items/{item}/qty", {"delta": -1}), 200)

    message = feed()
    assert message["type"] == "feed.commit"
    assert message["critical"] == [
        {"event": "out_of_stock", "item": item, "location": default_location_id}
    ]
    assert list(message["critical"][0]) == ["event", "item", "location"]


@pytest.mark.django_db
def test_stock_that_stays_above_zero_is_not_critical(
    admin: Api, feed: Callable[[], dict[str, Any]], django_capture_on_commit_callbacks: OnCommit
) -> None:
    item = make_item(admin, "plenty", qty=2)

    with django_capture_on_commit_callbacks(execute=True):
        ok(admin.patch(f"/api/v1/items/{item}/qty", {"delta": -1}), 200)

    assert feed()["critical"] == []


def test_only_a_stock_row_going_from_some_to_none_is_out_of_stock() -> None:
    item, location = uuid.uuid4(), uuid.uuid4()

    def stock(before: int | None, after: int, entity_type: str = "stock") -> Change:
        return Change(
            entity_type,
            f"{item}:{location}",
            None if before is None else stock_view(item, location, before),
            stock_view(item, location, after),
            None,
            location,
        )

    events = out_of_stock_events(
        [stock(3, 0), stock(None, 0), stock(0, 0), stock(2, 1), stock(1, 0, "movement")]
    )

    assert events == [CriticalEvent("out_of_stock", location, {"item": str(item)})]
