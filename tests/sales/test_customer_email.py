"""A customer's e-mail address: set on create or update (REST and sync ops), validated, in the
customer's body and audited; an invoice e-mailed without `to` goes to it."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.core.models import AuditEntry
from tests.conftest import Api, audit_count
from tests.ledger_helpers import make_item, ok, sell
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


def test_a_customer_is_created_with_an_email_and_it_is_in_its_body(staff: Api) -> None:
    created = ok(
        staff.post(
            "/api/v1/customers", {"name": "Lakshmi Stores", "email": " accounts@lakshmi.example "}
        )
    )
    plain = ok(staff.post("/api/v1/customers", {"name": "Ravi Traders"}))

    assert created["email"] == "accounts@lakshmi.example"
    assert plain["email"] is None
    assert ok(staff.get(f"/api/v1/customers/{created['id']}"), 200)["email"] == (
        "accounts@lakshmi.example"
    )
    sealed = AuditEntry.objects.get(entity_type="customer", entity_id=created["id"])
    assert sealed.after["email"] == "accounts@lakshmi.example"


def test_a_customers_email_is_changed_and_cleared_by_patch(staff: Api) -> None:
    customer = ok(staff.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    path = f"/api/v1/customers/{customer['id']}"

    changed = ok(staff.patch(path, {"email": "a@lakshmi.example"}), 200)
    renamed = ok(staff.patch(path, {"name": "Lakshmi Stores Ltd"}), 200)
    cleared = ok(staff.patch(path, {"email": ""}), 200)

    assert (changed["email"], changed["version"]) == ("a@lakshmi.example", 2)
    assert renamed["email"] == "a@lakshmi.example"  # absent: left as it is
    assert (cleared["email"], cleared["version"]) == (None, 4)
    sealed = AuditEntry.objects.filter(entity_type="customer", entity_id=customer["id"])
    assert [entry.after["email"] for entry in sealed.order_by("seq")] == [
        None,
        "a@lakshmi.example",
        "a@lakshmi.example",
        None,
    ]


@pytest.mark.parametrize(
    "email", ["not an address", "a@b", 3, None, "x" * 95 + "@b.example", "ü@b.example"]
)
def test_a_bad_email_is_refused_on_create_and_update(staff: Api, email: Any) -> None:
    customer = ok(staff.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    before = audit_count()

    created = staff.post("/api/v1/customers", {"name": "Ravi Traders", "email": email})
    updated = staff.patch(f"/api/v1/customers/{customer['id']}", {"email": email})

    assert (created.status, created.body["code"]) == (400, "invalid")
    assert "email" in created.body["fields"]
    if email is None:  # PATCH: null leaves it as it is
        assert updated.status == 200 and updated.body["email"] is None
    else:
        assert (updated.status, updated.body["code"]) == (400, "invalid")
        assert "email" in updated.body["fields"]
        assert audit_count() == before


def test_customer_ops_carry_the_email_through_sync(manager: Api) -> None:
    ops = [
        op(
            "customer.create",
            {"name": "Lakshmi Stores", "email": "a@lakshmi.example"},
            client_temp_id="temp_1",
        ),
        op("customer.create", {"name": "Ravi Traders", "email": "nope"}),
    ]
    reply = send(manager, ops)

    assert statuses(reply) == [201, 400]
    customer = reply.body["results"][0]["id_map"]["temp_1"]
    update = op("customer.update", {"id": customer, "email": "b@lakshmi.example"})
    assert statuses(send(manager, [update])) == [200]
    assert ok(manager.get(f"/api/v1/customers/{customer}"), 200)["email"] == "b@lakshmi.example"


def test_the_invoice_email_without_to_goes_to_the_customers_address(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "LPG 14.2 kg", 10, price="905.00")
    customer = ok(
        manager.post("/api/v1/customers", {"name": "Lakshmi Stores", "email": "a@lakshmi.example"})
    )
    invoice = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))[
        "invoice"
    ]
    path = f"/api/v1/invoices/{invoice['id']}/email"

    by_default = ok(manager.post(path, {}), 202)
    named = ok(manager.post(path, {"to": "owner@lakshmi.example"}), 202)

    assert by_default["to"] == "a@lakshmi.example"
    assert named["to"] == "owner@lakshmi.example"  # `to` wins over the address on record
    recipients = AuditEntry.objects.filter(entity_type="notification").order_by("seq")
    assert [entry.after["recipient"] for entry in recipients] == [
        "a@lakshmi.example",
        "owner@lakshmi.example",
    ]


def test_no_address_anywhere_is_a_plain_400_and_nothing_is_queued(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "LPG 14.2 kg", 10, price="905.00")
    customer = ok(manager.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    invoice = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))[
        "invoice"
    ]
    before = audit_count()

    refused = manager.post(f"/api/v1/invoices/{invoice['id']}/email", {})

    assert (refused.status, refused.body["code"]) == (400, "no_email_address")
    assert "CUS-000001" in refused.body["error"]
    assert "to" in refused.body["fields"]
    assert audit_count() == before
    assert ok(manager.get("/api/v1/notifications"), 200)["results"] == []
