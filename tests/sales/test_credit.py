"""Credit and cash customers, payments allocated to invoices, credit balances and refunds,
statements with open items and ageing, meters (issue 12 items 4 and 5), through HTTP and sync.

Every test ends where the books must agree: each customer's account (balance, credit) equals
its statement and its open items, and `quartermaster journal verify` passes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from quartermaster import cli
from tests.conftest import Api
from tests.ledger_helpers import counts, make_customer, make_item, ok, sell

pytestmark = pytest.mark.django_db


def terms(api: Api, customer: str, **fields: Any) -> dict[str, Any]:
    return ok(api.patch(f"/api/v1/customers/{customer}", fields), 200)


def pay(api: Api, customer: str, amount: str, method: str = "cash", **extra: Any) -> Any:
    return api.post(
        "/api/v1/payments", {"customer": customer, "amount": amount, "method": method, **extra}
    )


def statement(api: Api, customer: str) -> dict[str, Any]:
    return ok(api.get(f"/api/v1/customers/{customer}/statement"), 200)


def invoice_state(api: Api, invoice: str) -> tuple[str, str]:
    body = ok(api.get(f"/api/v1/invoices/{invoice}"), 200)
    return body["amount_paid"], body["payment_status"]


def journal_lines(api: Api, account: str) -> list[tuple[str, str, str]]:
    """(account, debit, credit) of every line of the entries touching `account`, oldest first."""
    entries = ok(api.get(f"/api/v1/journal/entries?account={account}&limit=500"), 200)["results"]
    return [
        (line["account"], line["debit"], line["credit"])
        for entry in sorted(entries, key=lambda e: e["number"])
        for line in entry["lines"]
    ]


def books_agree(api: Api, customer: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The customer's account equals its statement and its open items; the journal verifies."""
    from quartermaster.core.money import format_money, parse_money
    from quartermaster.sales.models import CustomerAccount

    account = CustomerAccount.objects.get(pk=customer)
    body = statement(api, customer)
    open_total = sum(parse_money(item["open"]) for item in body["open_items"])
    assert body["balance"] == format_money(account.balance_minor)
    assert body["credit"] == format_money(account.credit_minor)
    assert open_total - account.credit_minor == account.balance_minor
    assert sum(parse_money(amount) for amount in body["aging"].values()) == open_total
    assert cli.main(["journal", "verify"]) == 0, capsys.readouterr().out


def test_a_payment_goes_to_named_invoices_then_the_oldest_and_the_rest_is_credit(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    first, second, third = (
        ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": qty}]))["invoice"]
        for qty in (1, 2, 3)
    )

    reply = pay(
        manager,
        customer,
        "450.00",
        "cheque",
        allocations=[{"invoice": third["id"], "amount": "250.00"}],
    )

    body = ok(reply)
    assert [(a["invoice"], a["amount"]) for a in body["allocations"]] == [
        (third["id"], "250.00"),
        (first["id"], "100.00"),
        (second["id"], "100.00"),
    ]
    assert body["unallocated"] == "0.00"
    assert invoice_state(manager, first["id"]) == ("100.00", "paid")
    assert invoice_state(manager, second["id"]) == ("100.00", "open")
    assert invoice_state(manager, third["id"]) == ("250.00", "open")
    account = f"customer_receivable:{customer}"
    assert journal_lines(manager, account) == [
        ("cheques", "450.00", "0.00"),
        (account, "0.00", "450.00"),
    ]
    # more than owed: the rest is credit, shown on the statement
    over = ok(pay(manager, customer, "200.00", "upi"))
    assert over["unallocated"] == "50.00"
    shown = statement(manager, customer)
    assert (shown["balance"], shown["credit"], shown["open_items"]) == ("-50.00", "50.00", [])
    books_agree(manager, customer, capsys)


def test_allocations_that_do_not_fit_are_refused_and_change_nothing(
    manager: Api, default_location_id: str
) -> None:
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    other = make_customer(manager, "Other Stores")["id"]
    invoice = ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 1}]))["invoice"]
    before = counts()

    too_much = pay(
        manager, customer, "500.00", allocations=[{"invoice": invoice["id"], "amount": "150.00"}]
    )
    not_theirs = pay(
        manager, other, "50.00", allocations=[{"invoice": invoice["id"], "amount": "50.00"}]
    )
    over_payment = pay(
        manager, customer, "10.00", allocations=[{"invoice": invoice["id"], "amount": "50.00"}]
    )

    assert (too_much.status, too_much.body["fields"]) == (
        400,
        {"allocations[0].amount": "more than the invoice's open amount"},
    )
    assert (not_theirs.status, list(not_theirs.body["fields"])) == (400, ["allocations[0].invoice"])
    assert (over_payment.status, list(over_payment.body["fields"])) == (400, ["allocations"])
    assert counts() == before


