"""Real concurrency on PostgreSQL: threads, each with its own connection, race for stock.

Transactional tests with serialized_rollback (like the other PostgreSQL suites: mixing the two
kinds breaks the content-type reload); `fresh_locations` still makes sure the default and
virtual locations exist.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from tests.conftest import Api, create_user, login
from tests.ledger_helpers import ledger_agrees, make_customer, make_item, ok, sell, stock

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture
def fresh_locations() -> str:
    from quartermaster.inventory.models import Location

    for name, kind in (("(supplier)", "supplier"), ("(consumed)", "consumed"), ("(loss)", "loss")):
        Location.objects.get_or_create(name=name, defaults={"kind": kind})
    depot, _ = Location.objects.get_or_create(
        is_default=True, defaults={"name": "Main depot", "kind": "depot"}
    )
    return str(depot.id)


@pytest.fixture
def boss(fresh_locations: str) -> Api:
    create_user("boss", "manager")
    return Api(Client(), login("boss")["access"])


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start every call at the same instant on its own thread (and connection); return results."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = calls[index]()
        except Exception as exc:  # surfaced by the assertions below
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_16_concurrent_confirms_for_the_last_10_units(boss: Api, fresh_locations: str) -> None:
    from quartermaster.sales.models import Invoice, SaleTransaction

    depot = fresh_locations
    gas = make_item(boss, "gas", 10, price="905.00")
    customer = make_customer(boss)
    drafts = [
        ok(sell(boss, customer["id"], depot, [{"item": gas, "qty": 1}], confirm=False))["id"]
        for _ in range(16)
    ]
    token = boss.token

    def confirm(sale_id: str) -> Callable[[], Any]:
        return lambda: Api(Client(), token).post(f"/api/v1/transactions/{sale_id}/confirm")

    replies = run_together([confirm(sale_id) for sale_id in drafts])

    statuses = Counter(getattr(r, "status", repr(r)) for r in replies)
    assert statuses == {200: 10, 409: 6}
    assert {r.body["code"] for r in replies if r.status == 409} == {"insufficient_stock"}
    assert stock(boss, gas, depot) == 0
    assert SaleTransaction.objects.filter(status="confirmed").count() == 10
    assert Invoice.objects.count() == 10
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:06d}" for n in range(1, 11)]
    assert ledger_agrees() == []
    assert ok(boss.get("/api/v1/audit/verify"), 200)["ok"] is True


def test_16_concurrent_record_and_confirm_posts_for_the_last_10_units(
    boss: Api, fresh_locations: str
) -> None:
    from quartermaster.inventory.models import Stock
    from quartermaster.sales.models import Invoice, SaleTransaction

    depot = fresh_locations
    gas = make_item(boss, "gas", 10)
    customer = make_customer(boss)
    token = boss.token

    def buy() -> Any:
        return sell(Api(Client(), token), customer["id"], depot, [{"item": gas, "qty": 1}])

    replies = run_together([buy for _ in range(16)])

    assert Counter(getattr(r, "status", repr(r)) for r in replies) == {201: 10, 409: 6}
    assert Stock.objects.filter(qty__lt=0).count() == 0
    assert SaleTransaction.objects.count() == 10  # failed sales left no draft behind
    assert Invoice.objects.count() == 10
    assert sorted(SaleTransaction.objects.values_list("number", flat=True)) == [
        f"TRX-{n:06d}" for n in range(1, 11)
    ]
    assert ledger_agrees() == []


def test_multi_line_sales_in_opposite_line_order_never_deadlock(
    boss: Api, fresh_locations: str
) -> None:
    depot = fresh_locations
    first = make_item(boss, "first", 1000)
    second = make_item(boss, "second", 1000)
    customer = make_customer(boss)
    token = boss.token
    forward = [{"item": first, "qty": 1}, {"item": second, "qty": 1}]
    backward = list(reversed(forward))

    # Drafts first: recording takes the TRX number, which would serialize the race away.
    def drafts(lines: list[dict[str, Any]]) -> list[str]:
        return [
            ok(sell(boss, customer["id"], depot, lines, confirm=False))["id"] for _ in range(15)
        ]

    def confirm_all(sale_ids: list[str]) -> Callable[[], list[int]]:
        def run() -> list[int]:
            api = Api(Client(), token)
            return [api.post(f"/api/v1/transactions/{s}/confirm").status for s in sale_ids]

        return run

    results = run_together([confirm_all(drafts(forward if n % 2 else backward)) for n in range(8)])

    assert all(isinstance(r, list) for r in results), results
    assert Counter(status for r in results for status in r) == {200: 120}
    assert stock(boss, first, depot) == 1000 - 120
    assert stock(boss, second, depot) == 1000 - 120
    assert ledger_agrees() == []


def test_distributions_in_opposite_directions_never_deadlock(
    boss: Api, fresh_locations: str
) -> None:
    depot = fresh_locations
    truck = ok(boss.post("/api/v1/locations", {"name": "Truck", "kind": "vehicle"}))["id"]
    gas = make_item(boss, "gas", 100)
    ok(
        boss.post(
            "/api/v1/distributions",
            {"from_location": depot, "to_location": truck, "lines": [{"item": gas, "qty": 50}]},
        )
    )
    token = boss.token

    def shuttle(source: str, target: str) -> Callable[[], list[int]]:
        def run() -> list[int]:
            api = Api(Client(), token)
            body = {
                "from_location": source,
                "to_location": target,
                "lines": [{"item": gas, "qty": 1}],
            }
            return [api.post("/api/v1/distributions", body).status for _ in range(15)]

        return run

    results = run_together([shuttle(depot, truck), shuttle(truck, depot)] * 4)

    assert Counter(status for r in results for status in r) == {201: 120}
    assert stock(boss, gas, depot) + stock(boss, gas, truck) == 100
    assert ledger_agrees() == []
