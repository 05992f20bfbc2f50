"""Full and empty cylinders, the refill cycle and deposits (issue 12 items 2-3, API.md
"Distributor"), and sales money in the journal: every step through HTTP (and sync ops), each
followed by `journal verify` and `stock rebuild --check`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quartermaster.cli import main as cli_main
from quartermaster.inventory.invariants import LocationKind
from quartermaster.inventory.models import Location, Movement
from quartermaster.journal.selectors import balances_of, verify_journal
from quartermaster.sales.models import DepositMovement
from tests.conftest import Api
from tests.ledger_helpers import counts, make_customer, make_item, make_location, ok, receive, sell
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def depot(default_location_id: str) -> str:
    return default_location_id


@pytest.fixture
def gas(manager: Api) -> str:
    """A bulk returnable cylinder: 900.00 of gas, 5 % tax, a 1500.00 deposit."""
    return make_item(
        manager,
        "14.2 kg LPG",
        price="900.00",
        tax_rate_bp=500,
        deposit="1500.00",
        returnable=True,
    )


def rows(api: Api, item: str, location: str) -> dict[str, int]:
    """The item's stock at the location, by condition."""
    found = ok(api.get(f"/api/v1/stock?item={item}&location={location}"), 200)
    return {row.get("condition", ""): row["qty"] for row in found}


def books_agree() -> None:
    """The journal balances and the stock projection is the ledger, as the operators check."""
    assert verify_journal().ok
    assert cli_main(["journal", "verify"]) == 0
    assert cli_main(["stock", "rebuild", "--check"]) == 0
    # The chain is whole and every audited table reads as its last audit entry says.
    assert cli_main(["audit", "verify", "--state"]) == 0


def balance(code: str) -> int:
    """Debits less credits, in minor units (0 for an account never used)."""
    return balances_of([code]).get(code, 0)


def deposits(api: Api, customer: str) -> dict[str, Any]:
    return ok(api.get(f"/api/v1/customers/{customer}/deposits"), 200)


def test_a_returnable_items_stock_is_held_per_condition(manager: Api, gas: str, depot: str) -> None:
    truck = make_location(manager, "Truck 7")
    receive(
        manager, depot, [{"item": gas, "qty": 10}, {"item": gas, "qty": 4, "condition": "empty"}]
    )

    load = ok(
        manager.post(
            "/api/v1/loads",
            {
                "from_location": depot,
                "to_location": truck,
                "lines": [{"item": gas, "qty": 3, "condition": "empty"}],
            },
        )
    )
    ok(
        manager.post(f"/api/v1/loads/{load['id']}/receive", {"lines": [{"item": gas, "qty": 3}]}),
        200,
    )

    assert rows(manager, gas, depot) == {"full": 10, "empty": 1}
    assert rows(manager, gas, truck) == {"empty": 3}
    assert load["lines"][0]["condition"] == "empty"
    # The item's qty is its sellable (full) stock.
    assert ok(manager.get(f"/api/v1/items/{gas}"), 200)["qty"] == 10
    plain = make_item(manager, "regulator", qty=2)
    assert ok(manager.get(f"/api/v1/stock?item={plain}"), 200)[0].keys() == {
        "item",
        "location",
        "qty",
    }
    refused = manager.post(
        "/api/v1/receipts",
        {"to_location": depot, "lines": [{"item": plain, "qty": 1, "condition": "empty"}]},
    )
    assert (refused.status, list(refused.body["fields"])) == (400, ["lines[0].condition"])
    books_agree()


def test_an_exchange_takes_the_empty_back_and_charges_no_deposit(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 5}])
    customer = make_customer(manager)["id"]

    sale = ok(sell(manager, customer, depot, [{"item": gas, "qty": 2, "mode": "exchange"}]))

    invoice = sale["invoice"]
    assert [line["kind"] for line in invoice["lines"]] == ["goods"]
    assert (invoice["subtotal"], invoice["tax"], invoice["deposit"], invoice["total"]) == (
        "1800.00",
        "90.00",
        "0.00",
        "1890.00",
    )
    assert sale["lines"][0]["mode"] == "exchange"
    assert rows(manager, gas, depot) == {"full": 3, "empty": 2}
    assert deposits(manager, customer) == {"customer": customer, "balance": "0.00", "lines": []}
    assert balance(f"customer_receivable:{customer}") == 189000
    assert balance("sales_revenue") == -180000
    assert balance("tax_payable") == -9000
    books_agree()


