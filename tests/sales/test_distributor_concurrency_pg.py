"""Real concurrency on PostgreSQL for the distributor's sales: exchanges racing for the last
fulls (and opening the customer's journal accounts at once) leave the stock, the deposits and
the journal exactly as if they had run one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from quartermaster.cli import main as cli_main
from quartermaster.journal.selectors import balances_of, verify_journal
from tests.conftest import Api, create_user, login
from tests.ledger_helpers import ledger_agrees, make_customer, make_item, ok, receive, sell
from tests.sales.test_concurrency import run_together

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def depot() -> str:
    from quartermaster.inventory.models import Location

    for name, kind in (
        ("(supplier)", "supplier"),
        ("(consumed)", "consumed"),
        ("(loss)", "loss"),
        ("(in transit)", "in_transit"),
        ("(filling plant)", "filling_plant"),
    ):
        Location.objects.get_or_create(name=name, defaults={"kind": kind})
    found, _ = Location.objects.get_or_create(
        is_default=True, defaults={"name": "Main depot", "kind": "depot"}
    )
    return str(found.id)


def test_8_exchanges_and_new_connections_race_for_the_last_5_fulls(depot: str) -> None:
    create_user("boss", "manager")
    boss = Api(Client(), login("boss")["access"])
    gas = make_item(boss, "LPG", price="900.00", deposit="1500.00", returnable=True)
    receive(boss, depot, [{"item": gas, "qty": 5}])
    customer = make_customer(boss)["id"]
    token = boss.token

    def sale(mode: str) -> Callable[[], Any]:
        def run() -> Any:
            reply = sell(
                Api(Client(), token), customer, depot, [{"item": gas, "qty": 1, "mode": mode}]
            )
            return reply.status

        return run

    results = run_together([sale("exchange" if i % 2 else "new") for i in range(8)])

    assert Counter(results) == {201: 5, 409: 3}, results
    found = ok(boss.get(f"/api/v1/stock?item={gas}&location={depot}"), 200)
    by_condition = {row["condition"]: row["qty"] for row in found}
    assert by_condition["full"] == 0
    deposits = ok(boss.get(f"/api/v1/customers/{customer}/deposits"), 200)
    held = deposits["lines"][0]["qty"] if deposits["lines"] else 0
    assert by_condition.get("empty", 0) == 5 - held
    balances = balances_of([f"customer_receivable:{customer}", f"customer_deposits:{customer}"])
    assert balances[f"customer_receivable:{customer}"] == 5 * 90000 + held * 150000
    assert -balances.get(f"customer_deposits:{customer}", 0) == held * 150000
    assert verify_journal().ok
    assert ledger_agrees() == []
    assert cli_main(["stock", "rebuild", "--check"]) == 0
