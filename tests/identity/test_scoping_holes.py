"""Issue 10 item 5: every read through the one policy.

A customer's statement shows only the invoices and credit notes the caller may open one by one;
the item catalogue (names, prices) is every staff member's, wherever they work, while stock
stays scoped (an item's `qty` is null for them); a party user linked to a customer reads that
customer's statement and feed rows, and nobody else's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from tests.conftest import Api, create_user, login
from tests.ledger_helpers import make_customer, make_item, make_location, ok, receive, sell

pytestmark = pytest.mark.django_db


def _feed(api: Api) -> list[dict[str, Any]]:
    return ok(api.get("/api/v1/sync/changes?since=0&limit=500"), 200)["changes"]


def _party(username: str) -> tuple[str, Api]:
    user = create_user(username, "party")
    return user["id"], Api(Client(), login(username)["access"])


def test_a_statement_shows_only_the_documents_of_the_callers_locations(
    admin: Api, staff: Api, default_location_id: str
) -> None:
    van = make_location(admin, "van 7")
    gas = make_item(admin, "gas", 5, price="10.00")
    receive(admin, van, [{"item": gas, "qty": 5}])
    customer = make_customer(admin)
    here = ok(sell(admin, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))
    there = ok(sell(admin, customer["id"], van, [{"item": gas, "qty": 2}]))
    ok(admin.post(f"/api/v1/transactions/{there['id']}/void", {"reason": "wrong van"}), 200)

    seen = ok(staff.get(f"/api/v1/customers/{customer['id']}/statement"), 200)
    everything = ok(admin.get(f"/api/v1/customers/{customer['id']}/statement"), 200)

    # The van's invoice and its credit note answer 404 to this staff member one by one...
    assert staff.get(f"/api/v1/invoices/{there['invoice']['id']}").status == 404
    # ...so the statement does not show them either.
    assert [(e["type"], e["id"]) for e in seen["entries"]] == [("invoice", here["invoice"]["id"])]
    assert seen["balance"] == "10.00"
    assert [e["type"] for e in everything["entries"]] == ["invoice", "invoice", "credit_note"]


def test_staff_anywhere_see_the_catalogue_but_not_the_default_locations_stock(
    admin: Api, staff: Api, make_api: Callable[..., Api]
) -> None:
    van = make_location(admin, "van 7")
    van_staff = make_api("staff", "van-driver", locations=(van,))
    gas = make_item(admin, "gas", 5, price="10.00")

    listed = ok(van_staff.get("/api/v1/items"), 200)["results"]
    one = ok(van_staff.get(f"/api/v1/items/{gas}"), 200)
    feed_items = [c for c in _feed(van_staff) if c["entity"] == "item"]

    assert [(i["id"], i["name"], i["price"], i["qty"]) for i in listed] == [
        (gas, "gas", "10.00", None)
    ]
    assert (one["name"], one["qty"]) == ("gas", None)
    assert [(c["id"], c["data"]["price"], c["data"]["qty"]) for c in feed_items] == [
        (gas, "10.00", None)
    ]
    # Staff at the default location, and managers, see its stock as before.
    assert ok(staff.get(f"/api/v1/items/{gas}"), 200)["qty"] == 5
    assert [c["data"]["qty"] for c in _feed(staff) if c["entity"] == "item"] == [5]
    # Stock stays scoped: the van driver cannot change the default location's stock.
    assert van_staff.patch(f"/api/v1/items/{gas}/qty", {"delta": -1}).status == 404


def test_a_linked_party_user_reads_its_own_statement_and_no_other(
    admin: Api, staff: Api, default_location_id: str
) -> None:
    owner_id, owner = _party("lakshmi")
    _, stranger = _party("stranger")
    gas = make_item(admin, "gas", 5, price="10.00")
    customer = make_customer(admin)
    other = make_customer(admin, "Other Stores")
    ok(sell(admin, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))

    # Staff may edit a customer but not say who signs in as it.
    refused = staff.patch(f"/api/v1/customers/{customer['id']}", {"user": owner_id})
    linked = ok(admin.patch(f"/api/v1/customers/{customer['id']}", {"user": owner_id}), 200)

    assert (refused.status, refused.body["code"]) == (403, "permission_denied")
    assert linked["user"] == owner_id
    statement = ok(owner.get(f"/api/v1/customers/{customer['id']}/statement"), 200)
    assert statement["balance"] == "10.00"
    assert [e["type"] for e in statement["entries"]] == ["invoice"]
    assert owner.get(f"/api/v1/customers/{other['id']}/statement").status == 404
    assert stranger.get(f"/api/v1/customers/{customer['id']}/statement").status == 404


def test_only_party_users_are_linked_and_each_to_one_customer(admin: Api) -> None:
    owner_id, _ = _party("lakshmi")
    clerk = create_user("clerk", "staff")
    first = make_customer(admin)

    ok(admin.patch(f"/api/v1/customers/{first['id']}", {"user": owner_id}), 200)
    second = admin.post("/api/v1/customers", {"name": "Second", "user": owner_id})
    not_party = admin.patch(f"/api/v1/customers/{first['id']}", {"user": clerk["id"]})

    assert (second.status, second.body["fields"]) == (
        400,
        {"user": "already linked to another customer"},
    )
    assert (not_party.status, not_party.body["fields"]) == (
        400,
        {"user": "must be a user of role party"},
    )


def test_a_party_user_reads_the_feed_rows_of_its_own_records_only(
    admin: Api, default_location_id: str
) -> None:
    owner_id, owner = _party("lakshmi")
    gas = make_item(admin, "gas", 5, price="10.00")
    other = make_customer(admin, "Other Stores")
    mine = ok(admin.post("/api/v1/customers", {"name": "Lakshmi Stores", "user": owner_id}))
    sale = ok(sell(admin, mine["id"], default_location_id, [{"item": gas, "qty": 1}]))
    ok(sell(admin, other["id"], default_location_id, [{"item": gas, "qty": 1}]))
    payment = ok(
        admin.post(
            "/api/v1/payments", {"customer": mine["id"], "amount": "10.00", "method": "cash"}
        )
    )

    seen = {(c["entity"], c["id"]) for c in _feed(owner)}

    assert seen == {
        ("customer", mine["id"]),
        ("sale", sale["id"]),
        ("invoice", sale["invoice"]["id"]),
        ("payment", payment["id"]),
        # the payment applied to the invoice: the customer's too
        ("allocation", payment["allocations"][0]["id"]),
    }
