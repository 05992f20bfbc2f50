"""Bulk runs of `market.entry.create` under real concurrency on PostgreSQL (a live server,
threads, group commit off so the batches' transactions really overlap in the database): two
devices' batches for the same farmers and flowers, while a rate is posted for the slot they
wait on; and one device's batch sent twice at once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import OutboxMessage
from quartermaster.market.models import Entry, EntryVersion
from quartermaster.notifications.models import Notification
from tests.core.test_concurrency_pg import in_parallel, token_for
from tests.market.helpers import DAY, MARKET, S1_TIME, S2_TIME

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def set_up(client: httpx.Client) -> dict[str, str]:
    world = {
        code: client.post(
            f"{MARKET}/flowers", json={"code": code, "name": code, "name_ta": "ம", "unit": unit}
        ).json()["id"]
        for code, unit in (("jasmine", "kg"), ("rose", "bundle"))
    }
    for name, phone in (("murugan", "9876543210"), ("valli", "9876500000")):
        farmer = {"name": name, "phone": phone, "language": "ta"}
        world[name] = client.post(f"{MARKET}/farmers", json=farmer).json()["id"]
    for flower in ("jasmine", "rose"):
        rate = {"flower": world[flower], "date": DAY, "slot": "s1", "rate": "100.00"}
        assert client.post(f"{MARKET}/rates", json=rate).status_code == 201
    return world


def entries(world: dict[str, str], count: int) -> list[dict[str, Any]]:
    """Alternating farmers and flowers; every third entry in s2, which has no rate yet."""
    ops = []
    for index in range(count):
        flower = ("jasmine", "rose")[index % 2]
        payload = {
            "farmer": world[("murugan", "valli")[(index // 2) % 2]],
            "flower": world[flower],
            "qty": "1.000" if flower == "jasmine" else 1,
            "arrived_at": S2_TIME if index % 3 == 0 else S1_TIME,
        }
        ops.append({"op_id": str(uuid.uuid4()), "type": "market.entry.create", "payload": payload})
    return ops


def batch(base: str, token: str, device: str, ops: list[Any]) -> list[dict[str, Any]]:
    with httpx.Client(timeout=120) as client:
        reply = client.post(
            f"{base}/api/v1/sync/batch",
            json={"device_id": device, "ops": ops},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert reply.status_code in (200, 207), reply.text
    results: list[dict[str, Any]] = reply.json()["results"]
    return results


def test_two_devices_batches_for_the_same_farmers_and_a_rate_posting_at_once(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    base = live_server.url
    admin = token_for(base, "admin")
    clerks = [token_for(base, f"clerk{n}", "staff") for n in range(2)]
    headers = {"Authorization": f"Bearer {admin}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
        world = set_up(client)
    runs = [entries(world, 50) for _ in clerks]

    def work(thread: int) -> list[int]:
        if thread == len(clerks):
            rate = {"flower": world["jasmine"], "date": DAY, "slot": "s2", "rate": "200.00"}
            return [httpx.post(f"{base}{MARKET}/rates", json=rate, headers=headers).status_code]
        results = batch(base, clerks[thread], f"tablet-{thread}", runs[thread])
        return [result["status"] for result in results]

    statuses = Counter(s for per_thread in in_parallel(len(clerks) + 1, work) for s in per_thread)

    assert statuses == {201: 101}
    numbers = sorted(Entry.objects.values_list("seq", flat=True))
    assert numbers == list(range(1, 101))  # gap-free, each once
    # No jasmine entry is left waiting beside the s2 rate posted meanwhile; roses in s2 wait.
    assert Counter(Entry.objects.values_list("flower__code", "slot", "status")) == {
        ("jasmine", "s1", "open"): 32,
        ("jasmine", "s2", "open"): 18,
        ("rose", "s1", "open"): 34,
        ("rose", "s2", "awaiting_rate"): 16,
    }
    assert EntryVersion.objects.count() >= 100
    assert Notification.objects.count() == OutboxMessage.objects.count() == 100
    assert verify_chain().ok


def test_one_batch_sent_twice_at_once_records_each_entry_once(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    base = live_server.url
    token = token_for(base, "admin")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
        world = set_up(client)
    ops = entries(world, 40)

    replies = in_parallel(2, lambda _: batch(base, token, "tablet-1", ops))
    settled = batch(base, token, "tablet-1", ops)

    outcomes = Counter(
        (result["status"], result.get("replayed", False)) for body in replies for result in body
    )
    # Each op: applied by one copy; the other saw it in flight (retry later) or replayed it.
    assert outcomes[(201, False)] == 40
    assert outcomes[(201, True)] + outcomes[(503, False)] == 40
    assert [r["status"] for r in settled] == [201] * 40
    assert all(r["replayed"] for r in settled)
    first_answers = {r["body"]["id"] for body in replies for r in body if r["status"] == 201}
    assert first_answers == {r["body"]["id"] for r in settled}
    assert Entry.objects.count() == Notification.objects.count() == 40
    assert OutboxMessage.objects.count() == 40
    assert verify_chain().ok