def test_credit_pays_the_next_invoice_and_what_is_left_is_refunded(
    manager: Api, staff: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    ok(pay(manager, customer, "750.50"))
    assert statement(manager, customer)["balance"] == "-750.50"

    sale = ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 2}]))
    too_much = manager.post(
        "/api/v1/refunds", {"customer": customer, "amount": "600.00", "method": "cash"}
    )
    by_staff = staff.post(
        "/api/v1/refunds", {"customer": customer, "amount": "10.00", "method": "cash"}
    )
    refund = manager.post(
        "/api/v1/refunds", {"customer": customer, "amount": "550.50", "method": "bank_transfer"}
    )

    assert invoice_state(manager, sale["invoice"]["id"]) == ("200.00", "paid")
    assert (too_much.status, too_much.body["code"]) == (409, "refund_exceeds_credit")
    assert too_much.body["fields"] == {"amount": "at most 550.50"}
    assert (by_staff.status, by_staff.body["code"]) == (403, "permission_denied")
    assert (ok(refund)["number"], ok(refund)["amount"]) == ("RFD-000001", "550.50")
    shown = statement(manager, customer)
    assert (shown["balance"], shown["credit"]) == ("0.00", "0.00")
    assert [(e["type"], e["debit"], e["credit"]) for e in shown["entries"]] == [
        ("payment", "0.00", "750.50"),
        ("invoice", "200.00", "0.00"),
        ("refund", "550.50", "0.00"),
    ]
    account = f"customer_receivable:{customer}"
    assert journal_lines(manager, account) == [
        ("cash", "750.50", "0.00"),
        (account, "0.00", "750.50"),
        (account, "550.50", "0.00"),
        ("bank", "0.00", "550.50"),
    ]
    books_agree(manager, customer, capsys)


def test_a_credit_sale_over_the_limit_needs_a_manager(
    manager: Api, staff: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 10, price="400.00")
    customer = make_customer(manager)["id"]
    by_staff = staff.patch(f"/api/v1/customers/{customer}", {"credit_limit": "5000.00"})
    changed = terms(manager, customer, payment_terms="credit", credit_limit="1000.00")
    first = sell(staff, customer, default_location_id, [{"item": gas, "qty": 2}])
    draft = ok(sell(staff, customer, default_location_id, [{"item": gas, "qty": 1}], False))
    before = counts()

    over = sell(staff, customer, default_location_id, [{"item": gas, "qty": 1}])
    confirm_over = staff.post(f"/api/v1/transactions/{draft['id']}/confirm")
    after_refusal = counts()
    by_manager = sell(manager, customer, default_location_id, [{"item": gas, "qty": 1}])
    ok(pay(staff, customer, "1200.00"))
    after_payment = sell(staff, customer, default_location_id, [{"item": gas, "qty": 2}])

    assert (by_staff.status, by_staff.body["code"]) == (403, "needs_manager")
    assert (changed["payment_terms"], changed["credit_limit"]) == ("credit", "1000.00")
    assert first.status == 201
    assert (over.status, over.body["code"]) == (409, "credit_limit_exceeded")
    assert (confirm_over.status, confirm_over.body["code"]) == (409, "credit_limit_exceeded")
    assert after_refusal == before
    assert by_manager.status == 201
    assert after_payment.status == 201
    assert statement(manager, customer)["balance"] == "800.00"
    books_agree(manager, customer, capsys)


def test_a_cash_customer_pays_with_the_sale_or_the_sale_is_refused(
    manager: Api, staff: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 10, price="100.00", tax_rate_bp=500)
    customer = make_customer(manager)["id"]
    terms(manager, customer, payment_terms="cash")
    before = counts()

    unpaid = sell(staff, customer, default_location_id, [{"item": gas, "qty": 1}])
    short = staff.post(
        "/api/v1/transactions",
        {
            "customer": customer,
            "location": default_location_id,
            "lines": [{"item": gas, "qty": 1}],
            "confirm": True,
            "payment": {"method": "cash", "amount": "100.00"},
        },
    )
    after_refusals = counts()
    paid = staff.post(
        "/api/v1/transactions",
        {
            "customer": customer,
            "location": default_location_id,
            "lines": [{"item": gas, "qty": 1}],
            "confirm": True,
            "payment": {"method": "cash"},
        },
    )
    draft = ok(sell(staff, customer, default_location_id, [{"item": gas, "qty": 2}], False))
    confirm_unpaid = staff.post(f"/api/v1/transactions/{draft['id']}/confirm")
    confirm_paid = staff.post(
        f"/api/v1/transactions/{draft['id']}/confirm", {"payment": {"method": "upi"}}
    )

    assert (unpaid.status, unpaid.body["code"]) == (409, "payment_required")
    assert unpaid.body["fields"] == {"payment": "105.00 is due with this sale"}
    assert (short.status, short.body["code"]) == (409, "payment_required")
    assert after_refusals == before
    body = ok(paid)
    assert (body["payment"]["amount"], body["payment"]["method"]) == ("105.00", "cash")
    assert invoice_state(manager, body["invoice"]["id"]) == ("105.00", "paid")
    assert (confirm_unpaid.status, confirm_unpaid.body["code"]) == (409, "payment_required")
    confirmed = ok(confirm_paid, 200)
    assert invoice_state(manager, confirmed["invoice"]["id"]) == ("210.00", "paid")
    assert statement(manager, customer)["balance"] == "0.00"
    books_agree(manager, customer, capsys)


