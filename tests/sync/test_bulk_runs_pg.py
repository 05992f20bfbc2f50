"""Bulk runs of sales under real concurrency on PostgreSQL: a live server, threads, one database."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import FeedEntry
from quartermaster.inventory.selectors import stock_differences
from quartermaster.sales.models import Invoice
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def setup(base: str, headers: dict[str, str], stock: dict[str, int]) -> dict[str, str]:
    world = {
        name: httpx.post(
            f"{base}/api/v1/items", json={"name": name, "qty": qty}, headers=headers
        ).json()["id"]
        for name, qty in stock.items()
    }
    world["customer"] = httpx.post(
        f"{base}/api/v1/customers", json={"name": "Lakshmi Stores"}, headers=headers
    ).json()["id"]
    locations = httpx.get(f"{base}/api/v1/locations?kind=depot", headers=headers).json()
    world["depot"] = locations["results"][0]["id"]
    return world


def sale(world: dict[str, str], items: list[str]) -> dict[str, Any]:
    return {
        "op_id": str(uuid.uuid4()),
        "type": "sale.record",
        "payload": {
            "customer": world["customer"],
            "location": world["depot"],
            "lines": [{"item": world[item], "qty": 1} for item in items],
            "confirm": True,
        },
    }


def batch(base: str, headers: dict[str, str], device: str, ops: list[Any]) -> dict[str, Any]:
    with httpx.Client(timeout=120) as client:
        reply = client.post(
            f"{base}/api/v1/sync/batch", json={"device_id": device, "ops": ops}, headers=headers
        )
    assert reply.status_code in (200, 207), reply.text
    body: dict[str, Any] = reply.json()
    return body


def qty(base: str, headers: dict[str, str], item_id: str) -> int:
    reply = httpx.get(f"{base}/api/v1/items/{item_id}", headers=headers).json()
    return int(reply["qty"])


def test_devices_racing_in_bulk_for_the_last_units_sell_each_exactly_once(
    live_server: Any,
) -> None:
    """Four devices, 25 two-line sales each, lines in opposite orders on alternate devices
    (a deadlock if rows were locked in line order), for 60 sets of stock."""
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    world = setup(base, headers, {"gas": 60, "hose": 60})

    def device(index: int) -> list[int]:
        lines = ["gas", "hose"] if index % 2 else ["hose", "gas"]
        body = batch(base, headers, f"truck-{index}", [sale(world, lines) for _ in range(25)])
        return [result["status"] for result in body["results"]]

    statuses = Counter(status for results in in_parallel(4, device) for status in results)

    assert statuses == {201: 60, 409: 40}
    assert qty(base, headers, world["gas"]) == qty(base, headers, world["hose"]) == 0
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-{n:06d}" for n in range(1, 61)]
    seqs = list(FeedEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert stock_differences() == []
    assert verify_chain().ok


def test_the_same_bulk_batch_sent_twice_at_once_applies_each_sale_once(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    world = setup(base, headers, {"gas": 100})
    ops = [sale(world, ["gas"]) for _ in range(40)]

    replies = in_parallel(2, lambda _: batch(base, headers, "truck-1", ops))
    settled = batch(base, headers, "truck-1", ops)

    outcomes = Counter(
        (result["status"], result.get("replayed", False))
        for body in replies
        for result in body["results"]
    )
    # Each op: applied by one copy; the other saw it in flight (retry later) or replayed it.
    assert outcomes[(201, False)] == 40
    assert outcomes[(201, True)] + outcomes[(503, False)] == 40
    assert [r["status"] for r in settled["results"]] == [201] * 40
    assert all(r["replayed"] for r in settled["results"])
    assert qty(base, headers, world["gas"]) == 60
    assert Invoice.objects.count() == 40
    assert stock_differences() == []
    assert verify_chain().ok
