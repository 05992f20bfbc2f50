"""Loads (API.md "Distributor"): dispatched now, in transit, received line by line later;
a short receipt is a loss with its reason, a costly one waits for a manager."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quartermaster.core.models import AuditEntry
from quartermaster.inventory.invariants import LocationKind
from quartermaster.inventory.models import Location, Movement
from tests.conftest import Api
from tests.ledger_helpers import counts, ledger_agrees, make_item, make_location, ok, receive, stock
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def depot(default_location_id: str) -> str:
    return default_location_id


@pytest.fixture
def truck(admin: Api) -> str:
    return make_location(admin, "Truck 7")


@pytest.fixture
def driver(make_api: Callable[..., Api], truck: str) -> Api:
    return make_api("staff", "driver", locations=(truck,))


def transit() -> str:
    return str(Location.objects.get(kind=LocationKind.IN_TRANSIT).pk)


def dispatch(api: Api, source: str, target: str, lines: list[dict[str, Any]]) -> Any:
    return api.post(
        "/api/v1/loads", {"from_location": source, "to_location": target, "lines": lines}
    )


def test_a_load_leaves_at_once_and_arrives_when_received(
    admin: Api, driver: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "14.2 kg cylinder", price="950.00")
    receive(admin, depot, [{"item": gas, "qty": 10}])

    load = ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 6}]))

    assert (load["number"], load["status"], load["approval"]) == (
        "LOAD-000001",
        "in_transit",
        "not_needed",
    )
    assert (stock(admin, gas, depot), stock(admin, gas, transit()), stock(admin, gas, truck)) == (
        4,
        6,
        0,
    )
    received = ok(
        driver.post(f"/api/v1/loads/{load['id']}/receive", {"lines": [{"item": gas, "qty": 6}]}),
        200,
    )
    assert (received["status"], received["received_by"], received["shortage"]) == (
        "received",
        "driver",
        "0.00",
    )
    assert (stock(admin, gas, transit()), stock(admin, gas, truck)) == (0, 6)
    assert ledger_agrees() == []
    actions = AuditEntry.objects.filter(entity_type="load").values_list("action", flat=True)
    assert list(actions) == ["load.dispatch", "load.receive"]


def test_a_short_receipt_is_a_loss_with_its_reason_and_a_second_receipt_is_409(
    admin: Api, driver: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder", price="100.00")
    valve = make_item(admin, "valve", price="10.00")
    receive(admin, depot, [{"item": gas, "qty": 5}, {"item": valve, "qty": 5}])
    load = ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 5}, {"item": valve, "qty": 2}]))
    path = f"/api/v1/loads/{load['id']}/receive"

    no_reason = driver.post(path, {"lines": [{"item": gas, "qty": 4}, {"item": valve, "qty": 2}]})
    assert (no_reason.status, list(no_reason.body["fields"])) == (400, ["lines[0].reason"])
    counted = {
        "lines": [
            {"item": gas, "qty": 4, "reason": "dented, left at gate"},
            {"item": valve, "qty": 2},
        ]
    }
    received = ok(driver.post(path, counted), 200)

    assert (received["status"], received["shortage"], received["approval"]) == (
        "received_short",
        "100.00",
        "not_needed",
    )
    assert received["lines"][0]["reason"] == "dented, left at gate"
    assert (stock(admin, gas, truck), stock(admin, gas, transit())) == (4, 0)
    # The loss location is a sink (no stock row): the loss is a movement with its reason.
    loss = Movement.objects.get(reference=f"load:{load['number']}", kind="adjustment")
    assert "dented, left at gate" in loss.reason
    assert [(line.qty, str(line.item_id)) for line in loss.lines.all()] == [(1, gas)]
    before = counts()
    again = driver.post(path, counted)
    assert (again.status, again.body["code"]) == (409, "load_already_received")
    assert counts() == before
    assert ledger_agrees() == []


def test_a_costly_shortage_waits_for_a_manager(
    admin: Api, manager: Api, driver: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder", price="950.00")
    receive(admin, depot, [{"item": gas, "qty": 3}])
    load = ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 3}]))

    received = ok(
        driver.post(
            f"/api/v1/loads/{load['id']}/receive",
            {"lines": [{"item": gas, "qty": 1, "reason": "two missing"}]},
        ),
        200,
    )
    assert (received["approval"], received["shortage"]) == ("pending", "1900.00")
    refused = driver.post(f"/api/v1/loads/{load['id']}/approve")
    assert refused.status == 403
    approved = ok(manager.post(f"/api/v1/loads/{load['id']}/approve"), 200)
    assert (approved["approval"], approved["approved_by"]) == ("approved", "manager")
    twice = manager.post(f"/api/v1/loads/{load['id']}/approve")
    assert (twice.status, twice.body["code"]) == (409, "nothing_to_approve")
    waiting = ok(manager.get("/api/v1/loads?status=received_short"), 200)["results"]
    assert [row["approval"] for row in waiting] == ["approved"]


def test_serialized_units_are_counted_by_serial(
    admin: Api, driver: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder", tracking="serial", price="1.00")
    receive(admin, depot, [{"item": gas, "qty": 3, "serials": ["C1", "C2", "C3"]}])
    load = ok(
        dispatch(admin, depot, truck, [{"item": gas, "qty": 3, "serials": ["C1", "C2", "C3"]}])
    )
    path = f"/api/v1/loads/{load['id']}/receive"

    stranger = driver.post(
        path, {"lines": [{"item": gas, "qty": 1, "serials": ["C9"], "reason": "x"}]}
    )
    assert (stranger.status, list(stranger.body["fields"])) == (400, ["lines[0].serials"])
    received = ok(
        driver.post(
            path,
            {"lines": [{"item": gas, "qty": 2, "serials": ["C3", "C1"], "reason": "C2 stolen"}]},
        ),
        200,
    )

    assert received["lines"][0]["received_serials"] == ["C1", "C3"]
    assets = {row["serial"]: row["location"] for row in ok(admin.get("/api/v1/assets"), 200)}
    loss = str(Location.objects.get(kind=LocationKind.LOSS).pk)
    assert assets == {"C1": truck, "C2": loss, "C3": truck}


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),  # every line must be counted
        ([{"item": "GAS", "qty": 3}], "lines[0].qty"),  # more than left
        ([{"item": "GAS", "qty": -1}], "lines[0].qty"),
        ([{"item": "GAS", "qty": 2}, {"item": "GAS", "qty": 0}], "lines[1].item"),
        ([{"item": "OTHER", "qty": 0}], "lines[0].item"),
    ],
)
def test_a_receipt_that_does_not_match_the_load_changes_nothing(
    admin: Api, depot: str, truck: str, lines: list[dict[str, Any]], field: str
) -> None:
    gas, other = make_item(admin, "cylinder"), make_item(admin, "regulator")
    receive(admin, depot, [{"item": gas, "qty": 2}])
    load = ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 2}]))
    names = {"GAS": gas, "OTHER": other}
    body = {"lines": [{**line, "item": names[line["item"]]} for line in lines]}
    before = counts()

    refused = admin.post(f"/api/v1/loads/{load['id']}/receive", body)

    assert (refused.status, field in refused.body.get("fields", {})) == (400, True)
    assert counts() == before


def test_dispatch_refuses_what_is_not_there_and_what_is_not_ours(
    admin: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder")
    receive(admin, depot, [{"item": gas, "qty": 1}])
    before = counts()

    short = dispatch(admin, depot, truck, [{"item": gas, "qty": 2}])
    same = dispatch(admin, depot, depot, [{"item": gas, "qty": 1}])
    loss = str(Location.objects.get(kind=LocationKind.LOSS).pk)
    virtual = dispatch(admin, depot, loss, [{"item": gas, "qty": 1}])
    twice = dispatch(admin, depot, truck, [{"item": gas, "qty": 1}, {"item": gas, "qty": 1}])

    assert (short.status, short.body["code"]) == (409, "insufficient_stock")
    assert [same.status, virtual.status, twice.status] == [400, 400, 400]
    assert counts() == before


def test_staff_dispatch_from_their_own_locations_and_see_only_their_loads(
    admin: Api, driver: Api, make_api: Callable[..., Api], depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder")
    receive(admin, depot, [{"item": gas, "qty": 4}])
    other_truck = make_location(admin, "Truck 9")
    ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 1}]))
    hidden = ok(dispatch(admin, depot, other_truck, [{"item": gas, "qty": 1}]))

    assert dispatch(driver, depot, truck, [{"item": gas, "qty": 1}]).status == 404
    listed = ok(driver.get("/api/v1/loads"), 200)["results"]
    assert [row["to_location"] for row in listed] == [truck]
    assert driver.get(f"/api/v1/loads/{hidden['id']}").status == 404
    receipt = {"lines": [{"item": gas, "qty": 1}]}
    assert driver.post(f"/api/v1/loads/{hidden['id']}/receive", receipt).status == 404
    auditor = make_api("auditor")
    assert auditor.post(f"/api/v1/loads/{hidden['id']}/receive", receipt).status == 403


def test_loads_still_on_the_road_after_n_hours_are_listed(
    admin: Api, depot: str, truck: str
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from quartermaster.distribution.models import Load

    gas = make_item(admin, "cylinder")
    receive(admin, depot, [{"item": gas, "qty": 2}])
    old = ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 1}]))
    ok(dispatch(admin, depot, truck, [{"item": gas, "qty": 1}]))
    # Time passing, not a write of the application: the clock is the one thing a test may set.
    Load.objects.filter(pk=old["id"]).update(dispatched_at=timezone.now() - timedelta(hours=7))

    late = ok(admin.get("/api/v1/loads?status=in_transit&older_than_hours=6"), 200)["results"]

    assert [row["id"] for row in late] == [old["id"]]
    assert admin.get("/api/v1/loads?status=lost").status == 400


def test_a_driver_receives_offline_a_load_dispatched_offline(
    admin: Api, depot: str, truck: str
) -> None:
    gas = make_item(admin, "cylinder")
    receive(admin, depot, [{"item": gas, "qty": 3}])
    ops = [
        op(
            "load.dispatch",
            {"from_location": depot, "to_location": truck, "lines": [{"item": gas, "qty": 3}]},
            client_temp_id="load_1",
        ),
        op("load.receive", {"load": "load_1", "lines": [{"item": gas, "qty": 3}]}),
        op("load.receive", {"load": "load_1", "lines": [{"item": gas, "qty": 3}]}),
    ]

    reply = send(admin, ops)
    again = send(admin, ops)

    assert statuses(reply) == statuses(again) == [201, 200, 409]
    assert reply.body["results"][2]["body"]["code"] == "load_already_received"
    assert stock(admin, gas, truck) == 3
    assert ledger_agrees() == []
