"""Batch sync validates op payloads straight into the commands (strict, from JSON): the wire
field names of API.md must be the commands' field names or aliases."""

from __future__ import annotations

import json
import uuid

import pytest

import quartermaster.inventory.services
import quartermaster.sales.services  # noqa: F401  (fills Command.registry, as sync's apps.py does)
from quartermaster.core.commands import Command

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
