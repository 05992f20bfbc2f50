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


@pytest.fixture(autouse=True)
def _one_transaction_per_request(settings: Any) -> None:
    """These tests are about transactions of different server processes meeting in the
    database. One live server plays several: with group commit off, each request runs its own
    transaction at once, as a request in a process of its own would (tests/core/
    test_group_commit.py covers the batching itself)."""
    settings.GROUP_COMMIT = False


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
    original = commands.record_changes_many

    def stall_after_numbering(recorded: list[Any], encode: Any = None) -> None:
        original(recorded, encode)
        if any(changes and changes[0].entity_id == late_id for _, _, changes in recorded):
            entered.set()
            release.wait(timeout=30)

    monkeypatch.setattr(commands, "record_changes_many", stall_after_numbering)

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
    from quartermaster.inventory.ledger import StockBook

    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 5}, headers=headers
    ).json()["id"]
    entered, release = threading.Event(), threading.Event()
    original = StockBook.lock.__func__  # type: ignore[attr-defined]

    def stall_first(cls: type[StockBook], keys: Any) -> StockBook:
        # The item is read; its stock row is not locked yet.
        if not entered.is_set():
            entered.set()
            assert release.wait(timeout=30)
        return original(cls, keys)  # type: ignore[no-any-return]

    monkeypatch.setattr(StockBook, "lock", classmethod(stall_first))

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


def test_a_copy_of_a_batch_meeting_a_group_being_stored_never_answers_its_own_outcome(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy A broke its group on g2 and is storing the group's rejections (g1 424, g2 400),
    held before commit. Stock changes, and copy B of the same batch arrives: g1 would now fail
    itself (so B would break on g1: g1 400, g2 424). B must answer "send it again" (503) for
    what A holds in flight (storing a rejection claims the op id like execute does), never its
    own final outcome, nor a 500 from colliding with A's rows; afterwards every copy replays A's."""
    from quartermaster.sync import answers

    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}

    def make(name: str, qty: int) -> str:
        reply = httpx.post(f"{base}/api/v1/items", json={"name": name, "qty": qty}, headers=headers)
        return str(reply.json()["id"])

    scarce, empty = make("scarce", 1), make("empty", 0)
    ops = [
        {"op_id": str(uuid.uuid4()), "type": "item.adjust", "group": "g",
         "payload": {"item_id": item_id, "delta": -1}}
        for item_id in (scarce, empty)
    ]  # fmt: skip
    storing, release = threading.Event(), threading.Event()
    original = answers.store_refusal

    def hold_after_storing_g1(*args: Any) -> Any:
        stored = original(*args)
        if stored.op_id == ops[0]["op_id"] and not storing.is_set():
            storing.set()
            assert release.wait(timeout=30)
        return stored

    monkeypatch.setattr(answers, "store_refusal", hold_after_storing_g1)

    def adjust(item_id: str, delta: int) -> int:
        return httpx.patch(
            f"{base}/api/v1/items/{item_id}/qty", json={"delta": delta}, headers=headers
        ).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(batch, base, headers, "truck-1", ops)
        assert storing.wait(timeout=20)
        assert (adjust(scarce, -1), adjust(empty, 5)) == (200, 200)
        second = pool.submit(batch, base, headers, "truck-1", ops)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not second.done() and lock_waiters() == 0:
            time.sleep(0.05)
        release.set()
        (_, stored), (_, late) = first.result(), second.result()
    replay = batch(base, headers, "truck-1", ops)[1]

    assert [r["status"] for r in stored["results"]] == [424, 400]
    for mine, kept in zip(late["results"], stored["results"], strict=True):
        assert mine["status"] == 503 or (mine["status"], mine["body"]) == (
            kept["status"],
            kept["body"],
        ), mine
    assert [(r["status"], r["body"]) for r in replay["results"]] == [
        (r["status"], r["body"]) for r in stored["results"]
    ]
    item = httpx.get(f"{base}/api/v1/items/{empty}", headers=headers).json()
    assert item["qty"] == 5  # nothing of the group applied


def test_a_copy_whose_group_broke_answers_what_the_other_copy_stored_meanwhile(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Copy A's group broke on g2 (no stock) and rolled back; A is held before storing its
    answers. Stock changes and copy B runs the batch to the end: it breaks on g1 instead and
    stores g1 400, g2 424. A then stores: the op ids are taken, so A answers B's outcome (race 2:
    A used to answer its own g1 424, g2 400, an outcome the server never stored)."""
    from quartermaster.sync import units

    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}

    def make(name: str, qty: int) -> str:
        reply = httpx.post(f"{base}/api/v1/items", json={"name": name, "qty": qty}, headers=headers)
        return str(reply.json()["id"])

    scarce, empty = make("scarce", 1), make("empty", 0)
    ops = [
        {"op_id": str(uuid.uuid4()), "type": "item.adjust", "group": "g",
         "payload": {"item_id": item_id, "delta": -1}}
        for item_id in (scarce, empty)
    ]  # fmt: skip
    breaking, release = threading.Event(), threading.Event()
    original = units.answer_broken_group

    def hold_first(*args: Any) -> Any:
        if not breaking.is_set():
            breaking.set()
            assert release.wait(timeout=30)
        return original(*args)

    monkeypatch.setattr(units, "answer_broken_group", hold_first)

    def adjust(item_id: str, delta: int) -> int:
        return httpx.patch(
            f"{base}/api/v1/items/{item_id}/qty", json={"delta": delta}, headers=headers
        ).status_code

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(batch, base, headers, "truck-1", ops)
        assert breaking.wait(timeout=20)
        assert (adjust(scarce, -1), adjust(empty, 5)) == (200, 200)
        _, stored = batch(base, headers, "truck-1", ops)
        release.set()
        _, held = first.result()

    assert [r["status"] for r in stored["results"]] == [400, 424]
    assert [(r["status"], r["body"]) for r in held["results"]] == [
        (r["status"], r["body"]) for r in stored["results"]
    ]
    assert all(r["replayed"] for r in held["results"])
    item = httpx.get(f"{base}/api/v1/items/{empty}", headers=headers).json()
    assert item["qty"] == 5  # nothing of the group applied


def test_batches_of_one_device_at_once_all_count_their_device_seqs(live_server: Any) -> None:
    """Each batch notes its seqs with one conditional write; the batches that lose the race
    merge into the winner's ranges: none of the 8 batches' seqs goes missing."""
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    device = f"till-{uuid.uuid4().hex[:8]}"
    assert batch(base, headers, device, [])[0] == 200  # the stream exists: all race to update

    def send(index: int) -> int:
        ops = [
            {
                "op_id": str(uuid.uuid4()),
                "type": "item.create",
                "payload": {"name": f"seq {index}-{n}"},
                "device_seq": index * 5 + n,
            }
            for n in range(1, 6)
        ]
        return int(batch(base, headers, device, ops)[0])

    assert in_parallel(8, send) == [200] * 8
    status = httpx.get(f"{base}/api/v1/devices/{device}/sync-status", headers=headers).json()
    assert (status["last_contiguous_seq"], status["missing"]) == (40, [])