def test_a_new_connection_charges_a_deposit_held_as_a_liability(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 5}])
    customer = make_customer(manager)["id"]

    sale = ok(sell(manager, customer, depot, [{"item": gas, "qty": 2, "mode": "new"}]))

    invoice = sale["invoice"]
    assert [line["kind"] for line in invoice["lines"]] == ["goods", "deposit"]
    assert (invoice["deposit"], invoice["total"]) == ("3000.00", "4890.00")
    assert deposits(manager, customer) == {
        "customer": customer,
        "balance": "3000.00",
        "lines": [{"item": gas, "qty": 2, "amount": "3000.00"}],
    }
    # A deposit is owed back: a credit balance on the customer's deposits, not revenue.
    assert balance(f"customer_deposits:{customer}") == -300000
    assert balance("sales_revenue") == -180000
    assert balance(f"customer_receivable:{customer}") == 489000
    assert rows(manager, gas, depot) == {"full": 3}
    books_agree()


def test_a_mode_is_for_returnable_items_only(manager: Api, depot: str) -> None:
    plain = make_item(manager, "regulator", qty=2)
    customer = make_customer(manager)["id"]
    before = counts()

    reply = sell(manager, customer, depot, [{"item": plain, "qty": 1, "mode": "exchange"}])
    unknown = sell(manager, customer, depot, [{"item": plain, "qty": 1, "mode": "gift"}])

    assert (reply.status, list(reply.body["fields"])) == (400, ["lines[0].mode"])
    assert (unknown.status, list(unknown.body["fields"])) == (400, ["lines[0].mode"])
    assert counts() == before


@pytest.mark.parametrize(("refund", "to_account"), [("cash", "cash"), ("credit", "receivable")])
def test_a_return_brings_the_empties_back_and_refunds_the_deposit(
    manager: Api, gas: str, depot: str, refund: str, to_account: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 5}])
    customer = make_customer(manager)["id"]
    ok(sell(manager, customer, depot, [{"item": gas, "qty": 2, "mode": "new"}]))
    receivable = balance(f"customer_receivable:{customer}")

    returned = ok(
        manager.post(
            "/api/v1/returns",
            {
                "customer": customer,
                "location": depot,
                "lines": [{"item": gas, "qty": 1}],
                "refund": refund,
            },
        )
    )

    assert (returned["refund"], returned["refund_method"]) == ("1500.00", refund)
    assert rows(manager, gas, depot) == {"full": 3, "empty": 1}
    assert deposits(manager, customer)["lines"] == [{"item": gas, "qty": 1, "amount": "1500.00"}]
    assert balance(f"customer_deposits:{customer}") == -150000
    if to_account == "cash":
        assert balance("cash") == -150000
        assert balance(f"customer_receivable:{customer}") == receivable
        assert returned["credit_note"] is None
    else:
        assert balance("cash") == 0
        assert balance(f"customer_receivable:{customer}") == receivable - 150000
        assert returned["credit_note"]["total"] == "1500.00"
    books_agree()


def test_a_return_of_more_than_the_customer_holds_is_refused(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 5}])
    customer = make_customer(manager)["id"]
    ok(sell(manager, customer, depot, [{"item": gas, "qty": 1, "mode": "new"}]))
    before = counts()

    reply = manager.post(
        "/api/v1/returns",
        {"customer": customer, "location": depot, "lines": [{"item": gas, "qty": 2}]},
    )
    bad_refund = manager.post(
        "/api/v1/returns",
        {
            "customer": customer,
            "location": depot,
            "lines": [{"item": gas, "qty": 1}],
            "refund": "cheque",
        },
    )

    assert (reply.status, reply.body["code"]) == (409, "insufficient_stock")
    assert (bad_refund.status, list(bad_refund.body["fields"])) == (400, ["refund"])
    assert counts() == before
    books_agree()


