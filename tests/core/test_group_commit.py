"""Group commit: commands a process runs concurrently commit together, and each answers exactly
what it would have answered alone (its status, body, stored key, audit entries and feed rows)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.db import transaction

from quartermaster.core import commands
from quartermaster.core.audit import verify_chain
from quartermaster.core.commands import Request, run_together
from quartermaster.core.group_commit import Baton
from quartermaster.core.models import AuditEntry, FeedEntry, IdempotencyRecord
from quartermaster.core.types import Context, Response
from quartermaster.identity.selectors import load_actor
from quartermaster.inventory.services import AdjustItemQty, CreateItem
from tests.conftest import Api
from tests.core.test_concurrency_pg import token_for
from tests.sync.test_bulk_runs import Normalizer


def _requests(admin: Api) -> tuple[list[Request], dict[str, str]]:
    valve = admin.post("/api/v1/items", {"name": "valve", "qty": 3}).body["id"]
    hose = admin.post("/api/v1/items", {"name": "hose", "qty": 1}).body["id"]
    actor = load_actor(uuid.UUID(admin.get("/api/v1/auth/me").body["id"]))
    assert actor is not None

    def keyed(key: str | None) -> Context:
        return Context(actor=actor, idempotency_key=key)

    requests: list[Request] = [
        (AdjustItemQty(item=valve, delta=-2), keyed("a")),
        (AdjustItemQty(item=valve, delta=-2), keyed("b")),  # 1 left: 400, takes nothing
        (AdjustItemQty(item=hose, delta=4), keyed(None)),
        (AdjustItemQty(item=valve, delta=-2), keyed("a")),  # the same key: a replay
        (CreateItem(item_name="regulator", qty=2), keyed("c")),
        (CreateItem(item_name="regulator", qty=5), keyed("d")),  # duplicate name: 400
        (AdjustItemQty(item=valve, delta=-1), keyed("e")),  # takes the last one
        (AdjustItemQty(item=uuid.uuid4(), delta=1), keyed("f")),  # unknown: 404
        (CreateItem(item_name="  ", qty=1), keyed(None)),  # refused before any transaction
        (AdjustItemQty(item=valve, delta=-2), keyed("b")),  # b's stored refusal again
    ]
    return requests, {"valve": valve, "hose": hose}


def _transcript(
    requests: list[Request], run: Callable[[], list[Any]], known: dict[str, str]
) -> Any:
    audit_before, feed_before = AuditEntry.objects.count(), FeedEntry.objects.count()
    keys_before = IdempotencyRecord.objects.count()
    answers = run()
    normal = Normalizer({value: f"<{name}>" for name, value in known.items()})
    return normal(
        {
            "answers": [
                (a.status, a.body, a.replayed) if isinstance(a, Response) else repr(a)
                for a in answers
            ],
            "audit": [
                (e.action, e.entity_type, e.entity_id, e.before, e.after)
                for e in AuditEntry.objects.order_by("seq")[audit_before:]
            ],
            "feed": [
                (f.entity, f.entity_id, f.op, f.version, f.data)
                for f in FeedEntry.objects.order_by("seq")[feed_before:]
            ],
            "keys": [
                (r.key, r.status, r.body)
                for r in IdempotencyRecord.objects.order_by("id")[keys_before:]
            ],
        }
    )


@pytest.mark.django_db
def test_a_batch_answers_exactly_what_each_command_answers_alone(admin: Api) -> None:
    requests, known = _requests(admin)

    with transaction.atomic():
        together = _transcript(requests, lambda: run_together(requests), known)
        transaction.set_rollback(True)
    alone = _transcript(
        requests, lambda: [run_together([request])[0] for request in requests], known
    )

    assert together == alone
    assert [answer[0] for answer in together["answers"]] == [
        *(200, 400, 200, 200, 201, 400, 200, 404, 400, 400),
    ]
    assert [answer[2] for answer in together["answers"]][3] is True  # the replay
    assert admin.get(f"/api/v1/items/{known['valve']}").body["qty"] == 0
    assert verify_chain().ok


@pytest.mark.django_db
def test_an_unexpected_failure_fails_only_its_own_command(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests, known = _requests(admin)
    original = CreateItem.handle

    def crash_on_regulator(self: CreateItem, ctx: Context) -> Any:
        if self.item_name == "regulator":
            raise RuntimeError("disk on fire")
        return original(self, ctx)

    monkeypatch.setattr(CreateItem, "handle", crash_on_regulator)
    answers = run_together(requests[:5])

    assert [getattr(answer, "status", None) for answer in answers] == [200, 400, 200, 200, None]
    assert isinstance(answers[4], RuntimeError)
    assert admin.get(f"/api/v1/items/{known['valve']}").body["qty"] == 1
    assert not IdempotencyRecord.objects.filter(key="c").exists()  # nothing stored: retryable
    assert verify_chain().ok


def test_the_baton_runs_what_queued_meanwhile_as_one_batch() -> None:
    batches: list[list[int]] = []
    entered, release = threading.Event(), threading.Event()

    def run_batch(items: list[int]) -> list[int]:
        batches.append(items)
        if items == [0]:
            entered.set()
            assert release.wait(timeout=10)
        return [item * 10 for item in items]

    baton: Baton[int, int] = Baton(run_batch)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(baton.submit, 0)
        assert entered.wait(timeout=10)
        rest = [pool.submit(baton.submit, item) for item in range(1, 6)]
        while baton.queued() < 5:
            time.sleep(0.001)
        release.set()
        results = [first.result(), *(future.result() for future in rest)]

    assert results == [0, 10, 20, 30, 40, 50]
    assert batches[0] == [0]
    assert sorted(batches[1]) == [1, 2, 3, 4, 5]


def test_a_batch_that_raises_raises_in_every_thread_of_it_and_frees_the_baton() -> None:
    def run_batch(items: list[int]) -> list[int]:
        if 13 in items:
            raise RuntimeError("unlucky")
        return items

    baton: Baton[int, int] = Baton(run_batch)

    with pytest.raises(RuntimeError, match="unlucky"):
        baton.submit(13)
    assert baton.submit(7) == 7


def test_exclusive_work_holds_off_every_batch_until_it_ends() -> None:
    order: list[str] = []
    baton: Baton[str, str] = Baton(lambda items: [order.append(i) or i for i in items])  # type: ignore[func-returns-value]

    with ThreadPoolExecutor(max_workers=2) as pool:
        with baton.exclusive():
            waiting = pool.submit(baton.submit, "command")
            while baton.queued() < 1:
                time.sleep(0.001)
            order.append("exclusive")
            with baton.exclusive():  # re-entrant
                order.append("nested")
        assert waiting.result(timeout=10) == "command"

    assert order == ["exclusive", "nested", "command"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_requests_queued_behind_a_batch_commit_as_one_on_postgres(
    live_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}
    item_id = httpx.post(
        f"{base}/api/v1/items", json={"name": "cylinder", "qty": 5}, headers=headers
    ).json()["id"]
    entered, release = threading.Event(), threading.Event()
    original = AdjustItemQty.run_many

    def hold_first(cls: Any, batch: Any, contexts: Any, *, alone: bool) -> Any:
        if not entered.is_set():
            entered.set()
            assert release.wait(timeout=30)
        return original(batch, contexts, alone=alone)

    monkeypatch.setattr(AdjustItemQty, "run_many", classmethod(hold_first))
    url = f"{base}/api/v1/items/{item_id}/qty"

    def adjust(index: int) -> httpx.Response:
        keyed = {**headers, "Idempotency-Key": f"k{index}"}
        return httpx.patch(url, json={"delta": -1}, headers=keyed, timeout=60)

    with ThreadPoolExecutor(max_workers=8) as pool:
        first = pool.submit(adjust, 0)
        assert entered.wait(timeout=20)
        rest = [pool.submit(adjust, index) for index in range(1, 8)]
        deadline = time.monotonic() + 20
        while commands.queued() < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
        queued = commands.queued()
        release.set()
        replies = [first.result(), *(future.result() for future in rest)]
    replays = [adjust(index) for index in range(8)]

    assert queued == 7
    statuses = sorted(reply.status_code for reply in replies)
    assert statuses == [200] * 5 + [400] * 3  # 5 units: five take one each, three find none
    assert sorted(r.json()["qty"] for r in replies if r.status_code == 200) == [0, 1, 2, 3, 4]
    assert [r.json() for r in replays] == [r.json() for r in replies]
    assert all(r.headers["Idempotent-Replayed"] == "true" for r in replays)
    assert httpx.get(url.removesuffix("/qty"), headers=headers).json()["qty"] == 0
    assert verify_chain().ok
