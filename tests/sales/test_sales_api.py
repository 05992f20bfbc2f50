"""Customers, sale transactions, invoices, voids, payments and statements, through HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, audit_count
from tests.ledger_helpers import (
    counts,
    ledger_agrees,
    make_customer,
    make_item,
    make_location,
    ok,
    sell,
    stock,
    stock_rows,
)

pytestmark = pytest.mark.django_db


def test_customers_are_created_listed_and_read(staff: Api) -> None:
    created = make_customer(staff, "Lakshmi Stores")

    listed = ok(staff.get("/api/v1/customers"), 200)

    assert created["number"] == "CUS-000001"
    assert created["name"] == "Lakshmi Stores"
    assert [c["id"] for c in listed["results"]] == [created["id"]]
    assert ok(staff.get(f"/api/v1/customers/{created['id']}"), 200) == created


@pytest.mark.parametrize("payload", [{"name": " "}, {"name": 3}, {}, {"name": "a", "x": 1}])
def test_bad_customers_are_400(staff: Api, payload: dict) -> None:
    reply = staff.post("/api/v1/customers", payload)

    assert reply.status == 400
    assert reply.body["code"] == "invalid"


def test_confirmed_sale_moves_stock_and_raises_the_invoice_in_one_go(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 10, price="905.00", tax_rate_bp=500)
    hose = make_item(manager, "hose", 5, price="190.00", tax_rate_bp=1800)
    customer = make_customer(manager)

    reply = sell(
        manager,
        customer["id"],
        default_location_id,
        [{"item": gas, "qty": 2}, {"item": hose, "qty": 1, "unit_price": "180.55"}],
    )

    assert reply.status == 201
    sale = reply.body
    assert (sale["number"], sale["status"]) == ("TRX-000001", "confirmed")
    invoice = sale["invoice"]
    assert invoice["number"] == "INV-000001"
    # 2 x 905.00 = 1810.00, tax 5 % = 90.50; 180.55 at 18 % = 32.499 → 32.50 (half-up per line)
    assert [(line["net"], line["tax"], line["total"]) for line in invoice["lines"]] == [
        ("1810.00", "90.50", "1900.50"),
        ("180.55", "32.50", "213.05"),
    ]
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (
        "1990.55",
        "123.00",
        "2113.55",
    )
    assert ok(manager.get(f"/api/v1/invoices/{invoice['id']}"), 200) == {
        **invoice,
        "email_status": "generated",
        "emailed_at": None,
        "amount_paid": "0.00",
        "payment_status": "open",
    }
    assert stock(manager, gas, default_location_id) == 8
    assert stock(manager, hose, default_location_id) == 4
    assert stock(manager, gas, customer["site"]) == 2
    assert ledger_agrees() == []


def test_tax_rounding_is_half_up_per_line(manager: Api, default_location_id: str) -> None:
    # 0.10 at 5 % = 0.005 → 0.01 (half-up); three such lines tax 0.03, not round(0.015) = 0.02
    pen = make_item(manager, "pen", 10, price="0.10", tax_rate_bp=500)
    customer = make_customer(manager)

    invoice = ok(sell(manager, customer["id"], default_location_id, [{"item": pen, "qty": 1}] * 3))[
        "invoice"
    ]

    assert [line["tax"] for line in invoice["lines"]] == ["0.01", "0.01", "0.01"]
    assert (invoice["tax"], invoice["total"]) == ("0.03", "0.33")


def test_draft_then_confirm(staff: Api, manager: Api, default_location_id: str) -> None:
    gas = make_item(manager, "gas", 3, price="10.00")
    customer = make_customer(staff)

    draft = ok(sell(staff, customer["id"], default_location_id, [{"item": gas, "qty": 3}], False))
    assert (draft["status"], draft["invoice"]) == ("draft", None)
    assert stock(manager, gas, default_location_id) == 3

    confirmed = ok(staff.post(f"/api/v1/transactions/{draft['id']}/confirm"), 200)
    again = staff.post(f"/api/v1/transactions/{draft['id']}/confirm")

    assert confirmed["status"] == "confirmed"
    assert confirmed["invoice"]["total"] == "30.00"
    assert again.status == 409 and again.body["code"] == "invalid_state"
    assert stock(manager, gas, default_location_id) == 0


def test_insufficient_stock_on_confirm_is_409_and_nothing_changes(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5)
    hose = make_item(manager, "hose", 1)
    customer = make_customer(manager)
    draft = ok(
        sell(
            manager,
            customer["id"],
            default_location_id,
            [{"item": gas, "qty": 5}, {"item": hose, "qty": 2}],
            False,
        )
    )
    before, rows = counts(), stock_rows()

    reply = manager.post(f"/api/v1/transactions/{draft['id']}/confirm")

    assert reply.status == 409
    assert reply.body["code"] == "insufficient_stock"
    assert list(reply.body["fields"]) == ["lines[1]"]
    assert counts() == before
    assert stock_rows() == rows
    assert ok(manager.get(f"/api/v1/transactions/{draft['id']}"), 200)["status"] == "draft"


def test_insufficient_stock_on_record_and_confirm_leaves_no_draft_and_no_number(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 1)
    customer = make_customer(manager)
    before = counts()

    failed = sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 2}])
    next_sale = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))

    assert failed.status == 409
    assert next_sale["number"] == "TRX-000001"  # gap-free: the failed sale gave its number back
    assert next_sale["invoice"]["number"] == "INV-000001"
    assert counts()["SaleTransaction"] == before["SaleTransaction"] + 1


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"qty": 0}, "lines[0].qty"),
        ({"qty": True}, "lines.0.qty"),
        ({"qty": 1, "unit_price": "1.001"}, "lines[0].unit_price"),
        ({"qty": 1, "unit_price": "-1.00"}, "lines[0].unit_price"),
        ({"qty": 1, "unit_price": 5}, "lines.0.unit_price"),
        ({"qty": 1, "serials": ["S1"]}, "lines[0].serials"),
    ],
)
def test_bad_sale_lines_are_400(
    manager: Api, default_location_id: str, line: dict, field: str
) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)
    entries = audit_count()

    reply = sell(manager, customer["id"], default_location_id, [{"item": gas, **line}])

    assert reply.status == 400, reply.body
    assert field in reply.body["fields"]
    assert audit_count() == entries


def test_sale_for_unknown_customer_or_confirm_flag_not_bool_is_400(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)

    unknown = sell(manager, str(uuid.uuid4()), default_location_id, [{"item": gas, "qty": 1}])
    not_bool = manager.post(
        "/api/v1/transactions",
        {
            "customer": customer["id"],
            "location": default_location_id,
            "lines": [{"item": gas, "qty": 1}],
            "confirm": 1,
        },
    )

    assert unknown.status == 400 and "customer" in unknown.body["fields"]
    assert not_bool.status == 400 and "confirm" in not_bool.body["fields"]


def test_staff_sell_only_at_their_locations_and_do_not_see_other_sales(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    truck = make_location(manager, "Truck 7")
    gas = make_item(manager, "gas", 5)
    manager.post("/api/v1/receipts", {"to_location": truck, "lines": [{"item": gas, "qty": 5}]})
    customer = make_customer(manager)
    elsewhere = ok(sell(manager, customer["id"], truck, [{"item": gas, "qty": 1}]))

    attempt = sell(staff, customer["id"], truck, [{"item": gas, "qty": 1}])

    assert attempt.status == 404
    assert staff.get(f"/api/v1/transactions/{elsewhere['id']}").status == 404
    assert staff.get(f"/api/v1/invoices/{elsewhere['invoice']['id']}").status == 404
    assert staff.post(f"/api/v1/transactions/{elsewhere['id']}/void", {"reason": "x"}).status == 403


def test_void_reverses_the_movement_and_raises_a_credit_note(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5, price="100.00", tax_rate_bp=1000)
    customer = make_customer(manager)
    sale = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 2}]))

    no_reason = manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": ""})
    voided = ok(
        manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "wrong customer"}), 200
    )
    twice = manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "again"})

    assert no_reason.status == 400
    assert voided["status"] == "voided"
    note = voided["credit_note"]
    assert (note["number"], note["kind"], note["total"]) == ("CRN-000001", "void", "220.00")
    assert note["invoice"] == sale["invoice"]["id"]
    assert voided["reversal"] is not None
    reversal = ok(manager.get(f"/api/v1/movements/{voided['reversal']}"), 200)
    assert (reversal["kind"], reversal["reverses"]) == ("sale_reversal", sale["movement"])
    # the invoice is untouched: corrections are new records, never edits (its payment state
    # says the credit note cancelled it)
    assert ok(manager.get(f"/api/v1/invoices/{sale['invoice']['id']}"), 200) == {
        **sale["invoice"],
        "email_status": "generated",
        "emailed_at": None,
        "amount_paid": "0.00",
        "payment_status": "void",
    }
    assert twice.status == 409
    assert stock(manager, gas, default_location_id) == 5
    assert stock(manager, gas, customer["site"]) == 0
    assert ledger_agrees() == []


def test_voiding_a_draft_cancels_it_without_movement_or_credit_note(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)
    draft = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 2}], False))
    before = counts()

    voided = ok(manager.post(f"/api/v1/transactions/{draft['id']}/void", {"reason": "typo"}), 200)
    confirm = manager.post(f"/api/v1/transactions/{draft['id']}/confirm")

    assert (voided["status"], voided["credit_note"], voided["reversal"]) == ("voided", None, None)
    assert counts()["Movement"] == before["Movement"]
    assert counts()["CreditNote"] == before["CreditNote"]
    assert confirm.status == 409


def test_payments_and_the_statement_with_running_balance(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5, price="100.00")
    customer = make_customer(manager)
    first = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 2}]))
    payment = ok(
        manager.post(
            "/api/v1/payments", {"customer": customer["id"], "amount": "150.00", "method": "cash"}
        )
    )
    second = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))
    manager.post(f"/api/v1/transactions/{second['id']}/void", {"reason": "returned"})

    statement = ok(manager.get(f"/api/v1/customers/{customer['id']}/statement"), 200)

    assert (payment["number"], payment["amount"], payment["method"]) == (
        "PAY-000001",
        "150.00",
        "cash",
    )
    assert [
        (e["type"], e["number"], e["debit"], e["credit"], e["balance"])
        for e in statement["entries"]
    ] == [
        ("invoice", first["invoice"]["number"], "200.00", "0.00", "200.00"),
        ("payment", "PAY-000001", "0.00", "150.00", "50.00"),
        ("invoice", "INV-000002", "100.00", "0.00", "150.00"),
        ("credit_note", "CRN-000001", "0.00", "100.00", "50.00"),
    ]
    assert statement["balance"] == "50.00"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": "0.00", "method": "cash"}, "amount"),
        ({"amount": "-5.00", "method": "cash"}, "amount"),
        ({"amount": "1.001", "method": "cash"}, "amount"),
        ({"amount": 5, "method": "cash"}, "amount"),
        ({"amount": "5.00", "method": "barter"}, "method"),
    ],
)
def test_bad_payments_are_400(manager: Api, payload: dict, field: str) -> None:
    customer = make_customer(manager)
    entries = audit_count()

    reply = manager.post("/api/v1/payments", {"customer": customer["id"], **payload})

    assert reply.status == 400
    assert field in reply.body["fields"]
    assert audit_count() == entries


def test_idempotency_key_replays_a_confirmed_sale_once(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)
    body = {
        "customer": customer["id"],
        "location": default_location_id,
        "lines": [{"item": gas, "qty": 2}],
        "confirm": True,
    }

    first = manager.post("/api/v1/transactions", body, headers={"Idempotency-Key": "sale-1"})
    replay = manager.post("/api/v1/transactions", body, headers={"Idempotency-Key": "sale-1"})

    assert first.status == replay.status == 201
    assert replay.body == first.body
    assert replay.headers["idempotent-replayed"] == "true"
    assert stock(manager, gas, default_location_id) == 3


def test_sales_are_audited(manager: Api, default_location_id: str) -> None:
    gas = make_item(manager, "gas", 5)
    customer = make_customer(manager)
    sale = ok(sell(manager, customer["id"], default_location_id, [{"item": gas, "qty": 1}]))

    entries = ok(manager.get(f"/api/v1/audit?entity_type=sale&entity_id={sale['id']}"), 200)
    invoice_entries = ok(manager.get("/api/v1/audit?entity_type=invoice"), 200)

    assert [e["action"] for e in entries["results"]] == ["sale.record"]
    assert entries["results"][0]["after"]["status"] == "confirmed"
    assert [e["after"]["number"] for e in invoice_entries["results"]] == ["INV-000001"]
    assert ok(manager.get("/api/v1/audit/verify"), 200)["ok"] is True