def test_an_empty_is_refilled_and_sold_again_and_a_short_refill_is_a_loss(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 3}])
    customer = make_customer(manager)["id"]
    ok(sell(manager, customer, depot, [{"item": gas, "qty": 3, "mode": "exchange"}]))
    assert rows(manager, gas, depot) == {"full": 0, "empty": 3}

    refill = ok(
        manager.post(
            "/api/v1/refills", {"from_location": depot, "lines": [{"item": gas, "qty": 3}]}
        )
    )
    plant = str(Location.objects.get(kind=LocationKind.FILLING_PLANT).pk)
    assert (refill["number"], refill["status"]) == ("RFL-000001", "sent")
    assert rows(manager, gas, depot) == {"full": 0, "empty": 0}
    assert rows(manager, gas, plant) == {"empty": 3}
    path = f"/api/v1/refills/{refill['id']}/receive"
    no_reason = manager.post(path, {"lines": [{"item": gas, "qty": 2}]})
    assert (no_reason.status, list(no_reason.body["fields"])) == (400, ["lines[0].reason"])

    received = ok(
        manager.post(
            path, {"lines": [{"item": gas, "qty": 2, "reason": "one failed the leak test"}]}
        ),
        200,
    )

    assert received["status"] == "received_short"
    assert received["lines"][0] == {
        "item": gas,
        "qty": 3,
        "serials": [],
        "received_qty": 2,
        "received_serials": [],
        "reason": "one failed the leak test",
    }
    assert rows(manager, gas, depot) == {"full": 2, "empty": 0}
    assert rows(manager, gas, plant) == {"empty": 0}
    loss = Movement.objects.get(reference="refill:RFL-000001", kind="adjustment")
    assert "one failed the leak test" in loss.reason
    again = manager.post(path, {"lines": [{"item": gas, "qty": 2, "reason": "x"}]})
    assert (again.status, again.body["code"]) == (409, "refill_already_received")
    # The refilled empties are sold again.
    ok(sell(manager, customer, depot, [{"item": gas, "qty": 2, "mode": "exchange"}]))
    assert rows(manager, gas, depot) == {"full": 0, "empty": 2}
    books_agree()


def test_a_refill_is_of_returnable_empties_at_the_senders_location(
    manager: Api, make_api: Callable[..., Api], gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 3}])
    plain = make_item(manager, "regulator", qty=2)
    driver = make_api("staff", "driver", locations=(make_location(manager, "Truck 9"),))
    before = counts()

    no_empties = manager.post(
        "/api/v1/refills", {"from_location": depot, "lines": [{"item": gas, "qty": 1}]}
    )
    not_returnable = manager.post(
        "/api/v1/refills", {"from_location": depot, "lines": [{"item": plain, "qty": 1}]}
    )
    elsewhere = driver.post(
        "/api/v1/refills", {"from_location": depot, "lines": [{"item": gas, "qty": 1}]}
    )

    assert (no_empties.status, no_empties.body["code"]) == (409, "insufficient_stock")
    assert (not_returnable.status, list(not_returnable.body["fields"])) == (400, ["lines[0].item"])
    assert elsewhere.status == 404
    assert counts() == before


def test_voiding_an_exchange_reverses_its_stock_and_its_entry(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 2}])
    customer = make_customer(manager)["id"]
    sale = ok(sell(manager, customer, depot, [{"item": gas, "qty": 1, "mode": "new"}]))

    ok(manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "wrong customer"}), 200)

    assert rows(manager, gas, depot) == {"full": 2}
    assert balance(f"customer_receivable:{customer}") == 0
    assert balance(f"customer_deposits:{customer}") == 0
    assert balance("sales_revenue") == 0
    assert deposits(manager, customer)["balance"] == "0.00"
    books_agree()


def test_a_void_of_an_exchange_gives_the_customer_back_the_empty(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 2}])
    customer = make_customer(manager)
    sale = ok(sell(manager, customer["id"], depot, [{"item": gas, "qty": 1, "mode": "exchange"}]))

    ok(manager.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "typo"}), 200)

    assert rows(manager, gas, depot) == {"full": 2, "empty": 0}
    assert rows(manager, gas, customer["site"]) == {"full": 0}
    books_agree()


def test_a_payment_posts_to_the_method_account_and_off_the_receivable(
    manager: Api, gas: str, depot: str
) -> None:
    receive(manager, depot, [{"item": gas, "qty": 2}])
    customer = make_customer(manager)["id"]
    ok(sell(manager, customer, depot, [{"item": gas, "qty": 1, "mode": "exchange"}]))

    for amount, method in (("500.00", "cash"), ("300.00", "cheque"), ("100.00", "upi")):
        body = {"customer": customer, "amount": amount, "method": method}
        ok(manager.post("/api/v1/payments", body))

    assert (balance("cash"), balance("cheques"), balance("bank")) == (50000, 30000, 10000)
    assert balance(f"customer_receivable:{customer}") == 94500 - 90000
    books_agree()


