"""Credit limits and credit balances under real concurrency on PostgreSQL: threads, each with
its own connection, race for the same customer's limit or credit."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.test import Client

from quartermaster import cli
from tests.conftest import Api, create_user, login
from tests.ledger_helpers import make_customer, make_item, ok, sell
from tests.sales.test_concurrency import boss, fresh_locations, run_together  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_two_credit_sales_that_fit_the_limit_alone_but_not_together(
    boss: Api,  # noqa: F811
    fresh_locations: str,  # noqa: F811
) -> None:
    from quartermaster.sales.models import CustomerAccount, Invoice

    depot = fresh_locations
    gas = make_item(boss, "gas", 10, price="600.00")
    customer = make_customer(boss)["id"]
    ok(boss.patch(f"/api/v1/customers/{customer}", {"credit_limit": "1000.00"}), 200)
    create_user("driver", "staff", locations=(depot,))
    token = login("driver")["access"]

    def buy() -> Any:
        return sell(Api(Client(), token), customer, depot, [{"item": gas, "qty": 1}])

    replies = run_together([buy, buy])

    assert Counter(getattr(r, "status", repr(r)) for r in replies) == {201: 1, 409: 1}
    assert {r.body["code"] for r in replies if r.status == 409} == {"credit_limit_exceeded"}
    assert Invoice.objects.count() == 1
    assert CustomerAccount.objects.get(pk=customer).balance_minor == 60_000
    assert cli.main(["journal", "verify"]) == 0


def test_two_refunds_of_the_same_credit_pay_it_back_once(
    boss: Api,  # noqa: F811
    fresh_locations: str,  # noqa: F811
) -> None:
    from quartermaster.sales.models import CustomerAccount, Refund

    customer = make_customer(boss)["id"]
    ok(boss.post("/api/v1/payments", {"customer": customer, "amount": "500.00", "method": "cash"}))
    token = boss.token

    def refund() -> Any:
        return Api(Client(), token).post(
            "/api/v1/refunds", {"customer": customer, "amount": "400.00", "method": "cash"}
        )

    replies = run_together([refund, refund])

    assert Counter(getattr(r, "status", repr(r)) for r in replies) == {201: 1, 409: 1}
    assert Refund.objects.count() == 1
    account = CustomerAccount.objects.get(pk=customer)
    assert (account.balance_minor, account.credit_minor) == (-10_000, 10_000)
    assert cli.main(["journal", "verify"]) == 0


def test_sales_payments_and_refunds_of_one_customer_at_once_queue_and_agree(
    boss: Api,  # noqa: F811
    fresh_locations: str,  # noqa: F811
) -> None:
    from quartermaster.core.money import parse_money
    from quartermaster.sales.models import CustomerAccount

    depot = fresh_locations
    gas = make_item(boss, "gas", 20, price="100.00")
    customer = make_customer(boss)["id"]
    ok(boss.post("/api/v1/payments", {"customer": customer, "amount": "300.00", "method": "cash"}))
    token = boss.token

    def buy() -> Any:
        return sell(Api(Client(), token), customer, depot, [{"item": gas, "qty": 1}])

    def pay() -> Any:
        return Api(Client(), token).post(
            "/api/v1/payments", {"customer": customer, "amount": "150.00", "method": "upi"}
        )

    def refund() -> Any:
        return Api(Client(), token).post(
            "/api/v1/refunds", {"customer": customer, "amount": "10.00", "method": "cash"}
        )

    replies = run_together([buy, pay, buy, refund, buy, pay])

    assert [getattr(r, "status", repr(r)) for r in replies] == [201] * 6
    account = CustomerAccount.objects.get(pk=customer)
    # 3 x 100 owed, 300 + 2 x 150 paid, 10 refunded
    assert account.balance_minor == 30_000 - 60_000 + 1_000
    shown = ok(boss.get(f"/api/v1/customers/{customer}/statement"), 200)
    assert parse_money(shown["balance"]) == account.balance_minor
    assert parse_money(shown["credit"]) == account.credit_minor == 29_000
    assert shown["open_items"] == []
    assert cli.main(["journal", "verify"]) == 0
