"""GET /api/v1/sync/changes: commit order, tombstones, pagination, scoping to what the caller
may see."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.inventory.models import Location
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def create_item(api: Api, name: str, qty: int = 0) -> str:
    """qty 0 by default: opening stock adds a receipt movement and a stock row to the feed."""
    reply = api.post("/api/v1/items", {"name": name, "qty": qty})
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def feed(api: Api, query: str = "") -> dict[str, Any]:
    reply = api.get(f"/api/v1/sync/changes{query}")
    assert reply.status == 200, reply.body
    return dict(reply.body)


def test_changes_come_in_commit_order_with_tombstones(admin: Api) -> None:
    apple = create_item(admin, "apple", 5)
    admin.patch(f"/api/v1/items/{apple}/qty", {"delta": -5})  # written off, so it may go
    pear = create_item(admin, "pear")
    admin.delete(f"/api/v1/items/{apple}")

    page = feed(admin)

    # Stock changes also bring their movement and stock rows (inventory.ledger); the items:
    changes = [c for c in page["changes"] if c["entity"] == "item"]
    assert [(c["entity"], c["id"], c["op"]) for c in changes] == [
        ("item", apple, "upsert"),
        ("item", apple, "upsert"),
        ("item", pear, "upsert"),
        ("item", apple, "delete"),
    ]
    every_seq = [c["seq"] for c in page["changes"]]
    assert every_seq == list(range(1, len(every_seq) + 1))
    assert changes[1]["data"]["qty"] == 0
    assert (changes[3]["data"], changes[3]["version"]) == (None, 2)
    assert (page["cursor"], page["has_more"]) == (str(every_seq[-1]), False)


def test_polling_since_the_cursor_returns_only_what_came_after(admin: Api) -> None:
    create_item(admin, "apple")
    cursor = feed(admin)["cursor"]
    pear = create_item(admin, "pear")

    page = feed(admin, f"?since={cursor}")
    empty = feed(admin, f"?since={page['cursor']}")

    assert [c["id"] for c in page["changes"]] == [pear]
    assert (empty["changes"], empty["cursor"], empty["has_more"]) == ([], page["cursor"], False)


def test_pages_follow_the_limit(admin: Api) -> None:
    ids = [create_item(admin, f"item {n}") for n in range(5)]

    first = feed(admin, "?limit=2")
    second = feed(admin, f"?since={first['cursor']}&limit=2")
    third = feed(admin, f"?since={second['cursor']}&limit=2")

    assert ([c["id"] for c in first["changes"]], first["has_more"]) == (ids[:2], True)
    assert ([c["id"] for c in second["changes"]], second["has_more"]) == (ids[2:4], True)
    assert ([c["id"] for c in third["changes"]], third["has_more"]) == (ids[4:], False)


def test_staff_see_their_locations_and_the_shared_catalogue_only(
    admin: Api, make_api: Any, default_location_id: str
) -> None:
    elsewhere = Location.objects.create(name="depot 2", kind="depot")
    here = make_api("staff", "here", locations=(default_location_id,))
    away = make_api("staff", "away", locations=(str(elsewhere.pk),))
    apple = create_item(admin, "apple")
    admin.delete(f"/api/v1/items/{apple}")

    seen_here = feed(here)
    seen_away = feed(away)

    assert [c["op"] for c in seen_here["changes"]] == ["upsert", "delete"]
    # The catalogue is everyone's; stock at the default location (an item's qty) is not theirs.
    assert [c["op"] for c in seen_away["changes"]] == ["upsert", "delete"]
    assert seen_here["changes"][0]["data"]["qty"] == 0
    assert seen_away["changes"][0]["data"]["qty"] is None
    assert seen_away["cursor"] == seen_here["cursor"] == "2"


def test_the_cursor_moves_past_rows_the_caller_may_not_see(
    admin: Api, make_api: Any, default_location_id: str
) -> None:
    elsewhere = Location.objects.create(name="depot 2", kind="depot")
    away = make_api("staff", "away", locations=(str(elsewhere.pk),))
    for n in range(3):  # each new location's row belongs to that location
        assert (
            admin.post("/api/v1/locations", {"name": f"van {n}", "kind": "vehicle"}).status == 201
        )

    page = feed(away, "?limit=1")

    assert (page["changes"], page["cursor"], page["has_more"]) == ([], "3", False)


def test_party_users_see_no_catalogue_or_stock(admin: Api, make_api: Any) -> None:
    party = make_api("party")
    create_item(admin, "apple")

    page = feed(party)

    assert (page["changes"], page["has_more"]) == ([], False)


def test_auditors_see_everything(admin: Api, auditor: Api) -> None:
    create_item(admin, "apple")

    assert len(feed(auditor)["changes"]) == 1


def test_a_bad_cursor_or_limit_is_400(admin: Api) -> None:
    assert admin.get("/api/v1/sync/changes?since=-1").status == 400
    assert admin.get("/api/v1/sync/changes?since=abc").status == 400
    assert admin.get("/api/v1/sync/changes?limit=0").status == 400
    assert admin.get("/api/v1/sync/changes?limit=501").status == 400


def test_the_feed_needs_a_token(anon: Api) -> None:
    assert anon.get("/api/v1/sync/changes").status == 401


def test_sync_ops_land_in_the_feed_and_the_batch_cursor_covers_them(admin: Api) -> None:
    from tests.sync.helpers import op, send

    reply = send(admin, [op("item.create", {"name": "apple", "qty": 1}, client_temp_id="t")])
    item_id = reply.body["results"][0]["id_map"]["t"]

    page = feed(admin)

    assert [c["id"] for c in page["changes"] if c["entity"] == "item"] == [item_id]
    assert page["cursor"] == reply.body["cursor"]
