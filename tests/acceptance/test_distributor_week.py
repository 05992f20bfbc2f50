"""A gas distributor's week end to end, over real HTTP and the field agent (issue 12, "Done when").

A live server (pytest-django's, on the test database: SQLite or PostgreSQL), a manager and a
depot clerk in the back office, and two trucks: Truck 1's driver works online, Truck 2's driver
records on a tablet running `quartermaster agent` and syncs. The week is told day by day, but it
runs in one clock day: booking time is server time and nothing is ever back-dated (the seed's
"no backdated financial records"), so the day-ends at the end close the day all of it was booked on.

- Monday: loads leave the depot for both trucks; Truck 1's arrives whole, Truck 2's two short
  (a loss with its reason, worth more than the threshold: a manager approves it);
- Tuesday: exchange and new-connection sales on Truck 1, over HTTP; on Truck 2's tablet, offline,
  a new customer, a new connection, an exchange and the cash taken, then `agent sync`;
  deposits are held for the customers, not counted as revenue;
- Wednesday: the trucks bring their empties back to the depot, the depot sends them to the
  filling plant and the fulls come back;
- Thursday: a metered hotel is billed from its readings, (reading - last) x its meter rate;
- Friday: a credit customer goes over its limit (409 `credit_limit_exceeded` for the driver, the
  manager records it), pays part in cash, then overpays by cheque; the credit pays the next
  invoice and what is left is refunded (more than the credit is refused);
- Saturday: an invoice is e-mailed through the outbox to an SMTP server on 127.0.0.1 with its PDF
  attached and becomes `emailed`; each truck's day-end is counted with one shortage (Truck 1 an
  empty cylinder, Truck 2 cash) and closed by the manager;
- `journal verify`, `audit verify --state` and `stock rebuild --check` pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from quartermaster import cli
from quartermaster.client.store import DeviceStore
from quartermaster.dayend.selectors import day_zone
from quartermaster.inventory.selectors import get_default_location
from tests.acceptance.test_market_morning import Http, Tablet, flushable  # noqa: F401  (fixture)
from tests.audit_tampering import Edit, assert_each_edit_is_caught
from tests.conftest import create_user
from tests.documents.pdf_tools import pdf_text
from tests.notifications.conftest import work
from tests.sales.smtp_server import SmtpServer

pytestmark = [
    pytest.mark.slow,
    # The live server's threads need to see what the test commits (and the reverse).
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

GAS = {  # a bulk returnable cylinder: 905.00 + 5 % tax = 950.25, a 1500.00 deposit
    "name": "LPG 14.2 kg",
    "price": "905.00",
    "tax_rate_bp": 500,
    "deposit": "1500.00",
    "returnable": True,
}
CYLINDER = Decimal("950.25")
PIPED = {"name": "Piped LPG (units)", "price": "3.00"}


@pytest.fixture
def smtp(settings: Any) -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 with the outbox's e-mail channel pointed at it."""
    server = SmtpServer().start()
    settings.SMTP_HOST = "127.0.0.1"
    settings.SMTP_PORT = server.port
    settings.SMTP_FROM = "invoices@gas.example"
    settings.SMTP_TLS = "none"
    settings.OUTBOX_BACKOFF_SCALE = 0.01
    settings.OUTBOX_POLL_S = 0.05
    settings.NOTIFY_TIMEOUT_S = 5.0
    yield server
    server.stop()


class Books:
    """The distributor's HTTP vocabulary, over one user's client."""

    def __init__(self, http: Http) -> None:
        self.http = http

    def stock(self, item: str, location: str) -> dict[str, int]:
        """The item's stock at the location, by condition."""
        rows = self.http.call("GET", f"/api/v1/stock?item={item}&location={location}")
        return {row.get("condition", ""): row["qty"] for row in rows}

    def sell(self, customer: str, location: str, lines: list[dict[str, Any]], **more: Any) -> Any:
        expect = more.pop("expect", 201)
        body = {"customer": customer, "location": location, "lines": lines, "confirm": True}
        return self.http.call("POST", "/api/v1/transactions", {**body, **more}, expect)

    def pay(self, customer: str, amount: str, method: str) -> Any:
        body = {"customer": customer, "amount": amount, "method": method}
        return self.http.call("POST", "/api/v1/payments", body, 201)

    def dispatch(self, source: str, target: str, lines: list[dict[str, Any]]) -> Any:
        body = {"from_location": source, "to_location": target, "lines": lines}
        return self.http.call("POST", "/api/v1/loads", body, 201)

    def receive(self, load: dict[str, Any], lines: list[dict[str, Any]]) -> Any:
        return self.http.call("POST", f"/api/v1/loads/{load['id']}/receive", {"lines": lines})

    def statement(self, customer: str) -> Any:
        return self.http.call("GET", f"/api/v1/customers/{customer}/statement")

    def invoice(self, invoice: str) -> Any:
        return self.http.call("GET", f"/api/v1/invoices/{invoice}")