def test_a_draft_confirmed_later_posts_when_confirmed(manager: Api, gas: str, depot: str) -> None:
    receive(manager, depot, [{"item": gas, "qty": 2}])
    customer = make_customer(manager)["id"]
    draft = ok(
        sell(manager, customer, depot, [{"item": gas, "qty": 1, "mode": "new"}], confirm=False)
    )
    assert balance(f"customer_receivable:{customer}") == 0

    ok(manager.post(f"/api/v1/transactions/{draft['id']}/confirm"), 200)

    assert balance(f"customer_receivable:{customer}") == 94500 + 150000
    assert deposits(manager, customer)["balance"] == "1500.00"
    books_agree()


def test_serialized_cylinders_exchange_by_serial(manager: Api, depot: str) -> None:
    cylinder = make_item(
        manager, "19 kg LPG", tracking="serial", price="1800.00", deposit="2000.00", returnable=True
    )
    receive(manager, depot, [{"item": cylinder, "qty": 2, "serials": ["C1", "C2"]}])
    customer = make_customer(manager)["id"]
    ok(
        sell(
            manager,
            customer,
            depot,
            [{"item": cylinder, "qty": 1, "serials": ["C1"], "mode": "new"}],
        )
    )
    unnamed = sell(
        manager,
        customer,
        depot,
        [{"item": cylinder, "qty": 1, "serials": ["C2"], "mode": "exchange"}],
    )
    assert (unnamed.status, list(unnamed.body["fields"])) == (400, ["lines[0].returned_serials"])

    ok(
        sell(
            manager,
            customer,
            depot,
            [
                {
                    "item": cylinder,
                    "qty": 1,
                    "serials": ["C2"],
                    "mode": "exchange",
                    "returned_serials": ["C1"],
                }
            ],
        )
    )

    found = ok(manager.get(f"/api/v1/assets?item={cylinder}"), 200)
    states = {a["serial"]: (a["location"] == depot, a["state"], a["customer"]) for a in found}
    assert states == {"C1": (True, "empty", None), "C2": (False, "full", customer)}
    assert rows(manager, cylinder, depot) == {"full": 0, "empty": 1}
    assert deposits(manager, customer)["balance"] == "2000.00"
    books_agree()


def test_the_same_work_arrives_as_sync_ops(manager: Api, gas: str, depot: str) -> None:
    receive(manager, depot, [{"item": gas, "qty": 4}])
    reply = send(
        manager,
        [
            op("customer.create", {"name": "Ravi Tiffin"}, client_temp_id="temp_c"),
            op(
                "sale.record",
                {
                    "customer": "temp_c",
                    "location": depot,
                    "lines": [{"item": gas, "qty": 1, "mode": "new"}],
                    "confirm": True,
                },
            ),
            op(
                "sale.record",
                {
                    "customer": "temp_c",
                    "location": depot,
                    "lines": [{"item": gas, "qty": 1, "mode": "exchange"}],
                    "confirm": True,
                },
            ),
            op(
                "asset.return",
                {
                    "customer": "temp_c",
                    "location": depot,
                    "lines": [{"item": gas, "qty": 1}],
                    "refund": "cash",
                },
            ),
            op(
                "refill.send",
                {"from_location": depot, "lines": [{"item": gas, "qty": 2}]},
                client_temp_id="temp_r",
            ),
            op("refill.receive", {"refill": "temp_r", "lines": [{"item": gas, "qty": 2}]}),
            op("payment.record", {"customer": "temp_c", "amount": "945.00", "method": "cash"}),
        ],
    )

    assert statuses(reply) == [201, 201, 201, 201, 201, 200, 201], reply.body
    customer = reply.body["results"][0]["id_map"]["temp_c"]
    assert deposits(manager, customer)["balance"] == "0.00"
    assert rows(manager, gas, depot) == {"full": 4, "empty": 0}
    assert DepositMovement.objects.filter(customer_id=customer).count() == 2
    books_agree()


def test_running_out_of_empties_is_no_out_of_stock_event() -> None:
    from uuid import uuid4

    from quartermaster.core.types import Change
    from quartermaster.inventory.events import out_of_stock_events
    from quartermaster.inventory.selectors import stock_view

    item, location = uuid4(), uuid4()

    def change(condition: str) -> Change:
        before, after = (stock_view(item, location, qty, condition) for qty in (3, 0))
        return Change("stock", before.key, before, after, None, location)

    events = out_of_stock_events([change("empty"), change("full")])

    assert [(event.name, event.detail) for event in events] == [
        ("out_of_stock", {"item": str(item)})
    ]