def test_a_metered_customer_is_billed_from_its_readings(
    manager: Api, staff: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from quartermaster.core.models import AuditEntry

    gas = make_item(manager, "piped gas (units)", 10_000, price="3.00")
    customer = make_customer(manager)["id"]
    not_metered = staff.post(f"/api/v1/customers/{customer}/meter-readings", {"reading": 10})
    terms(manager, customer, meter_installed=True, meter_rate="2.50")
    metered_line = [{"item": gas, "meter_reading": 1120}]
    before_first = sell(staff, customer, default_location_id, metered_line)

    first = staff.post(f"/api/v1/customers/{customer}/meter-readings", {"reading": 1000})
    sale = sell(staff, customer, default_location_id, metered_line)
    lower = sell(staff, customer, default_location_id, [{"item": gas, "meter_reading": 1100}])
    draft = sell(staff, customer, default_location_id, metered_line, confirm=False)
    backwards = staff.post(f"/api/v1/customers/{customer}/meter-readings", {"reading": 50})
    replaced = staff.post(
        f"/api/v1/customers/{customer}/meter-readings", {"reading": 50, "replaced": True}
    )
    after_replacement = sell(
        staff, customer, default_location_id, [{"item": gas, "meter_reading": 90}]
    )

    assert (not_metered.status, not_metered.body["code"]) == (409, "meter_not_installed")
    assert (before_first.status, list(before_first.body["fields"])) == (
        400,
        ["lines[0].meter_reading"],
    )
    assert (ok(first)["reading"], ok(first)["previous"]) == (1000, None)
    body = ok(sale)
    line = body["invoice"]["lines"][0]
    assert (line["qty"], line["unit_price"], line["total"]) == (120, "2.50", "300.00")
    assert body["lines"][0]["meter_reading"] == 1120
    audited = AuditEntry.objects.get(entity_type="sale", entity_id=body["id"])
    assert audited.after["lines"][0]["meter_reading"] == 1120
    reading = AuditEntry.objects.get(entity_type="meter_reading", after__sale=body["id"])
    assert (reading.after["previous"], reading.after["reading"]) == (1000, 1120)
    assert (lower.status, lower.body["fields"]) == (
        400,
        {
            "lines[0].meter_reading": "below the last reading (1120); "
            "record a meter replacement if it was"
        },
    )
    assert draft.status == 400
    assert backwards.status == 400
    assert ok(replaced)["replaced"] is True
    assert AuditEntry.objects.filter(entity_type="meter_reading", after__replaced=True).count() == 1
    assert ok(after_replacement)["invoice"]["total"] == "100.00"  # (90 - 50) x 2.50
    books_agree(manager, customer, capsys)


def test_the_statement_ages_what_is_open(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from quartermaster.sales.models import Invoice

    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    invoices = [
        ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 1}]))["invoice"]["id"]
        for _ in range(5)
    ]
    now = timezone.now()
    # Set-up only: the invoices are back-dated in the database to 120, 75, 45, 31 and 0 days.
    for invoice, days in zip(invoices, (120, 75, 45, 31, 0), strict=True):
        Invoice.objects.filter(pk=invoice).update(created_at=now - timedelta(days=days, hours=1))
    ok(pay(manager, customer, "150.00"))  # the oldest, and half the next

    shown = statement(manager, customer)

    assert [(item["age_days"], item["open"]) for item in shown["open_items"]] == [
        (75, "50.00"),
        (45, "100.00"),
        (31, "100.00"),
        (0, "100.00"),
    ]
    assert shown["aging"] == {
        "0_30": "100.00",
        "31_60": "200.00",
        "61_90": "50.00",
        "90_plus": "0.00",
    }
    books_agree(manager, customer, capsys)