def money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def test_a_distributors_week_through_http_the_agent_the_outbox_and_the_day_ends(
    live_server: Any,
    flushable: None,  # noqa: F811
    smtp: SmtpServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = live_server.url
    depot = str(get_default_location().id)
    create_user("owner", "admin")
    create_user("manager", "manager")
    create_user("clerk", "staff", locations=(depot,))
    owner = Http(base, "owner")
    truck1 = owner.call("POST", "/api/v1/locations", {"name": "Truck 1", "kind": "vehicle"}, 201)
    truck2 = owner.call("POST", "/api/v1/locations", {"name": "Truck 2", "kind": "vehicle"}, 201)
    t1, t2 = truck1["id"], truck2["id"]
    create_user("driver1", "staff", locations=(t1,))
    create_user("driver2", "staff", locations=(t2,))
    office, clerk = Books(Http(base, "manager")), Books(Http(base, "clerk"))
    driver1 = Books(Http(base, "driver1"))
    gas = office.http.call("POST", "/api/v1/items", {**GAS, "qty": 0}, 201)["id"]
    piped = office.http.call("POST", "/api/v1/items", {**PIPED, "qty": 0}, 201)["id"]
    receipt = {"to_location": depot, "lines": [{"item": gas, "qty": 40}]}
    office.http.call("POST", "/api/v1/receipts", receipt, 201)
    receipt = {"to_location": depot, "lines": [{"item": piped, "qty": 10_000}]}
    office.http.call("POST", "/api/v1/receipts", receipt, 201)

    # Monday: the loads. Truck 1's arrives whole; two of Truck 2's ten are dented at the gate.
    load1 = office.dispatch(depot, t1, [{"item": gas, "qty": 12}])
    load2 = office.dispatch(depot, t2, [{"item": gas, "qty": 10}])
    assert (load1["number"], load1["status"]) == ("LOAD-000001", "in_transit")
    assert driver1.receive(load1, [{"item": gas, "qty": 12}])["status"] == "received"
    driver2 = Books(Http(base, "driver2"))
    short = driver2.receive(load2, [{"item": gas, "qty": 8, "reason": "two dented at the gate"}])
    assert (short["status"], short["shortage"], short["approval"]) == (
        "received_short",
        "1810.00",
        "pending",  # worth more than the threshold (1000.00)
    )
    driver2.http.call("POST", f"/api/v1/loads/{load2['id']}/approve", expect=403)
    approved = office.http.call("POST", f"/api/v1/loads/{load2['id']}/approve")
    assert (approved["approval"], approved["approved_by"]) == ("approved", "manager")
    body = {"lines": [{"item": gas, "qty": 8}]}
    again = driver2.http.call("POST", f"/api/v1/loads/{load2['id']}/receive", body, 409)
    assert again["code"] == "load_already_received"
    assert (office.stock(gas, depot), office.stock(gas, t1), office.stock(gas, t2)) == (
        {"full": 18},
        {"full": 12},
        {"full": 8},
    )

    # Tuesday, Truck 1 online: Lakshmi Stores exchanges three empties for fulls (no deposit);
    # Ravi Tiffin takes a new connection (a deposit) and pays cash.
    lakshmi = office.http.call("POST", "/api/v1/customers", {"name": "Lakshmi Stores"}, 201)["id"]
    ravi = driver1.http.call("POST", "/api/v1/customers", {"name": "Ravi Tiffin"}, 201)["id"]
    exchange = driver1.sell(lakshmi, t1, [{"item": gas, "qty": 3, "mode": "exchange"}])
    lakshmi_invoice = exchange["invoice"]
    assert (lakshmi_invoice["deposit"], lakshmi_invoice["total"]) == ("0.00", money(3 * CYLINDER))
    new = driver1.sell(ravi, t1, [{"item": gas, "qty": 1, "mode": "new"}])
    assert [line["kind"] for line in new["invoice"]["lines"]] == ["goods", "deposit"]
    assert new["invoice"]["total"] == money(CYLINDER + 1500)
    ravi_paid = driver1.pay(ravi, new["invoice"]["total"], "cash")
    assert ravi_paid["unallocated"] == "0.00"
    assert driver1.stock(gas, t1) == {"full": 8, "empty": 3}

    # Tuesday, Truck 2 offline: a new customer, a new connection and an exchange, cash taken.
    tablet = Tablet(tmp_path / "truck-2.sqlite3", "driver2", "truck-2-tablet")
    tablet.agent(capsys, "status", "--device", tablet.device)
    tablet.record(capsys, "customer.create", {"name": "Bismi Hotel"}, "--temp-id", "temp_bismi")
    for mode, qty, customer in (("new", 2, "temp_bismi"), ("exchange", 1, lakshmi)):
        sale = {
            "customer": customer,
            "location": t2,
            "lines": [{"item": gas, "qty": qty, "mode": mode}],
            "confirm": True,
        }
        tablet.record(capsys, "sale.record", sale)
    payment = {"customer": "temp_bismi", "amount": "2000.00", "method": "cash"}
    tablet.record(capsys, "payment.record", payment)

    out = tablet.sync(capsys, base)

    assert "pushed 4 ops: 4 accepted, 0 rejected" in out, out
    with DeviceStore(tablet.db) as store:  # the tablet learned the customer's id
        bismi = store.resolve("temp_bismi")
    assert bismi is not None
    assert office.http.call("GET", f"/api/v1/customers/{bismi}")["name"] == "Bismi Hotel"
    assert office.stock(gas, t2) == {"full": 5, "empty": 1}
    # Deposits are owed back: held per customer, not revenue.
    for customer, held in ((ravi, "1500.00"), (bismi, "3000.00"), (lakshmi, "0.00")):
        assert office.http.call("GET", f"/api/v1/customers/{customer}/deposits")["balance"] == held
    bismi_owes = 2 * CYLINDER + 3000 - 2000
    assert office.statement(bismi)["balance"] == money(bismi_owes)

    # Wednesday: the empties go back to the depot, to the filling plant, and come back full.
    back1 = driver1.dispatch(t1, depot, [{"item": gas, "qty": 3, "condition": "empty"}])
    back2 = driver2.dispatch(t2, depot, [{"item": gas, "qty": 1, "condition": "empty"}])
    for load, qty in ((back1, 3), (back2, 1)):
        assert clerk.receive(load, [{"item": gas, "qty": qty}])["status"] == "received"
    assert office.stock(gas, depot) == {"full": 18, "empty": 4}
    body = {"from_location": depot, "lines": [{"item": gas, "qty": 4}]}
    refill = clerk.http.call("POST", "/api/v1/refills", body, 201)
    assert (refill["number"], refill["status"]) == ("RFL-000001", "sent")
    assert office.stock(gas, depot) == {"full": 18, "empty": 0}
    body = {"lines": [{"item": gas, "qty": 4}]}
    refilled = clerk.http.call("POST", f"/api/v1/refills/{refill['id']}/receive", body)
    assert refilled["status"] == "received"
    assert office.stock(gas, depot) == {"full": 22, "empty": 0}

    # Thursday: Hotel Saravana's meter, 2.50 a unit; 1000 last month, 1120 today.
    saravana = office.http.call("POST", "/api/v1/customers", {"name": "Hotel Saravana"}, 201)["id"]
    terms = {"meter_installed": True, "meter_rate": "2.50"}
    office.http.call("PATCH", f"/api/v1/customers/{saravana}", terms)
    path = f"/api/v1/customers/{saravana}/meter-readings"
    assert clerk.http.call("POST", path, {"reading": 1000}, 201)["previous"] is None
    clerk.http.call("POST", path, {"reading": 900}, 400)  # below the last, no replacement
    metered = clerk.sell(saravana, depot, [{"item": piped, "meter_reading": 1120}])
    line = metered["invoice"]["lines"][0]
    assert (line["qty"], line["unit_price"], line["total"]) == (120, "2.50", "300.00")
    assert metered["lines"][0]["meter_reading"] == 1120
    assert office.stock(piped, depot) == {"": 10_000 - 120}

    # Friday: Annapoorna Hotel buys on credit up to 3000.00.
    annapoorna = office.http.call("POST", "/api/v1/customers", {"name": "Annapoorna"}, 201)["id"]
    terms = {"payment_terms": "credit", "credit_limit": "3000.00"}
    office.http.call("PATCH", f"/api/v1/customers/{annapoorna}", terms)
    two = [{"item": gas, "qty": 2, "mode": "exchange"}]
    first = driver1.sell(annapoorna, t1, two)["invoice"]
    refused = driver1.sell(annapoorna, t1, two, expect=409)
    assert refused["code"] == "credit_limit_exceeded"
    second = office.sell(annapoorna, t1, two)["invoice"]  # the manager records it
    assert office.statement(annapoorna)["balance"] == money(4 * CYLINDER)
    # A part payment in cash pays into the oldest invoice.
    part = driver1.pay(annapoorna, "1000.00", "cash")
    assert [(a["invoice"], a["amount"]) for a in part["allocations"]] == [(first["id"], "1000.00")]
    assert office.invoice(first["id"])["payment_status"] == "open"
    # A cheque for more than is owed: both invoices paid, the rest is credit.
    over = driver1.pay(annapoorna, "4000.00", "cheque")
    credit = 1000 + 4000 - 4 * CYLINDER
    assert over["unallocated"] == money(credit)
    assert [office.invoice(i["id"])["payment_status"] for i in (first, second)] == ["paid"] * 2
    shown = office.statement(annapoorna)
    assert (shown["balance"], shown["credit"]) == (money(-credit), money(credit))
    # The credit pays the next cylinder; what is left is refunded, and no more than that.
    third = driver1.sell(annapoorna, t1, [{"item": gas, "qty": 1, "mode": "exchange"}])["invoice"]
    assert office.invoice(third["id"])["payment_status"] == "paid"
    left = credit - CYLINDER
    refund = {"customer": annapoorna, "amount": money(left + 1), "method": "bank_transfer"}
    too_much = office.http.call("POST", "/api/v1/refunds", refund, 409)
    assert too_much["code"] == "refund_exceeds_credit"
    refund["amount"] = money(left)
    assert office.http.call("POST", "/api/v1/refunds", refund, 201)["amount"] == money(left)
    shown = office.statement(annapoorna)
    assert (shown["balance"], shown["credit"], shown["open_items"]) == ("0.00", "0.00", [])
    assert driver1.stock(gas, t1) == {"full": 3, "empty": 5}

    # Saturday: Lakshmi's invoice is e-mailed; the outbox worker hands it to the SMTP server.
    email = {"to": "lakshmi@stores.example"}
    path = f"/api/v1/invoices/{lakshmi_invoice['id']}/email"
    assert office.http.call("POST", path, email, 202)["status"] == "queued"
    assert office.invoice(lakshmi_invoice["id"])["email_status"] == "generated"

    lines = work(capsys)

    assert lines[-1] == "outbox: 1 sent, 0 retried, 0 failed", lines
    [mail] = smtp.received
    number = lakshmi_invoice["number"]
    assert (mail.recipients, mail.message["Subject"]) == ([email["to"]], f"Invoice {number}")
    [attachment] = list(mail.message.iter_attachments())
    pdf = attachment.get_content()
    assert (attachment.get_filename(), attachment.get_content_type()) == (
        f"{number}.pdf",
        "application/pdf",
    )
    assert pdf.startswith(b"%PDF") and number in pdf_text(pdf)
    assert office.invoice(lakshmi_invoice["id"])["email_status"] == "emailed"

    # Saturday evening: each truck is counted. Truck 1 is an empty short (left at Annapoorna),
    # its money all there; Truck 2's cylinders are all there, 50.00 of its cash is not.
    # Bismi paid 500.00 more as the truck came in; the tablet had no signal and kept it.
    late = {"customer": bismi, "amount": "500.00", "method": "cash"}
    tablet.record(capsys, "payment.record", late)
    today = datetime.now(day_zone()).date().isoformat()
    day1 = driver1.http.call(
        "POST",
        "/api/v1/day-ends",
        {
            "location": t1,
            "date": today,
            "counted": [
                {"item": gas, "condition": "full", "qty": 3},
                {"item": gas, "condition": "empty", "qty": 4, "reason": "left at Annapoorna"},
            ],
            "cash_handed_in": money(CYLINDER + 1500 + 1000),
            "cheques_handed_in": "4000.00",
        },
        201,
    )
    day2 = driver2.http.call(
        "POST",
        "/api/v1/day-ends",
        {
            "location": t2,
            "date": today,
            "counted": [{"item": gas, "condition": "full", "qty": 5}],
            "cash_handed_in": "1950.00",
            "cheques_handed_in": "0.00",
        },
        201,
    )
    assert (day1["status"], day2["status"]) == ("open", "open")
    [short1] = day1["differences"]
    [short2] = day2["differences"]
    assert (short1["kind"], short1["condition"], short1["difference"]) == ("stock", "empty", -1)
    assert (short2["kind"], short2["difference"]) == ("cash", "-50.00")
    assert sorted((row["condition"], row["qty"]) for row in day1["expected"]["stock"]) == [
        ("empty", 5),
        ("full", 3),
    ]
    assert day1["expected"]["cash"] == money(CYLINDER + 1500 + 1000)
    assert (day1["expected"]["cheques"], day2["expected"]["cash"]) == ("4000.00", "2000.00")
    driver1.http.call("POST", f"/api/v1/day-ends/{day1['id']}/approve", expect=403)
    closed1 = office.http.call("POST", f"/api/v1/day-ends/{day1['id']}/approve")
    closed2 = office.http.call("POST", f"/api/v1/day-ends/{day2['id']}/approve")
    assert (closed1["status"], closed2["status"]) == ("closed", "closed")
    assert closed1["loss_movement"] and closed1["journal_entry"] is None
    assert closed2["loss_movement"] is None and closed2["journal_entry"]
    assert office.stock(gas, t1) == {"full": 3, "empty": 4}
    assert office.stock(gas, t2) == {"full": 5, "empty": 0}
    # The tablet syncs after the close: the payment is taken, booked now and flagged for a
    # review; the closed day's figures stay as they were counted.
    assert "pushed 1 ops: 1 accepted, 0 rejected" in tablet.sync(capsys, base)
    closed = office.http.call("GET", f"/api/v1/day-ends/{day2['id']}")
    [listed] = closed["late_ops"]
    assert (listed["action"], listed["actor"], listed["review"]) == (
        "payment.record",
        "driver2",
        True,
    )
    assert (closed["status"], closed["expected"]["cash"]) == ("closed", "2000.00")
    assert office.statement(bismi)["balance"] == money(bismi_owes - 500)
    shortages = office.http.call("GET", "/api/v1/journal/entries?account=shortages")["results"]
    assert [line["debit"] for e in shortages for line in e["lines"]] == ["50.00", "0.00"]

    # The books agree, as the operators check them.
    assert office.http.call("GET", "/api/v1/audit/verify")["ok"] is True
    assert cli.main(["journal", "verify"]) == 0
    assert cli.main(["audit", "verify", "--state"]) == 0
    # Each table's reader compares what was sealed: a row edited behind the pipeline is named.
    assert_each_edit_is_caught(
        capsys,
        [
            Edit("refund", "sales_refund", "amount_minor = amount_minor * 10"),
            Edit("allocation", "sales_allocation", "amount_minor = amount_minor + 100"),
            Edit("customer_deposit", "sales_depositmovement", "qty = qty + 1"),
            Edit("meter_reading", "sales_meterreading", "reading = reading + 7"),
            Edit("invoice_email", "sales_invoice", "emailed_at = '2000-01-01 00:00:00'"),
            Edit("movement", "inventory_movement", "reason = 'tampered'"),
            Edit("load", "distribution_load", "shortage_minor = shortage_minor + 100"),
            Edit("refill", "distribution_refill", "sent_by = 'mallory'"),
            Edit("day_end", "dayend_dayend", "cash_handed_in_minor = cash_handed_in_minor + 100"),
        ],
    )
    assert cli.main(["stock", "rebuild", "--check"]) == 0
