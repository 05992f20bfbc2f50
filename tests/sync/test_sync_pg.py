"""Sync under real concurrency on PostgreSQL: a live server, threads, one database."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.db import connection

from quartermaster.core import commands
from quartermaster.core.audit import verify_chain
from quartermaster.core.models import FeedEntry
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        (count,) = cursor.fetchone()
    return int(count)


def test_a_change_that_commits_late_is_not_skipped_by_a_reader_who_polled_past_it(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T1 takes its feed row and stalls before commit; T2 and T3 then change other records; a
    reader polls, then T1 commits, and the reader polls again from its cursor.

    With feed numbers handed out when a row is inserted (an autoincrement id), T2 and T3 would
    commit rows numbered after T1's, the first poll would return them and move the cursor past
    T1's number, and the second poll would never return T1's change. Here numbers are taken
    under a lock held to commit, so seq order is commit order and nothing is skipped.
    """
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    ids = [
        httpx.post(f"{base}/api/v1/items", json={"name": name, "qty": 5}, headers=headers).json()[
            "id"
        ]
        for name in ("late", "b", "c")
    ]
    late_id = ids[0]
    cursor = httpx.get(f"{base}/api/v1/sync/changes", headers=headers).json()["cursor"]
    entered, release = threading.Event(), threading.Event()
    original = commands.record_changes

    def stall_after_numbering(action: str, ctx: Any, changes: list[Any]) -> None:
        original(action, ctx, changes)
        if changes and changes[0].entity_id == late_id:
            entered.set()
            release.wait(timeout=30)

    monkeypatch.setattr(commands, "record_changes", stall_after_numbering)

    def adjust(item_id: str) -> int:
        return httpx.patch(
            f"{base}/api/v1/items/{item_id}/qty", json={"delta": 1}, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(max_workers=3) as pool:
        late = pool.submit(adjust, late_id)
        assert entered.wait(timeout=20)
        others = [pool.submit(adjust, item_id) for item_id in ids[1:]]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until both committed, or both wait for T1
            if all(f.done() for f in others) or lock_waiters() >= 2:
                break
            time.sleep(0.05)
        first_poll = httpx.get(
            f"{base}/api/v1/sync/changes?since={cursor}", headers=headers, timeout=30
        ).json()
        release.set()
        assert [late.result(), *(f.result() for f in others)] == [200, 200, 200]
    second_poll = httpx.get(
        f"{base}/api/v1/sync/changes?since={first_poll['cursor']}", headers=headers
    ).json()

    seen = first_poll["changes"] + second_poll["changes"]
    # Each adjustment also brings its movement and stock row (inventory.ledger).
    assert sorted(change["id"] for change in seen if change["entity"] == "item") == sorted(ids)
    seqs = [change["seq"] for change in seen]
    assert seqs == list(range(int(cursor) + 1, int(cursor) + 1 + len(seen)))
    # The late change holds the others back: it committed first, so it is numbered first.
    assert first_poll["changes"] == []
    assert seen[0]["id"] == late_id


def batch(base: str, headers: dict[str, str], device: str, ops: list[dict[str, Any]]) -> Any:
    reply = httpx.post(
        f"{base}/api/v1/sync/batch",
        json={"device_id": device, "ops": ops},
        headers=headers,
        timeout=60,
    )
    return reply.status_code, reply.json()


def test_the_same_batch_sent_twice_at_once_applies_each_op_once(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 20}, headers=headers
    ).json()["id"]
    ops = [
        {
            "op_id": str(uuid.uuid4()),
            "type": "item.adjust",
            "payload": {"item_id": item_id, "delta": -1},
        }
        for _ in range(10)
    ]

    replies = in_parallel(2, lambda _: batch(base, headers, "truck-1", ops))
    settled = batch(base, headers, "truck-1", ops)

    outcomes = Counter(
        (result["status"], result["replayed"]) for _, body in replies for result in body["results"]
    )
    # Each op: applied by one request; the other saw it in flight (retry later) or replayed it.
    assert outcomes[(200, False)] == 10
    assert outcomes[(200, True)] + outcomes[(503, False)] == 10
    assert all(
        result["body"]["code"] == "op_in_flight"
        for _, body in replies
        for result in body["results"]
        if result["status"] == 503
    )
    assert [r["status"] for r in settled[1]["results"]] == [200] * 10
    assert all(r["replayed"] for r in settled[1]["results"])
    item = httpx.get(f"{base}/api/v1/items/{item_id}", headers=headers).json()
    assert item["qty"] == 10


def test_devices_racing_for_the_last_units_never_oversell(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 10}, headers=headers
    ).json()["id"]

    def device(index: int) -> list[int]:
        ops = [
            {
                "op_id": str(uuid.uuid4()),
                "type": "item.adjust",
                "payload": {"item_id": item_id, "delta": -1},
            }
            for _ in range(5)
        ]
        _, body = batch(base, headers, f"truck-{index}", ops)
        return [result["status"] for result in body["results"]]

    statuses = Counter(status for results in in_parallel(4, device) for status in results)

    assert statuses == {200: 10, 400: 10}
    assert httpx.get(f"{base}/api/v1/items/{item_id}", headers=headers).json()["qty"] == 0
    seqs = list(FeedEntry.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert verify_chain().ok


def test_an_adjustment_that_waited_for_the_stock_lock_publishes_the_qty_it_left(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T1 reads the item (qty 5), then stalls before the ledger locks the stock row; T2 adjusts
    the same item and commits (4); T1 goes on (3). T1's answer and feed row must say 3, not the
    5 - 1 it read before the lock, or every replica keeps a qty the server never had."""
    from quartermaster.inventory import services as inventory

    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 5}, headers=headers
    ).json()["id"]
    entered, release = threading.Event(), threading.Event()
    original = inventory.move_stock

    def stall_first(**kwargs: Any) -> Any:
        if not entered.is_set():
            entered.set()
            assert release.wait(timeout=30)
        return original(**kwargs)

    monkeypatch.setattr(inventory, "move_stock", stall_first)

    def adjust() -> Any:
        return httpx.patch(
            f"{base}/api/v1/items/{item_id}/qty", json={"delta": -1}, headers=headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=1) as pool:
        late = pool.submit(adjust)
        assert entered.wait(timeout=20)
        assert adjust().json()["qty"] == 4
        release.set()
        assert late.result().json()["qty"] == 3
    changes = httpx.get(f"{base}/api/v1/sync/changes", headers=headers).json()["changes"]
    item_rows = [c["data"]["qty"] for c in changes if c["entity"] == "item" and c["id"] == item_id]
    assert item_rows[-1] == 3
    assert httpx.get(f"{base}/api/v1/items/{item_id}", headers=headers).json()["qty"] == 3
