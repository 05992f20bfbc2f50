"""Locations, stock, receipts, distributions, adjustments and the stock rebuild, through HTTP."""

from __future__ import annotations

import uuid

import pytest

from quartermaster.cli import main as cli_main
from tests.conftest import Api
from tests.ledger_helpers import (
    counts,
    distribute,
    ledger_agrees,
    make_item,
    make_location,
    ok,
    receive,
    stock,
    stock_rows,
)

pytestmark = pytest.mark.django_db


def test_locations_are_created_and_listed(manager: Api) -> None:
    truck = ok(manager.post("/api/v1/locations", {"name": "Truck 7", "kind": "vehicle"}))

    listed = ok(manager.get("/api/v1/locations?kind=vehicle"), 200)

    assert truck["kind"] == "vehicle" and truck["name"] == "Truck 7"
    assert [loc["id"] for loc in listed["results"]] == [truck["id"]]
    kinds = {loc["kind"] for loc in ok(manager.get("/api/v1/locations"), 200)["results"]}
    assert {"depot", "vehicle", "supplier", "consumed", "loss"} <= kinds


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "kind": "depot"}, "name"),
        ({"name": "X", "kind": "garage"}, "kind"),
        ({"name": "X", "kind": "supplier"}, "kind"),
        ({"name": "X", "kind": "customer_site"}, "kind"),
        ({"name": "Main depot", "kind": "depot"}, "name"),
        ({"name": "X"}, "kind"),
    ],
)
def test_bad_locations_are_400(manager: Api, payload: dict, field: str) -> None:
    reply = manager.post("/api/v1/locations", payload)

    assert reply.status == 400
    assert field in reply.body["fields"]


def test_only_managers_create_locations(staff: Api, auditor: Api) -> None:
    assert staff.post("/api/v1/locations", {"name": "T", "kind": "vehicle"}).status == 403
    assert auditor.post("/api/v1/locations", {"name": "T", "kind": "vehicle"}).status == 403


def test_staff_see_only_their_locations_and_their_stock(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 5)
    receive(manager, truck, [{"item": gas, "qty": 3}])

    seen = [loc["id"] for loc in ok(staff.get("/api/v1/locations"), 200)["results"]]
    staff_stock = ok(staff.get(f"/api/v1/stock?item={gas}"), 200)
    manager_stock = ok(manager.get(f"/api/v1/stock?item={gas}"), 200)

    assert seen == [default_location_id]
    assert staff_stock == [{"item": gas, "location": default_location_id, "qty": 5}]
    assert sorted(r["qty"] for r in manager_stock) == [3, 5]
    assert ok(staff.get(f"/api/v1/stock?location={truck}"), 200) == []


def test_receipt_brings_stock_from_the_supplier(manager: Api) -> None:
    depot = make_location(manager, "North depot", "depot")
    gas = make_item(manager, "gas")

    movement = receive(manager, depot, [{"item": gas, "qty": 12}])

    assert movement["kind"] == "receipt"
    assert movement["lines"][0]["qty"] == 12
    assert stock(manager, gas, depot) == 12
    assert ledger_agrees() == []


def test_item_create_and_patch_write_movements_so_rebuild_agrees(
    admin: Api, default_location_id: str
) -> None:
    apple = make_item(admin, "apple", 5)
    admin.patch(f"/api/v1/items/{apple}/qty", {"delta": -2})
    admin.patch(f"/api/v1/items/{apple}/qty", {"delta": 4})

    kinds = [
        e["after"]["kind"]
        for e in ok(admin.get("/api/v1/audit?entity_type=movement"), 200)["results"]
    ]

    assert kinds == ["receipt", "adjustment", "adjustment"]
    assert stock(admin, apple, default_location_id) == 7
    assert ledger_agrees() == []


def test_distribution_moves_between_own_locations(manager: Api, default_location_id: str) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 10)
    hose = make_item(manager, "hose", 4)

    reply = distribute(
        manager,
        default_location_id,
        truck,
        [{"item": gas, "qty": 6}, {"item": hose, "qty": 4}],
    )

    assert reply.status == 201
    assert {"id", "lines"} <= set(reply.body)
    assert stock(manager, gas, default_location_id) == 4
    assert stock(manager, gas, truck) == 6
    assert stock(manager, hose, default_location_id) == 0
    assert stock(manager, hose, truck) == 4
    assert ledger_agrees() == []


