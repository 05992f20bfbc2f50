"""Issue 10 item 7: nothing vanishes.

An item that still has stock cannot be deleted (409 `item_has_stock`, nothing changes); failed
and locked-out logins, permission denials and refused sync ops are security events, listed
newest first for admins and auditors at GET /api/v1/security-events.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.conftest import PASSWORD, Api, audit_count, create_user, login
from tests.ledger_helpers import distribute, make_item, make_location, ok, stock, stock_rows
from tests.sync.helpers import op, send

pytestmark = pytest.mark.django_db


def test_an_item_with_stock_cannot_be_deleted(manager: Api, default_location_id: str) -> None:
    gas = make_item(manager, "gas", 5)
    truck = make_location(manager, "truck 7")
    ok(distribute(manager, default_location_id, truck, [{"item": gas, "qty": 2}]))
    rows, entries = stock_rows(), audit_count()

    refused = manager.delete(f"/api/v1/items/{gas}")

    assert (refused.status, refused.body["code"]) == (409, "item_has_stock")
    assert "5 units" in refused.body["error"]
    assert (stock_rows(), audit_count()) == (rows, entries)
    assert stock(manager, gas, default_location_id) == 3
    assert stock(manager, gas, truck) == 2
    assert manager.get(f"/api/v1/items/{gas}").status == 200


def test_an_item_written_off_first_can_be_deleted(manager: Api, default_location_id: str) -> None:
    gas = make_item(manager, "gas", 5)
    ok(manager.patch(f"/api/v1/items/{gas}/qty", {"delta": -5}), 200)

    assert manager.delete(f"/api/v1/items/{gas}").status == 204
    assert manager.get(f"/api/v1/items/{gas}").status == 404


def test_a_synced_delete_of_an_item_with_stock_is_refused(manager: Api) -> None:
    gas = make_item(manager, "gas", 5)

    reply = send(manager, [op("item.delete", {"item_id": gas})])

    result = reply.body["results"][0]
    assert (result["status"], result["body"]["code"]) == (409, "item_has_stock")


def _events(api: Api, query: str = "") -> list[dict[str, Any]]:
    return ok(api.get(f"/api/v1/security-events{query}"), 200)["results"]


def test_failed_logins_are_security_events(admin: Api, auditor: Api) -> None:
    create_user("clerk", "staff")
    client = Api(Client(REMOTE_ADDR="198.51.100.7"))
    for _ in range(5):
        client.post(
            "/api/v1/auth/login",
            {"username": "Clerk", "password": "wrong", "device_id": "till-3"},
        )
    client.post("/api/v1/auth/login", {"username": "clerk", "password": PASSWORD})

    events = _events(auditor, "?actor=clerk")

    assert [e["kind"] for e in events] == ["login_locked"] + ["login_failed"] * 5
    failed = events[-1]
    assert (failed["actor"], failed["device"], failed["address"]) == (
        "clerk",
        "till-3",
        "198.51.100.7",
    )
    assert failed["reason"] == "invalid username or password"
    assert events[0]["reason"].startswith("locked out for ")
    assert _events(admin, "?kind=login_locked") == events[:1]


def test_permission_denials_are_security_events(auditor: Api, make_api: Any) -> None:
    create_user("driver", "staff")
    driver = Api(Client(), login("driver", device_id="truck-07")["access"])

    assert driver.post("/api/v1/items", {"name": "x", "qty": 1}).status == 403

    [event] = _events(auditor, "?kind=permission_denied")
    assert (event["actor"], event["device"], event["subject"]) == (
        "driver",
        "truck-07",
        "POST /api/v1/items",
    )
    assert event["reason"].startswith("permission_denied: ")


def test_refused_sync_ops_are_security_events(admin: Api, make_api: Any) -> None:
    create_user("driver", "staff")
    driver = Api(Client(), login("driver", device_id="truck-07")["access"])
    refused = op("item.create", {"name": "x", "qty": 1})

    reply = send(driver, [refused, op("item.adjust", {"item_id": "nonsense", "delta": 1})])

    assert [r["status"] for r in reply.body["results"]] == [403, 400]
    events = _events(admin, "?kind=sync_op_rejected")
    assert [e["subject"] for e in events] == [
        f"item.adjust {reply.body['results'][1]['op_id']}",
        f"item.create {refused['op_id']}",
    ]
    assert {(e["actor"], e["device"]) for e in events} == {("driver", "truck-07")}
    assert events[1]["reason"].startswith("403 permission_denied")


def test_security_events_are_for_admins_and_auditors_and_pages_are_keyset(
    admin: Api, manager: Api, staff: Api
) -> None:
    for n in range(3):
        Api(Client()).post("/api/v1/auth/login", {"username": f"nobody{n}", "password": "x"})

    first = ok(admin.get("/api/v1/security-events?kind=login_failed&limit=2"), 200)
    rest = ok(
        admin.get(
            f"/api/v1/security-events?kind=login_failed&limit=2&cursor={first['next_cursor']}"
        ),
        200,
    )

    assert [e["actor"] for e in first["results"]] == ["nobody2", "nobody1"]
    assert [e["actor"] for e in rest["results"]] == ["nobody0"]
    assert rest["next_cursor"] is None
    for refused in (manager, staff):
        reply = refused.get("/api/v1/security-events")
        assert (reply.status, reply.body["code"]) == (403, "permission_denied")
