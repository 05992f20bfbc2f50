"""Real concurrency on PostgreSQL: a live server, many threads, one database."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry
from quartermaster.inventory.models import Item
from tests.conftest import PASSWORD, create_user

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def token_for(base_url: str, username: str, role: str = "admin") -> str:
    create_user(username, role)
    reply = httpx.post(
        f"{base_url}/api/v1/auth/login", json={"username": username, "password": PASSWORD}
    )
    return str(reply.json()["access"])


def in_parallel(count: int, call: Any) -> list[Any]:
    start = threading.Barrier(count)

    def worker(index: int) -> Any:
        start.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(worker, range(count)))


def test_twenty_concurrent_decrements_of_ten_units(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 10}, headers=headers
    ).json()["id"]

    def decrement(_: int) -> httpx.Response:
        with httpx.Client(timeout=30) as client:
            return client.patch(
                f"{base}/api/v1/items/{item_id}/qty", json={"delta": -1}, headers=headers
            )

    replies = in_parallel(20, decrement)

    assert Counter(reply.status_code for reply in replies) == {200: 10, 400: 10}
    # Each success reports the qty it left behind: every value from 9 down to 0 exactly once.
    assert sorted(r.json()["qty"] for r in replies if r.status_code == 200) == list(range(10))
    assert httpx.get(f"{base}/api/v1/items/{item_id}", headers=headers).json()["qty"] == 0
    assert AuditEntry.objects.filter(action="item.adjust", entity_id=item_id).count() == 10
    assert verify_chain().ok


def test_a_duplicate_of_a_request_in_flight_is_409(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quartermaster.inventory.services import AdjustItemQty

    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 10}, headers=headers
    ).json()["id"]
    entered, release = threading.Event(), threading.Event()
    original = AdjustItemQty.run_many

    def slow_run_many(cls: Any, commands: Any, contexts: Any, *, alone: bool) -> Any:
        entered.set()
        release.wait(timeout=20)
        return original(commands, contexts, alone=alone)

    # run_many: the one body of item.adjust, alone or in a run
    monkeypatch.setattr(AdjustItemQty, "run_many", classmethod(slow_run_many))
    keyed = {**headers, "Idempotency-Key": "slow-one"}
    url = f"{base}/api/v1/items/{item_id}/qty"

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(httpx.patch, url, json={"delta": -1}, headers=keyed, timeout=30)
        assert entered.wait(timeout=20)
        duplicate = httpx.patch(url, json={"delta": -1}, headers=keyed, timeout=30)
        release.set()
        first_reply = first.result()
    replay = httpx.patch(url, json={"delta": -1}, headers=keyed, timeout=30)

    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "idempotency_key_in_flight"
    assert first_reply.status_code == 200
    assert (replay.status_code, replay.headers["Idempotent-Replayed"]) == (200, "true")
    assert replay.json() == first_reply.json()
    assert httpx.get(url.removesuffix("/qty"), headers=headers).json()["qty"] == 9


def test_concurrent_creates_get_gap_free_numbers(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}

    def create(index: int) -> int:
        name = "dup" if index % 4 == 0 else f"item-{index}"  # some fail: duplicates
        return httpx.post(
            f"{base}/api/v1/items", json={"name": name, "qty": 1}, headers=headers, timeout=30
        ).status_code

    statuses = Counter(in_parallel(16, create))

    skus = sorted(Item.objects.values_list("sku", flat=True))
    assert statuses == {201: 13, 400: 3}
    assert skus == [f"ITM-{n:06d}" for n in range(1, 14)]
    assert verify_chain().ok