def test_insufficient_stock_on_any_line_is_409_naming_the_line_and_nothing_moves(
    manager: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 10)
    hose = make_item(manager, "hose", 1)
    before, rows = counts(), stock_rows()

    reply = distribute(
        manager,
        default_location_id,
        truck,
        [{"item": gas, "qty": 6}, {"item": hose, "qty": 1}, {"item": hose, "qty": 1}],
    )

    assert reply.status == 409
    assert reply.body["code"] == "insufficient_stock"
    assert list(reply.body["fields"]) == ["lines[2]"]
    assert counts() == before
    assert {k: v for k, v in stock_rows().items() if v} == {k: v for k, v in rows.items() if v}


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ([], "lines"),
        ([{"item": "ITEM", "qty": 0}], "lines[0].qty"),
        ([{"item": "ITEM", "qty": -1}], "lines[0].qty"),
        ([{"item": "ITEM", "qty": True}], "lines.0.qty"),
        ([{"item": "ITEM", "qty": 1.0}], "lines.0.qty"),
        ([{"item": str(uuid.uuid4()), "qty": 1}], "lines[0].item"),
        ([{"item": "ITEM", "qty": 1, "serials": ["A1"]}], "lines[0].serials"),
    ],
)
def test_bad_distribution_lines_are_400(
    manager: Api, default_location_id: str, lines: list, field: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 10)
    lines = [{**line, "item": gas if line["item"] == "ITEM" else line["item"]} for line in lines]

    reply = distribute(manager, default_location_id, truck, lines)

    assert reply.status == 400, reply.body
    assert field in reply.body["fields"]


def test_distribution_to_the_same_or_a_virtual_location_is_400(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 10)
    loss = next(loc["id"] for loc in ok(manager.get("/api/v1/locations?kind=loss"), 200)["results"])

    same = distribute(manager, default_location_id, default_location_id, [{"item": gas, "qty": 1}])
    virtual = distribute(manager, default_location_id, loss, [{"item": gas, "qty": 1}])

    assert same.status == 400
    assert virtual.status == 400 and "to_location" in virtual.body["fields"]


def test_staff_cannot_move_stock_from_a_location_not_theirs(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 10)
    receive(manager, truck, [{"item": gas, "qty": 2}])

    reply = distribute(staff, truck, default_location_id, [{"item": gas, "qty": 1}])

    assert reply.status == 404
    assert stock(manager, gas, truck) == 2


def test_adjustments_need_a_reason_and_a_manager(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 10)
    body = {"location": default_location_id, "lines": [{"item": gas, "delta": -3}]}

    no_reason = manager.post("/api/v1/adjustments", {**body, "reason": "  "})
    by_staff = staff.post("/api/v1/adjustments", {**body, "reason": "leak"})
    loss = manager.post("/api/v1/adjustments", {**body, "reason": "leak"})
    found = manager.post(
        "/api/v1/adjustments",
        {"location": default_location_id, "lines": [{"item": gas, "delta": 1}], "reason": "count"},
    )
    too_much = manager.post(
        "/api/v1/adjustments",
        {"location": default_location_id, "lines": [{"item": gas, "delta": -9}], "reason": "x"},
    )

    assert no_reason.status == 400 and "reason" in no_reason.body["fields"]
    assert by_staff.status == 403
    assert (loss.status, loss.body["kind"], loss.body["reason"]) == (201, "adjustment", "leak")
    assert found.status == 201
    assert too_much.status == 409 and too_much.body["code"] == "insufficient_stock"
    assert stock(manager, gas, default_location_id) == 8
    assert ledger_agrees() == []


def test_movements_are_readable_and_scoped(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 1)
    elsewhere = receive(manager, truck, [{"item": gas, "qty": 1}])

    assert ok(manager.get(f"/api/v1/movements/{elsewhere['id']}"), 200) == elsewhere
    assert staff.get(f"/api/v1/movements/{elsewhere['id']}").status == 404


def test_stock_rebuild_check_reports_a_tampered_row(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from quartermaster.inventory.models import Stock

    gas = make_item(manager, "gas", 4)
    assert cli_main(["stock", "rebuild", "--check"]) == 0
    Stock.objects.filter(item_id=gas).update(qty=5)  # tampering behind the ledger's back

    assert cli_main(["stock", "rebuild", "--check"]) == 1
    assert "ledger 4, stock 5" in capsys.readouterr().out
    assert cli_main(["stock", "rebuild"]) == 0
    assert cli_main(["stock", "rebuild", "--check"]) == 0
    assert stock(manager, gas, default_location_id) == 4
