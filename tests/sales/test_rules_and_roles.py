"""Roles, scoping and the smaller rules of the stock and sales endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Api
from tests.ledger_helpers import (
    counts,
    make_customer,
    make_item,
    make_location,
    ok,
    receive,
    sell,
    stock,
    stock_rows,
)

pytestmark = pytest.mark.django_db


def test_auditors_read_but_never_write(
    manager: Api, auditor: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)
    sale = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))
    before = counts()

    writes = [
        auditor.post(
            "/api/v1/receipts",
            {"to_location": default_location_id, "lines": [{"item": gas, "qty": 1}]},
        ),
        auditor.post("/api/v1/customers", {"name": "X"}),
        sell(auditor, customer["id"], default_location_id, [{"item": gas, "qty": 1}]),
        auditor.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "x"}),
        auditor.post(
            "/api/v1/payments", {"customer": customer["id"], "amount": "1.00", "method": "cash"}
        ),
        auditor.post("/api/v1/locations", {"name": "T", "kind": "vehicle"}),
    ]

    assert [w.status for w in writes] == [403] * 6
    assert counts() == before
    assert (
        ok(auditor.get(f"/api/v1/invoices/{sale['invoice']['id']}"), 200)["total"]
        == sale["invoice"]["total"]
    )
    assert ok(auditor.get(f"/api/v1/stock?item={gas}"), 200)
    assert (
        ok(auditor.get(f"/api/v1/customers/{customer['id']}/statement"), 200)["balance"] == "0.00"
    )


def test_a_party_user_cannot_see_a_statement_that_is_not_theirs(
    manager: Api, make_api: Callable[..., Api]
) -> None:
    customer = make_customer(manager)
    party = make_api("party", "lakshmi")

    reply = party.get(f"/api/v1/customers/{customer['id']}/statement")

    assert reply.status == 404
    assert "customer" not in reply.body


def test_unknown_records_are_404(manager: Api) -> None:
    missing = uuid.uuid4()

    assert manager.get(f"/api/v1/invoices/{missing}").status == 404
    assert manager.get(f"/api/v1/transactions/{missing}").status == 404
    assert manager.post(f"/api/v1/transactions/{missing}/confirm").status == 404
    assert manager.post(f"/api/v1/transactions/{missing}/void", {"reason": "x"}).status == 404
    assert manager.get(f"/api/v1/customers/{missing}").status == 404
    assert manager.get(f"/api/v1/customers/{missing}/statement").status == 404
    assert manager.get(f"/api/v1/movements/{missing}").status == 404
    reply = manager.post(
        "/api/v1/receipts",
        {"to_location": str(missing), "lines": [{"item": str(missing), "qty": 1}]},
    )
    assert reply.status == 404
    assert reply.body == {"error": "not_found", "code": "not_found"}


def test_stock_cannot_be_received_at_a_customer_site(manager: Api) -> None:
    gas = make_item(manager, "gas")
    customer = make_customer(manager)

    reply = manager.post(
        "/api/v1/receipts", {"to_location": customer["site"], "lines": [{"item": gas, "qty": 1}]}
    )

    assert reply.status == 400
    assert "to_location" in reply.body["fields"]


def test_staff_receive_and_sell_at_their_own_location(manager: Api, make_api: Any) -> None:
    shop = ok(
        manager.post("/api/v1/locations", {"name": "shop", "kind": "store", "receives": True})
    )
    staff = make_api("staff", "shopkeeper", locations=(shop["id"],))
    gas = make_item(manager, "gas", price="3.00")
    customer = make_customer(staff)

    receive(staff, shop["id"], [{"item": gas, "qty": 4}])
    sale = ok(sell(staff, customer["id"], shop["id"], [{"item": gas, "qty": 3}]))

    assert sale["invoice"]["total"] == "9.00"
    assert ok(staff.get(f"/api/v1/invoices/{sale['invoice']['id']}"), 200)["number"] == "INV-000001"
    assert stock(staff, gas, shop["id"]) == 1


def test_payment_for_an_unknown_customer_is_400(manager: Api) -> None:
    reply = manager.post(
        "/api/v1/payments", {"customer": str(uuid.uuid4()), "amount": "1.00", "method": "cash"}
    )

    assert reply.status == 400
    assert "customer" in reply.body["fields"]


def test_a_sale_whose_cylinder_came_back_cannot_be_voided(
    manager: Api, default_location_id: str
) -> None:
    cylinder = make_item(manager, "cyl", tracking="serial", price="900.00", deposit="100.00")
    receive(manager, default_location_id, [{"item": cylinder, "qty": 1, "serials": ["C1"]}])
    customer = make_customer(manager)
    sale = ok(
        sell(
            manager,
            customer["id"],
            default_location_id,
            [{"item": cylinder, "qty": 1, "serials": ["C1"]}],
        )
    )
    ok(
        manager.post(
            "/api/v1/returns",
            {
                "customer": customer["id"],
                "to_location": default_location_id,
                "lines": [{"item": cylinder, "serials": ["C1"]}],
            },
        )
    )
    before, rows = counts(), stock_rows()

    reply = manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "too late"})

    assert reply.status == 409
    assert counts() == before
    assert stock_rows() == rows
    assert ok(manager.get(f"/api/v1/transactions/{sale['id']}"), 200)["status"] == "confirmed"


def test_draft_with_stock_elsewhere_confirms_only_from_its_own_location(
    manager: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas")
    receive(manager, truck, [{"item": gas, "qty": 5}])
    customer = make_customer(manager)

    reply = sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}])

    assert reply.status == 409
    assert reply.body["code"] == "insufficient_stock"
    assert stock(manager, gas, truck) == 5


def test_a_sale_of_an_item_deleted_since_can_still_be_voided(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 2, price="5.00")
    customer = make_customer(manager)
    sale = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 2}]))
    assert manager.delete(f"/api/v1/items/{gas}").status == 204  # none left in our hands

    voided = ok(manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "x"}), 200)
    again = sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}])

    assert voided["credit_note"]["total"] == "10.00"
    assert again.status == 400
