"""Versioned records and conflicts (API.md "Sync", DESIGN "Documents with versions"): PATCH items
and customers with base_version / If-Match, 409 + a conflict record, GET /conflicts, resolve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api, audit_count
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


def _item(api: Api, name: str = "Rice 5kg", qty: int = 10) -> dict[str, Any]:
    reply = api.post("/api/v1/items", {"name": name, "qty": qty, "price": "5.00"})
    assert reply.status == 201, reply.body
    return reply.body


def _customer(api: Api, name: str = "Lakshmi Stores") -> dict[str, Any]:
    reply = api.post("/api/v1/customers", {"name": name, "phone": "111"})
    assert reply.status == 201, reply.body
    return reply.body


def _conflicts(api: Api, **query: str) -> list[dict[str, Any]]:
    suffix = "&".join(f"{k}={v}" for k, v in query.items())
    reply = api.get("/api/v1/conflicts" + (f"?{suffix}" if suffix else ""))
    assert reply.status == 200, reply.body
    return reply.body["results"]


def test_item_update_bumps_version_and_never_touches_qty(admin: Api) -> None:
    item = _item(admin)
    reply = admin.patch(
        f"/api/v1/items/{item['id']}", {"name": "Rice 5 kg", "price": "6.50", "base_version": 1}
    )
    assert reply.status == 200, reply.body
    assert reply.body["name"] == "Rice 5 kg"
    assert reply.body["price"] == "6.50"
    assert reply.body["qty"] == 10
    assert reply.body["version"] == 2
    assert admin.get(f"/api/v1/items/{item['id']}").body["version"] == 2
    # qty is not an editable field: stock travels as deltas and movements.
    bad = admin.patch(f"/api/v1/items/{item['id']}", {"qty": 99})
    assert bad.status == 400
    assert admin.get(f"/api/v1/items/{item['id']}").body["qty"] == 10


def test_an_update_without_base_version_is_unconditional(admin: Api) -> None:
    item = _item(admin)
    assert admin.patch(f"/api/v1/items/{item['id']}", {"unit": "bag"}).status == 200
    reply = admin.patch(f"/api/v1/items/{item['id']}", {"unit": "sack"})
    assert reply.status == 200
    assert reply.body["version"] == 3


def test_a_stale_item_update_is_409_changes_nothing_and_records_a_conflict(admin: Api) -> None:
    item = _item(admin)
    assert admin.patch(f"/api/v1/items/{item['id']}", {"price": "6.00"}).status == 200
    before_audit = audit_count()
    reply = admin.patch(f"/api/v1/items/{item['id']}", {"name": "Basmati", "base_version": 1})
    assert reply.status == 409, reply.body
    assert reply.body["code"] == "version_conflict"
    assert reply.body["current"]["version"] == 2
    assert reply.body["mine"] == {"fields": {"name": "Basmati"}, "base_version": 1}
    current = admin.get(f"/api/v1/items/{item['id']}").body
    assert current["name"] == "Rice 5kg"
    assert current["version"] == 2
    [conflict] = _conflicts(admin)
    assert conflict["id"] == reply.body["conflict"]
    assert conflict["entity"] == "item"
    assert conflict["entity_id"] == item["id"]
    assert conflict["status"] == "open"
    assert conflict["client_snapshot"] == {"fields": {"name": "Basmati"}, "base_version": 1}
    assert conflict["server_snapshot"]["price"] == "6.00"
    assert conflict["base_snapshot"]["price"] == "5.00"  # from the audit trail
    # The conflict row is committed and audited although the update was refused.
    assert audit_count() == before_audit + 1


def test_if_match_header_carries_the_base_version(admin: Api) -> None:
    customer = _customer(admin)
    path = f"/api/v1/customers/{customer['id']}"
    ok = admin.patch(path, {"phone": "222"}, headers={"If-Match": '"1"'})
    assert ok.status == 200, ok.body
    assert ok.body["version"] == 2
    stale = admin.patch(path, {"phone": "333"}, headers={"If-Match": '"1"'})
    assert stale.status == 409
    assert admin.get(path).body["phone"] == "222"
    bad = admin.patch(path, {"phone": "333"}, headers={"If-Match": "nope"})
    assert bad.status == 400
    both = admin.patch(path, {"phone": "3", "base_version": 2}, headers={"If-Match": '"1"'})
    assert both.status == 400


def test_unknown_records_are_404(admin: Api) -> None:
    missing = "00000000-0000-0000-0000-000000000001"
    assert admin.patch(f"/api/v1/items/{missing}", {"name": "x"}).status == 404
    assert admin.patch(f"/api/v1/customers/{missing}", {"name": "x"}).status == 404


def _stale_customer(api: Api, theirs: dict[str, Any], mine: dict[str, Any]) -> tuple[str, str]:
    customer = _customer(api)
    path = f"/api/v1/customers/{customer['id']}"
    assert api.patch(path, theirs).status == 200
    reply = api.patch(path, {**mine, "base_version": 1})
    assert reply.status == 409, reply.body
    return customer["id"], reply.body["conflict"]


def test_keep_theirs_closes_the_conflict_and_changes_nothing(manager: Api) -> None:
    customer_id, conflict_id = _stale_customer(manager, {"name": "A"}, {"name": "B"})
    reply = manager.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": "keep_theirs"})
    assert reply.status == 200, reply.body
    assert reply.body["status"] == "resolved"
    current = manager.get(f"/api/v1/customers/{customer_id}").body
    assert current["name"] == "A"
    assert current["version"] == 2
    assert _conflicts(manager, status="open") == []
    # Resolving twice is a conflict.
    again = manager.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": "keep_mine"})
    assert again.status == 409
    assert again.body["code"] == "conflict"


def test_keep_mine_applies_the_client_fields_on_the_current_version(manager: Api) -> None:
    customer_id, conflict_id = _stale_customer(
        manager, {"name": "A", "phone": "999"}, {"name": "B"}
    )
    reply = manager.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": "keep_mine"})
    assert reply.status == 200, reply.body
    assert reply.body["record"]["name"] == "B"
    current = manager.get(f"/api/v1/customers/{customer_id}").body
    assert current["name"] == "B"
    assert current["phone"] == "999"  # the server's other change stays
    assert current["version"] == 3
    audit = manager.get(f"/api/v1/audit?entity_type=customer&entity_id={customer_id}").body
    assert [e["action"] for e in audit["results"]][-1] == "conflict.resolve"


def test_merge_takes_one_sided_changes_and_needs_merged_for_both_sided(manager: Api) -> None:
    item = _item(manager)
    path = f"/api/v1/items/{item['id']}"
    assert manager.patch(path, {"name": "Server name", "unit": "bag"}).status == 200
    stale = manager.patch(
        path, {"name": "Client name", "price": "7.00", "unit": "bag", "base_version": 1}
    )
    assert stale.status == 409
    conflict_id = stale.body["conflict"]
    resolve = f"/api/v1/conflicts/{conflict_id}/resolve"
    missing = manager.post(resolve, {"strategy": "merge"})
    assert missing.status == 400, missing.body
    assert set(missing.body["fields"]) == {"merged.name"}
    assert manager.get(path).body["version"] == 2  # nothing changed
    unknown = manager.post(resolve, {"strategy": "merge", "merged": {"qty": 3, "name": "x"}})
    assert unknown.status == 400
    assert "merged.qty" in unknown.body["fields"]
    ok = manager.post(resolve, {"strategy": "merge", "merged": {"name": "Merged name"}})
    assert ok.status == 200, ok.body
    current = manager.get(path).body
    assert current["name"] == "Merged name"  # both sides: the merged value
    assert current["price"] == "7.00"  # client side only
    assert current["unit"] == "bag"  # same on both sides
    assert current["qty"] == 10
    assert current["version"] == 3
    assert manager.post(resolve, {"strategy": "merge", "merged": {}}).status == 409


def test_staff_see_their_own_conflicts_and_cannot_resolve(
    make_api: Callable[..., Api], manager: Api, default_location_id: str
) -> None:
    alice = make_api("staff", locations=(default_location_id,))
    bob = make_api("staff", locations=(default_location_id,))
    customer = _customer(manager)
    path = f"/api/v1/customers/{customer['id']}"
    assert manager.patch(path, {"name": "New"}).status == 200
    reply = alice.patch(path, {"name": "Mine", "base_version": 1})
    assert reply.status == 409
    assert [c["id"] for c in _conflicts(alice)] == [reply.body["conflict"]]
    assert _conflicts(bob) == []
    assert bob.get(f"/api/v1/conflicts/{reply.body['conflict']}").status == 404
    assert len(_conflicts(manager)) == 1
    denied = alice.post(
        f"/api/v1/conflicts/{reply.body['conflict']}/resolve", {"strategy": "keep_mine"}
    )
    assert denied.status == 403


def test_conflicts_list_is_paginated(admin: Api) -> None:
    customer = _customer(admin)
    path = f"/api/v1/customers/{customer['id']}"
    assert admin.patch(path, {"name": "v2"}).status == 200
    for n in range(3):
        assert admin.patch(path, {"name": f"stale {n}", "base_version": 1}).status == 409
    first = admin.get("/api/v1/conflicts?limit=2").body
    assert len(first["results"]) == 2
    assert first["next_cursor"]
    second = admin.get(f"/api/v1/conflicts?limit=2&cursor={first['next_cursor']}").body
    ids = [c["id"] for c in first["results"] + second["results"]]
    assert len(set(ids)) == 3


def test_a_stale_sync_op_fails_409_and_lists_a_conflict(admin: Api) -> None:
    item = _item(admin)
    assert admin.patch(f"/api/v1/items/{item['id']}", {"price": "9.00"}).status == 200
    stale = op("item.update", {"id": item["id"], "name": "Offline name"}, base_version=1)
    fresh = op("item.update", {"id": item["id"], "unit": "box"}, base_version=2)
    reply = send(admin, [stale, fresh])
    assert reply.status == 207, reply.body
    assert statuses(reply) == [409, 200]
    assert reply.body["results"][0]["body"]["code"] == "version_conflict"
    [conflict] = _conflicts(admin)
    assert conflict["entity_id"] == item["id"]
    assert conflict["client_snapshot"]["fields"] == {"name": "Offline name"}
    assert conflict["server_snapshot"]["price"] == "9.00"
    # Replaying the op answers the same and records no second conflict.
    again = send(admin, [stale])
    assert again.body["results"][0]["status"] == 409
    assert again.body["results"][0]["replayed"] is True
    assert len(_conflicts(admin)) == 1
    current = admin.get(f"/api/v1/items/{item['id']}").body
    assert (current["name"], current["unit"], current["version"]) == ("Rice 5kg", "box", 3)


def test_a_stale_op_in_a_group_fails_the_group_and_its_conflict_is_still_recorded(
    admin: Api,
) -> None:
    item = _item(admin)
    assert admin.patch(f"/api/v1/items/{item['id']}", {"price": "9.00"}).status == 200
    fresh = op("item.update", {"id": item["id"], "unit": "box"}, base_version=2, group="g")
    stale = op("item.update", {"id": item["id"], "name": "x"}, base_version=1, group="g")
    reply = send(admin, [fresh, stale])
    assert statuses(reply) == [424, 409]
    conflict_id = reply.body["results"][1]["body"]["conflict"]
    [conflict] = _conflicts(admin)
    assert conflict["id"] == conflict_id
    assert conflict["client_snapshot"] == {"fields": {"name": "x"}, "base_version": 1}
    current = admin.get(f"/api/v1/items/{item['id']}").body
    assert (current["unit"], current["version"]) == ("pcs", 2)  # nothing of the group applied
    # A dry run records nothing.
    dry = send(
        admin, [op("item.update", {"id": item["id"], "name": "y"}, base_version=1)], dry_run=True
    )
    assert statuses(dry) == [409]
    assert len(_conflicts(admin)) == 1
    resolved = admin.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": "keep_mine"})
    assert resolved.status == 200, resolved.body
    assert admin.get(f"/api/v1/items/{item['id']}").body["name"] == "x"
    assert admin.get("/api/v1/audit/verify").body["ok"] is True
