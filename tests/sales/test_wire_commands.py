"""Batch sync validates op payloads straight into the commands (strict, from JSON): the wire
field names of API.md must be the commands' field names or aliases."""

from __future__ import annotations

import json
import uuid

import pytest

import quartermaster.inventory.services
import quartermaster.sales.services  # noqa: F401  (fills Command.registry, as sync's apps.py does)
from quartermaster.core.commands import Command
from tests.conftest import Api
from tests.ledger_helpers import make_item, make_location, ok, stock
from tests.sync.helpers import op, send, statuses

A, B = str(uuid.uuid4()), str(uuid.uuid4())


@pytest.mark.parametrize(
    ("op_type", "payload"),
    [
        ("location.create", {"name": "Truck 7", "kind": "vehicle"}),
        ("customer.create", {"name": "Lakshmi Stores", "phone": "98450"}),
        ("stock.receive", {"to_location": A, "lines": [{"item": B, "qty": 2}], "supplier": "x"}),
        (
            "stock.move",
            {
                "from_location": A,
                "to_location": B,
                "lines": [{"item": A, "qty": 1, "serials": ["C1"]}],
            },
        ),
        ("stock.adjust", {"location": A, "lines": [{"item": B, "delta": -1}], "reason": "leak"}),
        (
            "sale.record",
            {
                "customer": A,
                "location": B,
                "lines": [{"item": A, "qty": 1, "unit_price": "9.50"}],
                "confirm": True,
            },
        ),
        ("sale.confirm", {"transaction": A}),
        ("sale.void", {"transaction": A, "reason": "wrong customer"}),
        (
            "asset.return",
            {"customer": A, "to_location": B, "lines": [{"item": A, "serials": ["C1"]}]},
        ),
        ("payment.record", {"customer": A, "amount": "100.00", "method": "cash"}),
    ],
)
def test_wire_payloads_validate_into_commands(op_type: str, payload: dict) -> None:
    command = Command.registry[op_type].model_validate_json(json.dumps(payload), strict=True)

    assert command.name == op_type


def test_the_stock_rebuild_is_not_a_device_op() -> None:
    assert getattr(Command.registry["stock.rebuild"], "syncable", True) is False


@pytest.mark.django_db
def test_a_drivers_offline_queue_syncs_in_one_batch(manager: Api, default_location_id: str) -> None:
    """API.md's example: a customer created offline (temp id) and a confirmed sale to it."""
    gas = make_item(manager, "gas", 5, price="905.00")
    truck = make_location(manager, "Truck 07")
    ops = [
        op(
            "stock.move",
            {
                "from_location": default_location_id,
                "to_location": truck,
                "lines": [{"item": gas, "qty": 3}],
            },
        ),
        op("customer.create", {"name": "Lakshmi Stores"}, client_temp_id="temp_12"),
        op(
            "sale.record",
            {
                "customer": "temp_12",
                "location": truck,
                "lines": [{"item": gas, "qty": 2}],
                "confirm": True,
            },
            client_temp_id="temp_13",
        ),
        op("payment.record", {"customer": "temp_12", "amount": "1810.00", "method": "cash"}),
        op(
            "sale.record",
            {
                "customer": "temp_12",
                "location": truck,
                "lines": [{"item": gas, "qty": 2}],
                "confirm": True,
            },
        ),
    ]

    reply = send(manager, ops)
    replay = send(manager, ops)

    assert statuses(reply) == [201, 201, 201, 201, 409]
    customer = reply.body["results"][1]["id_map"]["temp_12"]
    sale = reply.body["results"][2]["body"]
    assert (sale["customer"], sale["status"], sale["invoice"]["total"]) == (
        customer,
        "confirmed",
        "1810.00",
    )
    assert reply.body["results"][4]["body"]["code"] == "insufficient_stock"
    assert statuses(replay) == [201, 201, 201, 201, 409]
    assert stock(manager, gas, truck) == 1
    statement = ok(manager.get(f"/api/v1/customers/{customer}/statement"), 200)
    assert statement["balance"] == "0.00"
