"""Acceptance: a gas-cylinder driver's day through the API, every figure checked.

Yesterday two customers each took a full cylinder from the depot. This morning the driver loads
the truck, sells at both customers while collecting their empties, takes payments, then brings
everything left back to the depot.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from quartermaster.cli import main as cli_main
from tests.conftest import Api
from tests.ledger_helpers import ledger_agrees, make_customer, make_item, make_location, ok, stock

pytestmark = pytest.mark.django_db


def test_a_drivers_day(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    depot = default_location_id
    truck = make_location(manager, "Truck 07")
    driver = make_api("staff", "driver07", locations=(depot, truck))
    cylinder = make_item(
        manager,
        "LPG 14.2 kg",
        price="905.00",
        tax_rate_bp=500,
        tracking="serial",
        deposit="1500.00",
    )
    regulator = make_item(manager, "Regulator", price="350.00", tax_rate_bp=1800)
    serials = [f"C00{n}" for n in range(1, 7)]
    ok(
        manager.post(
            "/api/v1/receipts",
            {
                "to_location": depot,
                "supplier": "Bharat Gas bottling plant",
                "lines": [
                    {"item": cylinder, "qty": 6, "serials": serials},
                    {"item": regulator, "qty": 10},
                ],
            },
        )
    )
    lakshmi, bismi = make_customer(manager, "Lakshmi Stores"), make_customer(manager, "Bismi Hotel")

    # Yesterday, at the depot counter: one full cylinder each.
    for customer, serial in ((lakshmi, "C005"), (bismi, "C006")):
        sale = ok(
            manager.post(
                "/api/v1/transactions",
                {
                    "customer": customer["id"],
                    "location": depot,
                    "lines": [{"item": cylinder, "qty": 1, "serials": [serial]}],
                    "confirm": True,
                },
            )
        )
        assert sale["invoice"]["total"] == "2450.25"  # 905.00 + 5 % 45.25 + deposit 1500.00

    # Morning: load the truck.
    ok(
        driver.post(
            "/api/v1/distributions",
            {
                "from_location": depot,
                "to_location": truck,
                "lines": [
                    {"item": cylinder, "qty": 4, "serials": ["C001", "C002", "C003", "C004"]},
                    {"item": regulator, "qty": 5},
                ],
            },
        )
    )
    assert (stock(driver, cylinder, truck), stock(driver, regulator, truck)) == (4, 5)

    # Lakshmi Stores: a full cylinder and a regulator; her empty C005 comes back; she pays cash.
    sale_a = ok(
        driver.post(
            "/api/v1/transactions",
            {
                "customer": lakshmi["id"],
                "location": truck,
                "lines": [
                    {"item": cylinder, "qty": 1, "serials": ["C001"]},
                    {"item": regulator, "qty": 1},
                ],
                "confirm": True,
                "client_temp_id": "temp_1",
            },
        )
    )
    invoice_a = sale_a["invoice"]
    assert [
        (line["kind"], line["net"], line["tax"], line["total"]) for line in invoice_a["lines"]
    ] == [
        ("goods", "905.00", "45.25", "950.25"),
        ("goods", "350.00", "63.00", "413.00"),
        ("deposit", "1500.00", "0.00", "1500.00"),
    ]
    assert (invoice_a["subtotal"], invoice_a["tax"], invoice_a["deposit"], invoice_a["total"]) == (
        "1255.00",
        "108.25",
        "1500.00",
        "2863.25",
    )
    returned_a = ok(
        driver.post(
            "/api/v1/returns",
            {
                "customer": lakshmi["id"],
                "to_location": truck,
                "lines": [{"item": cylinder, "serials": ["C005"]}],
            },
        )
    )
    assert returned_a["refund"] == "1500.00"
    ok(
        driver.post(
            "/api/v1/payments", {"customer": lakshmi["id"], "amount": "3813.50", "method": "cash"}
        )
    )

    # Bismi Hotel: a draft confirmed on the spot; a mistaken empty (C001 is Lakshmi's) is refused.
    draft_b = ok(
        driver.post(
            "/api/v1/transactions",
            {
                "customer": bismi["id"],
                "location": truck,
                "lines": [{"item": cylinder, "qty": 1, "serials": ["C002"]}],
                "confirm": False,
            },
        )
    )
    sale_b = ok(driver.post(f"/api/v1/transactions/{draft_b['id']}/confirm"), 200)
    assert sale_b["invoice"]["total"] == "2450.25"
    wrong_empty = driver.post(
        "/api/v1/returns",
        {
            "customer": bismi["id"],
            "to_location": truck,
            "lines": [{"item": cylinder, "serials": ["C001"]}],
        },
    )
    assert wrong_empty.status == 409
    resell_empty = driver.post(
        "/api/v1/transactions",
        {
            "customer": bismi["id"],
            "location": truck,
            "lines": [{"item": cylinder, "qty": 1, "serials": ["C005"]}],
            "confirm": True,
        },
    )
    assert resell_empty.status == 409
    ok(
        driver.post(
            "/api/v1/returns",
            {
                "customer": bismi["id"],
                "to_location": truck,
                "lines": [{"item": cylinder, "serials": ["C006"]}],
            },
        )
    )
    ok(
        driver.post(
            "/api/v1/payments", {"customer": bismi["id"], "amount": "2000.00", "method": "upi"}
        )
    )

    # Evening: everything left on the truck goes back to the depot.
    ok(
        driver.post(
            "/api/v1/distributions",
            {
                "from_location": truck,
                "to_location": depot,
                "lines": [
                    {"item": cylinder, "qty": 4, "serials": ["C003", "C004", "C005", "C006"]},
                    {"item": regulator, "qty": 4},
                ],
            },
        )
    )

    # Stock.
    assert (stock(manager, cylinder, depot), stock(manager, regulator, depot)) == (4, 9)
    assert (stock(manager, cylinder, truck), stock(manager, regulator, truck)) == (0, 0)
    assert (
        stock(manager, cylinder, lakshmi["site"]),
        stock(manager, regulator, lakshmi["site"]),
    ) == (1, 1)
    assert stock(manager, cylinder, bismi["site"]) == 1
    # Assets: where each cylinder is, full or empty, with whom, and the deposit held.
    assets = {a["serial"]: a for a in ok(manager.get(f"/api/v1/assets?item={cylinder}"), 200)}
    assert {
        s: (a["location"], a["state"], a["customer"], a["deposit_held"]) for s, a in assets.items()
    } == {
        "C001": (lakshmi["site"], "full", lakshmi["id"], "1500.00"),
        "C002": (bismi["site"], "full", bismi["id"], "1500.00"),
        "C003": (depot, "full", None, "0.00"),
        "C004": (depot, "full", None, "0.00"),
        "C005": (depot, "empty", None, "0.00"),
        "C006": (depot, "empty", None, "0.00"),
    }
    # Money.
    statement_a = ok(manager.get(f"/api/v1/customers/{lakshmi['id']}/statement"), 200)
    assert [(e["type"], e["debit"], e["credit"], e["balance"]) for e in statement_a["entries"]] == [
        ("invoice", "2450.25", "0.00", "2450.25"),
        ("invoice", "2863.25", "0.00", "5313.50"),
        ("credit_note", "0.00", "1500.00", "3813.50"),
        ("payment", "0.00", "3813.50", "0.00"),
    ]
    statement_b = ok(manager.get(f"/api/v1/customers/{bismi['id']}/statement"), 200)
    assert [(e["type"], e["balance"]) for e in statement_b["entries"]] == [
        ("invoice", "2450.25"),
        ("invoice", "4900.50"),
        ("credit_note", "3400.50"),
        ("payment", "1400.50"),
    ]
    assert statement_b["balance"] == "1400.50"
    # Deposits held on cylinders = deposits invoiced (4 x 1500.00) - deposits refunded (2 x 1500.00).
    held = sum(Decimal(a["deposit_held"]) for a in assets.values())
    assert held == Decimal("6000.00") - Decimal("3000.00")
    assert sale_a["client_temp_id"] == "temp_1"
    # The ledger, the projection and the audit chain all agree.
    assert ledger_agrees() == []
    assert cli_main(["stock", "rebuild", "--check"]) == 0
    assert ok(manager.get("/api/v1/audit/verify"), 200) == {
        "ok": True,
        "entries": ok(manager.get("/api/v1/audit?limit=500"), 200)["results"][-1]["seq"],
        "first_bad_seq": None,
    }
