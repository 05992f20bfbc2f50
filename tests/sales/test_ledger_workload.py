"""A randomized workload (hypothesis) of every stock-moving action; afterwards the stock
projection must equal the ledger, never be negative, and agree with the serialized assets."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Api
from tests.ledger_helpers import ledger_agrees, make_customer, make_item, make_location, ok

pytestmark = pytest.mark.django_db

serial_numbers = itertools.count(1)


@pytest.fixture
def world(manager: Api, default_location_id: str) -> dict[str, Any]:
    truck = make_location(manager, "Truck 1")
    store = make_location(manager, "Store", "store")
    return {
        "locations": [default_location_id, truck, store],
        "items": [make_item(manager, name, 3, price="1.25", tax_rate_bp=1800) for name in "abc"],
        "cylinder": make_item(manager, "cyl", tracking="serial", price="900.00", deposit="50.00"),
        "customers": [make_customer(manager, name) for name in ("P", "Q")],
        "serials": [],
        "sales": [],
    }


op = st.one_of(
    st.tuples(st.just("receive"), st.integers(0, 2), st.integers(0, 2), st.integers(1, 5)),
    st.tuples(st.just("receive_serials"), st.integers(0, 2), st.integers(1, 2)),
    st.tuples(
        st.just("distribute"),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(0, 2),
        st.integers(1, 6),
    ),
    st.tuples(
        st.just("distribute_serial"), st.integers(0, 2), st.integers(0, 2), st.integers(0, 50)
    ),
    st.tuples(
        st.just("sell"),
        st.integers(0, 2),
        st.integers(0, 1),
        st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4)), min_size=1, max_size=3),
        st.booleans(),
    ),
    st.tuples(st.just("sell_serial"), st.integers(0, 2), st.integers(0, 1), st.integers(0, 50)),
    st.tuples(st.just("void"), st.integers(0, 50)),
    st.tuples(st.just("return"), st.integers(0, 1), st.integers(0, 2), st.integers(0, 50)),
    st.tuples(
        st.just("adjust"), st.integers(0, 2), st.integers(0, 2), st.integers(-3, 3).filter(bool)
    ),
    st.tuples(st.just("patch"), st.integers(0, 2), st.integers(-3, 3)),
)


def apply(api: Api, world: dict[str, Any], step: tuple) -> int:
    locations, items, customers = world["locations"], world["items"], world["customers"]
    serials, cylinder = world["serials"], world["cylinder"]

    def pick_serial(n: int) -> str:
        return serials[n % len(serials)] if serials else "none"

    kind = step[0]
    if kind == "receive":
        _, loc, item, qty = step
        return api.post(
            "/api/v1/receipts",
            {"to_location": locations[loc], "lines": [{"item": items[item], "qty": qty}]},
        ).status
    if kind == "receive_serials":
        _, loc, count = step
        new = [f"S{next(serial_numbers)}" for _ in range(count)]
        reply = api.post(
            "/api/v1/receipts",
            {
                "to_location": locations[loc],
                "lines": [{"item": cylinder, "qty": count, "serials": new}],
            },
        )
        if reply.status == 201:
            serials.extend(new)
        return reply.status
    if kind == "distribute":
        _, src, dst, item, qty = step
        body = {
            "from_location": locations[src],
            "to_location": locations[dst],
            "lines": [{"item": items[item], "qty": qty}],
        }
        return api.post("/api/v1/distributions", body).status
    if kind == "distribute_serial":
        _, src, dst, n = step
        line = {"item": cylinder, "qty": 1, "serials": [pick_serial(n)]}
        body = {"from_location": locations[src], "to_location": locations[dst], "lines": [line]}
        return api.post("/api/v1/distributions", body).status
    if kind == "sell":
        _, loc, customer, lines, confirm = step
        body = {
            "customer": customers[customer]["id"],
            "location": locations[loc],
            "lines": [{"item": items[i], "qty": q} for i, q in lines],
            "confirm": confirm,
        }
        reply = api.post("/api/v1/transactions", body)
        if reply.status == 201:
            world["sales"].append(reply.body["id"])
        return reply.status
    if kind == "sell_serial":
        _, loc, customer, n = step
        body = {
            "customer": customers[customer]["id"],
            "location": locations[loc],
            "lines": [{"item": cylinder, "qty": 1, "serials": [pick_serial(n)]}],
            "confirm": True,
        }
        reply = api.post("/api/v1/transactions", body)
        if reply.status == 201:
            world["sales"].append(reply.body["id"])
        return reply.status
    if kind == "void":
        if not world["sales"]:
            return 409
        sale = world["sales"][step[1] % len(world["sales"])]
        return api.post(f"/api/v1/transactions/{sale}/void", {"reason": "random"}).status
    if kind == "return":
        _, customer, loc, n = step
        body = {
            "customer": customers[customer]["id"],
            "to_location": locations[loc],
            "lines": [{"item": cylinder, "serials": [pick_serial(n)]}],
        }
        return api.post("/api/v1/returns", body).status
    if kind == "adjust":
        _, loc, item, delta = step
        body = {
            "location": locations[loc],
            "lines": [{"item": items[item], "delta": delta}],
            "reason": "count",
        }
        return api.post("/api/v1/adjustments", body).status
    _, item, delta = step
    return api.patch(f"/api/v1/items/{items[item]}/qty", {"delta": delta}).status


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(op, min_size=1, max_size=12))
def test_stock_always_equals_the_ledger(manager: Api, world: dict[str, Any], steps: list) -> None:
    from django.db.models import Count

    from quartermaster.inventory.models import Asset, Stock

    statuses = [apply(manager, world, step) for step in steps]

    assert set(statuses) <= {200, 201, 400, 409}, list(zip(steps, statuses, strict=True))
    assert ledger_agrees() == []
    assert not Stock.objects.filter(qty__lt=0).exists()
    cylinders_at = {
        row["location_id"]: row["n"]
        for row in Asset.objects.filter(item_id=world["cylinder"])
        .exclude(location__kind__in=["supplier", "consumed", "loss"])
        .values("location_id")
        .annotate(n=Count("id"))
    }
    cylinder_stock = {
        s.location_id: s.qty for s in Stock.objects.filter(item_id=world["cylinder"]) if s.qty
    }
    assert cylinders_at == cylinder_stock
    statement_total = ok(
        manager.get(f"/api/v1/customers/{world['customers'][0]['id']}/statement"), 200
    )
    running = [e["balance"] for e in statement_total["entries"]]
    assert (running[-1] if running else "0.00") == statement_total["balance"]