def test_voiding_a_paid_sale_turns_its_payment_into_credit(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    paid = ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 1}]))
    unpaid = ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 3}]))
    ok(pay(manager, customer, "100.00"))

    ok(manager.post(f"/api/v1/transactions/{paid['id']}/void", {"reason": "wrong"}), 200)

    assert invoice_state(manager, paid["invoice"]["id"]) == ("100.00", "void")
    assert invoice_state(manager, unpaid["invoice"]["id"]) == ("100.00", "open")
    assert statement(manager, customer)["balance"] == "200.00"
    books_agree(manager, customer, capsys)


def test_payments_refunds_and_readings_are_sync_ops(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 100, price="100.00")
    customer = make_customer(manager)["id"]
    terms(manager, customer, meter_installed=True, meter_rate="1.00", payment_terms="cash")
    ops = [
        {
            "op_id": "op-1",
            "type": "meter.reading.record",
            "payload": {"customer": customer, "reading": 5},
        },
        {
            "op_id": "op-2",
            "type": "sale.record",
            "payload": {
                "customer": customer,
                "location": default_location_id,
                "lines": [{"item": gas, "meter_reading": 25}],
                "confirm": True,
                "payment": {"method": "cash", "amount": "50.00"},
            },
        },
        {
            "op_id": "op-3",
            "type": "payment.record",
            "payload": {"customer": customer, "amount": "10.00", "method": "cash"},
        },
        {
            "op_id": "op-4",
            "type": "refund.record",
            "payload": {"customer": customer, "amount": "40.00", "method": "cash"},
        },
    ]

    reply = manager.post("/api/v1/sync/batch", {"device_id": "truck-07", "ops": ops})

    assert reply.status == 200, reply.body
    assert [result["status"] for result in reply.body["results"]] == [201, 201, 201, 201]
    sale = reply.body["results"][1]["body"]
    assert (sale["invoice"]["total"], sale["payment"]["unallocated"]) == ("20.00", "30.00")
    shown = statement(manager, customer)
    assert (shown["balance"], shown["credit"]) == ("0.00", "0.00")
    books_agree(manager, customer, capsys)


def test_a_batch_of_sales_settles_each_customer_as_alone(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gas = make_item(manager, "gas", 20, price="100.00")
    plain = make_customer(manager)["id"]
    limited = make_customer(manager, "Limited Stores")["id"]
    terms(manager, limited, credit_limit="150.00")
    ok(pay(manager, plain, "250.00"))

    def sale(op_id: str, customer: str) -> dict[str, Any]:
        payload = {
            "customer": customer,
            "location": default_location_id,
            "lines": [{"item": gas, "qty": 1}],
            "confirm": True,
        }
        return {"op_id": op_id, "type": "sale.record", "payload": payload}

    ops = [
        sale("a", plain),
        sale("b", plain),
        sale("c", plain),
        sale("d", limited),
        sale("e", limited),
    ]
    reply = manager.post("/api/v1/sync/batch", {"device_id": "truck-07", "ops": ops})

    # a manager may sell over a limit: all pass; the plain customer's credit pays two and a half
    assert [result["status"] for result in reply.body["results"]] == [201] * 5
    assert statement(manager, plain)["balance"] == "50.00"
    assert statement(manager, limited)["balance"] == "200.00"
    books_agree(manager, plain, capsys)
    books_agree(manager, limited, capsys)


def test_migration_0004_opens_each_existing_customers_account_from_its_history(
    manager: Api, default_location_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib

    from django.apps import apps

    from quartermaster.sales.models import Allocation, CustomerAccount, Payment

    migration = importlib.import_module("quartermaster.sales.migrations.0004_credit")
    gas = make_item(manager, "gas", 10, price="100.00")
    customer = make_customer(manager)["id"]
    first, _, third = (
        ok(sell(manager, customer, default_location_id, [{"item": gas, "qty": 1}]))
        for _ in range(3)
    )
    ok(manager.post(f"/api/v1/transactions/{third['id']}/void", {"reason": "wrong"}), 200)
    # As before 0004: payments recorded with no allocation and no account.
    Allocation.objects.all().delete()
    CustomerAccount.objects.all().delete()
    Payment.objects.create(
        number="PAY-900001",
        customer_id=customer,
        amount_minor=15_000,
        method="cash",
        created_by="x",
    )

    migration.open_accounts(apps, None)

    assert invoice_state(manager, first["invoice"]["id"]) == ("100.00", "paid")
    shown = statement(manager, customer)
    assert [item["open"] for item in shown["open_items"]] == ["50.00"]
    assert (shown["balance"], shown["credit"]) == ("50.00", "0.00")
