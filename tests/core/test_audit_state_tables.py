"""`audit verify --state` over serialized assets (cylinders): a day of receipts and a sale
verifies; an asset edited behind the pipeline (its deposit, its holder) is named. The other
tables' proofs are the acceptance days' (tests/acceptance, tests/audit_tampering.py)."""

from __future__ import annotations

import pytest

from tests.audit_tampering import Edit, assert_each_edit_is_caught
from tests.conftest import Api
from tests.ledger_helpers import make_customer, make_item, ok, receive, sell

pytestmark = pytest.mark.django_db


def test_an_asset_edited_outside_the_pipeline_is_named(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cylinder = make_item(
        manager, "LPG 14.2 kg", price="905.00", tracking="serial", deposit="1500.00"
    )
    receive(manager, default_location_id, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])
    customer = make_customer(manager)
    line = {"item": cylinder, "qty": 1, "serials": ["C1"]}
    ok(sell(manager, customer["id"], default_location_id, [line]))

    assert_each_edit_is_caught(
        capsys, [Edit("asset", "inventory_asset", "deposit_held_minor = 0, customer_id = NULL")]
    )
