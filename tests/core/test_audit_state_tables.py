"""`audit verify --state` over serialized assets (cylinders): a day of receipts and a sale
verifies; an asset edited behind the pipeline (its deposit, its holder) is named; so are a
sale paid as it is made (its payment and allocation) and an inspection undeleted. The other
tables' proofs are the acceptance days' (tests/acceptance, tests/audit_tampering.py)."""

from __future__ import annotations

import pytest

from quartermaster.cli import main
from tests.audit_tampering import Edit, assert_each_edit_is_caught
from tests.conftest import Api
from tests.inspections.helpers import INSPECTIONS, new_inspection, published_template
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


def test_a_sale_paid_as_it_is_made_verifies_and_its_edited_payment_is_named(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # The sale's snapshot carries the payment taken with it, sealed once; the payment and its
    # allocation are records of their own, and it is they that an edit shows in.
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    body = {
        "customer": customer,
        "location": default_location_id,
        "lines": [{"item": gas, "qty": 1}],
        "confirm": True,
        "payment": {"method": "cash"},
    }
    ok(manager.post("/api/v1/transactions", body))

    assert_each_edit_is_caught(
        capsys,
        [
            Edit("payment", "sales_payment", "amount_minor = amount_minor + 100"),
            Edit("allocation", "sales_allocation", "amount_minor = amount_minor + 100"),
        ],
    )


def test_an_inspection_deleted_in_the_chain_and_undeleted_in_the_table_is_named(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Soft-deleted: its row stays, its delete sealed no `after`, and the reading leaves it out.
    inspection = new_inspection(manager, published_template(manager), default_location_id)
    assert manager.delete(f"{INSPECTIONS}/{inspection['id']}").status == 204

    assert_each_edit_is_caught(
        capsys, [Edit("inspection", "inspections_inspection", "deleted_at = NULL")]
    )
    assert main(["audit", "verify", "--state"]) == 1
    assert f"inspection {inspection['id']}: deleted in the chain, still in the table" in (
        capsys.readouterr().out
    )
