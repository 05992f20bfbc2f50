"""Issue 10 item 6: what staff may do within an action, and what needs a manager.

Price changes are a manager's; a sale's unit price further from the list price than
QM_MAX_STAFF_DISCOUNT_BP needs a manager; receiving from a supplier is a manager's unless the
location is configured to receive. Each refusal is 403 `needs_manager`, naming the field, and
changes nothing (REST and sync alike).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, audit_count
from tests.ledger_helpers import counts, make_customer, make_item, ok, receive, sell, stock
from tests.sync.helpers import op, send

pytestmark = pytest.mark.django_db


def test_staff_may_not_change_a_price(manager: Api, staff: Api) -> None:
    gas = make_item(manager, "gas", 5, price="10.00")
    before = audit_count()

    refused = staff.patch(f"/api/v1/items/{gas}", {"price": "0.01"})

    assert (refused.status, refused.body["code"]) == (403, "needs_manager")
    assert refused.body["fields"] == {"price": "a price change needs a manager"}
    assert audit_count() == before
    assert ok(staff.get(f"/api/v1/items/{gas}"), 200)["price"] == "10.00"
    # Other fields, and the price as it stands, are still theirs to send.
    assert ok(staff.patch(f"/api/v1/items/{gas}", {"unit": "cyl", "price": "10.00"}), 200)
    assert ok(manager.patch(f"/api/v1/items/{gas}", {"price": "12.00"}), 200)["price"] == "12.00"


def test_staff_sell_within_the_discount_and_no_further(
    manager: Api, staff: Api, default_location_id: str, settings: Any
) -> None:
    settings.MAX_STAFF_DISCOUNT_BP = 1000  # 10 %
    gas = make_item(manager, "gas", 5, price="10.00")
    customer = make_customer(manager)["id"]
    before = counts()

    free = sell(
        staff, customer, default_location_id, [{"item": gas, "qty": 1, "unit_price": "0.00"}]
    )
    dear = sell(
        staff, customer, default_location_id, [{"item": gas, "qty": 1, "unit_price": "11.01"}]
    )

    assert (free.status, free.body["code"]) == (403, "needs_manager")
    assert list(free.body["fields"]) == ["lines[0].unit_price"]
    assert (dear.status, dear.body["code"]) == (403, "needs_manager")
    assert counts() == before
    assert stock(manager, gas, default_location_id) == 5
    # 10 % off is within; the list price is too; a manager may give it away.
    assert ok(
        sell(staff, customer, default_location_id, [{"item": gas, "qty": 1, "unit_price": "9.00"}])
    )
    assert ok(sell(staff, customer, default_location_id, [{"item": gas, "qty": 1}]))
    assert ok(
        sell(
            manager, customer, default_location_id, [{"item": gas, "qty": 1, "unit_price": "0.00"}]
        )
    )


def test_no_discount_at_all_when_configured_so(
    manager: Api, staff: Api, default_location_id: str, settings: Any
) -> None:
    settings.MAX_STAFF_DISCOUNT_BP = 0
    gas = make_item(manager, "gas", 5, price="10.00")
    customer = make_customer(manager)["id"]

    reply = sell(
        staff, customer, default_location_id, [{"item": gas, "qty": 1, "unit_price": "9.99"}]
    )

    assert (reply.status, reply.body["code"]) == (403, "needs_manager")


def test_a_synced_sale_below_the_discount_is_refused_for_good(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5, price="10.00")
    customer = make_customer(manager)["id"]
    payload = {
        "customer": customer,
        "location": default_location_id,
        "lines": [{"item": gas, "qty": 1, "unit_price": "0.00"}],
        "confirm": True,
    }

    reply = send(staff, [op("sale.record", payload)])

    result = reply.body["results"][0]
    assert (result["status"], result["body"]["code"]) == (403, "needs_manager")
    assert stock(manager, gas, default_location_id) == 5


def test_staff_receive_from_suppliers_only_where_the_location_receives(
    manager: Api, staff: Api, make_api: Any, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", price="10.00")
    before = counts()

    refused = staff.post(
        "/api/v1/receipts", {"to_location": default_location_id, "lines": [{"item": gas, "qty": 3}]}
    )

    assert (refused.status, refused.body["code"]) == (403, "needs_manager")
    assert list(refused.body["fields"]) == ["to_location"]
    assert counts() == before
    # A manager receives anywhere; staff at a receiving location receive there.
    receive(manager, default_location_id, [{"item": gas, "qty": 3}])
    dock = ok(
        manager.post("/api/v1/locations", {"name": "dock", "kind": "depot", "receives": True})
    )
    assert dock["receives"] is True
    clerk = make_api("staff", "dock-clerk", locations=(dock["id"],))
    receive(clerk, dock["id"], [{"item": gas, "qty": 2}])
    assert stock(manager, gas, dock["id"]) == 2
