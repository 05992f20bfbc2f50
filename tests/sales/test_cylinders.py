"""Serialized assets (cylinders): moved by serial, sold full, returned empty, deposits."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.ledger_helpers import (
    counts,
    distribute,
    ledger_agrees,
    make_customer,
    make_item,
    make_location,
    ok,
    receive,
    sell,
    stock,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def cylinder(manager: Api) -> str:
    return make_item(
        manager,
        "LPG 14.2 kg",
        price="905.00",
        tracking="serial",
        deposit="1500.00",
        tax_rate_bp=500,
    )


def assets(api: Api, **query: str) -> dict[str, dict]:
    params = "&".join(f"{k}={v}" for k, v in query.items())
    return {a["serial"]: a for a in ok(api.get(f"/api/v1/assets?{params}"), 200)}


def test_receipt_creates_assets_full_at_the_location(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])

    found = assets(manager, item=cylinder)

    assert {s: (a["location"], a["state"], a["customer"]) for s, a in found.items()} == {
        "C1": (default_location_id, "full", None),
        "C2": (default_location_id, "full", None),
    }
    assert stock(manager, cylinder, default_location_id) == 2


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"qty": 2}, "lines[0].serials"),
        ({"qty": 2, "serials": ["C9"]}, "lines[0].serials"),
        ({"qty": 2, "serials": ["C9", "C9"]}, "lines[0].serials"),
        ({"qty": 1, "serials": [" "]}, "lines[0].serials"),
    ],
)
def test_serial_items_move_by_serial(
    manager: Api, cylinder: str, default_location_id: str, line: dict, field: str
) -> None:
    reply = manager.post(
        "/api/v1/receipts",
        {"to_location": default_location_id, "lines": [{"item": cylinder, **line}]},
    )

    assert reply.status == 400
    assert field in reply.body["fields"]


def test_a_serial_cannot_be_in_two_places(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    receive(manager, default_location_id, [{"item": cylinder, "qty": 1, "serials": ["C1"]}])
    before = counts()

    again = manager.post(
        "/api/v1/receipts",
        {"to_location": truck, "lines": [{"item": cylinder, "qty": 1, "serials": ["C1"]}]},
    )
    not_there = distribute(
        manager, truck, default_location_id, [{"item": cylinder, "qty": 1, "serials": ["C1"]}]
    )
    twice_in_one = manager.post(
        "/api/v1/distributions",
        {
            "from_location": default_location_id,
            "to_location": truck,
            "lines": [
                {"item": cylinder, "qty": 1, "serials": ["C1"]},
                {"item": cylinder, "qty": 1, "serials": ["C1"]},
            ],
        },
    )

    assert again.status == 409
    assert not_there.status == 409
    assert twice_in_one.status == 400
    assert counts() == before
    assert assets(manager, item=cylinder)["C1"]["location"] == default_location_id


def test_sale_issues_full_cylinders_to_the_customer_with_a_deposit(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])
    customer = make_customer(manager)

    sale = ok(
        sell(
            manager,
            customer["id"],
            default_location_id,
            [{"item": cylinder, "qty": 1, "serials": ["C1"]}],
        )
    )

    invoice = sale["invoice"]
    assert [(line["kind"], line["total"]) for line in invoice["lines"]] == [
        ("goods", "950.25"),
        ("deposit", "1500.00"),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["deposit"], invoice["total"]) == (
        "905.00",
        "45.25",
        "1500.00",
        "2450.25",
    )
    c1 = assets(manager, serial="C1")["C1"]
    assert (c1["location"], c1["state"], c1["customer"], c1["deposit_held"]) == (
        customer["site"],
        "full",
        customer["id"],
        "1500.00",
    )
    assert stock(manager, cylinder, customer["site"]) == 1


def test_a_serial_cannot_be_sold_twice(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 1, "serials": ["C1"]}])
    first, second = make_customer(manager, "A"), make_customer(manager, "B")
    line = [{"item": cylinder, "qty": 1, "serials": ["C1"]}]
    ok(sell(manager, first["id"], default_location_id, line))
    before = counts()

    again = sell(manager, second["id"], default_location_id, line)

    assert again.status == 409
    assert counts() == before


def test_returns_bring_empties_back_and_refund_the_deposit(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])
    customer = make_customer(manager)
    ok(
        sell(
            manager,
            customer["id"],
            default_location_id,
            [{"item": cylinder, "qty": 1, "serials": ["C1"]}],
        )
    )

    returned = ok(
        manager.post(
            "/api/v1/returns",
            {
                "customer": customer["id"],
                "to_location": default_location_id,
                "lines": [{"item": cylinder, "serials": ["C1"]}],
            },
        )
    )

    assert returned["kind"] == "return"
    assert returned["refund"] == "1500.00"
    assert returned["credit_note"]["kind"] == "deposit_refund"
    assert returned["credit_note"]["total"] == "1500.00"
    c1 = assets(manager, serial="C1")["C1"]
    assert (c1["location"], c1["state"], c1["customer"], c1["deposit_held"]) == (
        default_location_id,
        "empty",
        None,
        "0.00",
    )
    balance = ok(manager.get(f"/api/v1/customers/{customer['id']}/statement"), 200)["balance"]
    assert balance == "950.25"
    assert ledger_agrees() == []


def test_a_customer_cannot_return_a_cylinder_they_do_not_hold(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])
    holder, other = make_customer(manager, "A"), make_customer(manager, "B")
    ok(
        sell(
            manager,
            holder["id"],
            default_location_id,
            [{"item": cylinder, "qty": 1, "serials": ["C1"]}],
        )
    )
    before = counts()

    by_other = manager.post(
        "/api/v1/returns",
        {
            "customer": other["id"],
            "to_location": default_location_id,
            "lines": [{"item": cylinder, "serials": ["C1"]}],
        },
    )
    never_issued = manager.post(
        "/api/v1/returns",
        {
            "customer": holder["id"],
            "to_location": default_location_id,
            "lines": [{"item": cylinder, "serials": ["C2"]}],
        },
    )

    assert by_other.status == 409
    assert never_issued.status == 409
    assert counts() == before


def test_an_empty_cylinder_cannot_be_sold(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
    receive(manager, default_location_id, [{"item": cylinder, "qty": 1, "serials": ["C1"]}])
    first, second = make_customer(manager, "A"), make_customer(manager, "B")
    line = [{"item": cylinder, "qty": 1, "serials": ["C1"]}]
    ok(sell(manager, first["id"], default_location_id, line))
    ok(
        manager.post(
            "/api/v1/returns",
            {
                "customer": first["id"],
                "to_location": default_location_id,
                "lines": [{"item": cylinder, "serials": ["C1"]}],
            },
        )
    )

    reply = sell(manager, second["id"], default_location_id, line)

    assert reply.status == 409
    assert "empty" in reply.body["error"]


def test_void_brings_the_cylinder_back_full_and_credits_the_deposit(
    manager: Api, cylinder: str, default_location_id: str
) -> None:
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

    voided = ok(manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "x"}), 200)

    assert voided["credit_note"]["total"] == "2450.25"
    c1 = assets(manager, serial="C1")["C1"]
    assert (c1["location"], c1["state"], c1["customer"], c1["deposit_held"]) == (
        default_location_id,
        "full",
        None,
        "0.00",
    )
    statement = ok(manager.get(f"/api/v1/customers/{customer['id']}/statement"), 200)
    assert statement["balance"] == "0.00"
