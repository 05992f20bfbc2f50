"""The sync loop against an in-memory server: batching, final vs retryable results, replays after
lost answers, token refresh, backoff between failed rounds, the replica."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from quartermaster.client.backoff import Backoff
from quartermaster.client.engine import SyncEngine, is_final
from quartermaster.client.session import Session
from quartermaster.client.store import DONE, PENDING, REJECTED, DeviceStore
from tests.client.fake_server import FakeServer


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def engine_for(
    tmp_path: Path,
    server: FakeServer,
    *,
    password: str | None = "pw",
    backoff: Backoff | None = None,
    name: str = "agent.sqlite3",
) -> tuple[DeviceStore, SyncEngine, Sleeps]:
    store = DeviceStore(tmp_path / name)
    session = Session(
        store,
        "http://qm.test",
        username="driver1",
        password=password,
        device_id=store.device_id("truck-07"),
        transport=server.transport(),
    )
    sleeps = Sleeps()
    engine = SyncEngine(
        store, session, backoff=backoff or Backoff(rng=random.Random(1)), sleep=sleeps
    )
    return store, engine, sleeps


def test_offline_ops_sync_once_with_temp_ids_resolved_and_the_replica_equal(
    tmp_path: Path,
) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    store.record("item.create", {"name": "Valve", "qty": 5}, client_temp_id="temp_valve")
    store.record("item.adjust", {"item_id": "temp_valve", "delta": -2})

    report = engine.sync()
    again = engine.sync()

    valve_id = store.resolve("temp_valve")
    assert report.complete and (report.accepted, report.rejected, report.pulled) == (2, 0, 2)
    assert (again.pushed, again.pulled) == (0, 0)
    assert valve_id is not None and server.items[valve_id]["qty"] == 3
    assert len(server.applied) == 2
    assert store.replica("item") == server.items
    assert store.cursor == "2"
    assert [op.state for op in store.ops()] == [DONE, DONE]


def test_ops_go_in_batches_of_at_most_100_in_device_seq_order(tmp_path: Path) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    for n in range(250):
        store.record("item.create", {"name": f"item {n}", "qty": n})

    report = engine.sync()

    assert [len(batch) for batch in server.batches] == [100, 100, 50]
    sent = [op["device_seq"] for batch in server.batches for op in batch]
    assert sent == list(range(1, 251))
    assert (report.batches, report.accepted) == (3, 250)
    assert len(store.replica("item")) == 250


def test_2xx_and_4xx_are_final_and_5xx_is_retried_without_blocking_the_queue(
    tmp_path: Path,
) -> None:
    server = FakeServer(failing_types={"item.delete"})
    store, engine, _ = engine_for(tmp_path, server)
    made = store.record("item.create", {"name": "Valve", "qty": 1}, client_temp_id="temp_v")
    oversold = store.record("item.adjust", {"item_id": "temp_v", "delta": -5})
    unknown = store.record("item.teleport", {"item_id": "temp_v"})
    flaky = store.record("item.delete", {"item_id": "temp_v"})

    first = engine.sync_once()
    server.failing_types.clear()
    second = engine.sync_once()

    states = {op.op_id: (op.state, op.status) for op in store.ops()}
    assert (first.accepted, first.rejected, first.conflicts, first.retry_later) == (1, 2, 1, 1)
    assert not first.complete and first.pending == 1
    assert [op.op_id for op in first.rejected_ops] == [oversold.op_id, unknown.op_id]
    assert first.rejected_ops[0].body["code"] == "insufficient_stock"
    assert states[made.op_id] == (DONE, 201)
    assert states[oversold.op_id] == (REJECTED, 409)
    assert states[unknown.op_id] == (REJECTED, 400)
    assert states[flaky.op_id] == (DONE, 204)
    assert (second.pushed, second.accepted) == (1, 1)
    # The rejected ops were never sent again: the second batch carried only the retried one.
    assert [op["op_id"] for op in server.batches[-1]] == [flaky.op_id]


@pytest.mark.parametrize(
    ("status", "body", "final"),
    [
        (200, {}, True),
        (201, {}, True),
        (400, {"code": "invalid"}, True),
        (404, {"code": "not_found"}, True),
        (409, {"code": "insufficient_stock"}, True),
        (422, {"code": "invalid_something"}, True),
        (424, {"code": "group_failed"}, True),
        (409, {"code": "idempotency_key_in_flight"}, False),
        (429, {}, False),
        (500, {}, False),
        (503, None, False),
    ],
)
def test_which_op_results_are_final(status: int, body: object, final: bool) -> None:
    assert is_final(status, body) is final


def test_a_suspect_idempotency_key_reused_answer_is_sent_once_more_then_stands() -> None:
    reused = {"error": "key used with another request", "code": "idempotency_key_reused"}

    assert is_final(422, reused) is False
    assert is_final(422, reused, heard_before={"error": "boom", "code": "server_error"}) is False
    assert is_final(422, reused, heard_before=reused) is True


def test_a_suspect_reused_key_answer_is_asked_again_and_the_recorded_answer_kept(
    tmp_path: Path,
) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    op = store.record("item.create", {"name": "Valve", "qty": 5})
    real_run_op = server.run_op
    raced: list[str] = []

    def race_once(device: str, wire_op: dict) -> dict:  # type: ignore[type-arg]
        result = real_run_op(device, wire_op)
        if not raced:  # the other copy of this batch won; this one tells a wrong story
            raced.append(wire_op["op_id"])
            body = {"error": "key used with another request", "code": "idempotency_key_reused"}
            return {"op_id": wire_op["op_id"], "status": 422, "body": body, "id_map": {}}
        return result

    server.run_op = race_once  # type: ignore[method-assign]
    report = engine.sync()

    closed = store.get_op(op.op_id)
    assert closed is not None and (closed.state, closed.status) == (DONE, 201)
    assert report.accepted == 1 and len(server.applied) == 1


def test_a_lost_answer_is_retried_and_the_server_replays_instead_of_applying_twice(
    tmp_path: Path,
) -> None:
    server = FakeServer(lose_next_responses=1)
    store, engine, sleeps = engine_for(tmp_path, server)
    store.record("item.create", {"name": "Valve", "qty": 5}, client_temp_id="temp_v")
    store.record("item.adjust", {"item_id": "temp_v", "delta": -1})

    lost = engine.sync_once()
    assert lost.error is not None and lost.pending == 2  # applied on the server, unknown here
    assert len(server.applied) == 2
    replayed = engine.sync()

    assert replayed.complete and replayed.accepted == 2
    assert len(server.applied) == 2  # nothing applied twice
    assert len(server.batches) == 2 and server.batches[0] == server.batches[1]
    assert store.resolve("temp_v") in server.items
    assert next(iter(server.items.values()))["qty"] == 4
    assert [op.attempts for op in store.ops()] == [2, 2]
    assert sleeps == []  # the replay round succeeded at once (the failure was in sync_once)


def test_failed_rounds_back_off_exponentially_with_jitter_until_the_link_returns(
    tmp_path: Path,
) -> None:
    server = FakeServer(link_down_for=6)  # each failed round tries the batch and the feed
    backoff = Backoff(base_s=1, cap_s=8, jitter=0.2, rng=random.Random(3))
    store, engine, sleeps = engine_for(tmp_path, server, backoff=backoff)
    store.record("item.create", {"name": "Valve", "qty": 5})

    report = engine.sync()

    assert report.complete and report.accepted == 1
    assert len(sleeps) == 3
    for attempt, slept in enumerate(sleeps):
        low, high = backoff.bounds_s(attempt)
        assert low <= slept <= high


def test_the_delay_grows_to_the_cap_while_the_server_keeps_failing(tmp_path: Path) -> None:
    server = FakeServer(batch_status=503)
    backoff = Backoff(base_s=1, cap_s=8, jitter=0.2, rng=random.Random(5))
    store, engine, sleeps = engine_for(tmp_path, server, backoff=backoff)
    store.record("item.create", {"name": "Valve", "qty": 5})

    engine.sync(max_rounds=7)

    assert len(sleeps) == 6
    nominal = [1, 2, 4, 8, 8, 8]
    assert all(n * 0.8 <= slept <= n * 1.2 for n, slept in zip(nominal, sleeps, strict=True))


def test_max_rounds_gives_up_with_the_ops_still_pending(tmp_path: Path) -> None:
    server = FakeServer(batch_status=503)
    store, engine, sleeps = engine_for(tmp_path, server)
    store.record("item.create", {"name": "Valve", "qty": 5})

    report = engine.sync(max_rounds=3)

    assert not report.complete and report.pending == 1
    assert len(sleeps) == 2
    assert "503" in (report.error or "")
    assert store.ops()[0].attempts == 3 and store.ops()[0].state == PENDING


def test_an_expired_access_token_is_refreshed_once_and_a_spent_refresh_logs_in_again(
    tmp_path: Path,
) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    store.record("item.create", {"name": "a", "qty": 1})
    engine.sync()
    assert (server.logins, server.refreshes) == (1, 0)

    server.expire_access_tokens()
    store.record("item.create", {"name": "b", "qty": 1})
    engine.sync()
    assert (server.logins, server.refreshes) == (1, 1)

    server.expire_access_tokens()
    server.refresh_tokens.clear()  # e.g. the refresh answer was lost: the token is spent
    store.record("item.create", {"name": "c", "qty": 1})
    report = engine.sync()

    assert report.complete
    assert (server.logins, server.refreshes) == (2, 1)
    assert store.counts()[DONE] == 3


def test_without_a_password_an_expired_session_needs_a_person(tmp_path: Path) -> None:
    server = FakeServer()
    store, engine, sleeps = engine_for(tmp_path, server, password=None)
    store.record("item.create", {"name": "a", "qty": 1})

    report = engine.sync()

    assert report.needs_attention and "not logged in" in (report.error or "")
    assert sleeps == [] and store.counts()[PENDING] == 1


def test_a_batch_refused_as_a_whole_is_resent_op_by_op_so_one_bad_op_cannot_block(
    tmp_path: Path,
) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    good = store.record("item.create", {"name": "ok", "qty": 1})
    bad = store.record("item.create", {"name": "bad", "qty": 1})
    real_batch = server.batch

    def refuse_batches_with_the_bad_op(body: dict) -> object:  # type: ignore[type-arg]
        if any(op["op_id"] == bad.op_id for op in body["ops"]):
            return httpx_response(400, {"error": "malformed op", "code": "invalid"})
        return real_batch(body)

    server.batch = refuse_batches_with_the_bad_op  # type: ignore[method-assign,assignment]
    report = engine.sync()

    assert report.complete and (report.accepted, report.rejected) == (1, 1)
    assert store.get_op(good.op_id).state == DONE  # type: ignore[union-attr]
    refused = store.get_op(bad.op_id)
    assert refused is not None and refused.state == REJECTED
    assert refused.body == {"error": "malformed op", "code": "invalid"}


def test_a_server_refusing_every_op_as_malformed_closes_none_of_them(tmp_path: Path) -> None:
    server = FakeServer(batch_status=400)
    store, engine, sleeps = engine_for(tmp_path, server)
    for n in range(3):
        store.record("item.create", {"name": f"i{n}", "qty": 1})

    report = engine.sync()

    assert report.needs_attention and "refuses every op" in (report.error or "")
    assert store.counts()[PENDING] == 3 and sleeps == []


def httpx_response(status: int, body: object) -> object:
    import httpx

    return httpx.Response(status, json=body)


def test_the_pull_follows_pages_and_applies_tombstones(tmp_path: Path) -> None:
    server = FakeServer()
    store, engine, _ = engine_for(tmp_path, server)
    engine.page_limit = 3
    for n in range(7):
        store.record("item.create", {"name": f"i{n}", "qty": 1}, client_temp_id=f"temp_{n}")
    engine.sync()
    store.record("item.delete", {"item_id": "temp_0"})

    report = engine.sync()

    assert report.pulled == 1
    assert store.replica("item") == server.items
    assert len(store.replica("item")) == 6
    assert store.cursor == "8"


def test_a_forbidden_device_stops_without_retrying(tmp_path: Path) -> None:
    server = FakeServer(batch_status=403)
    store, engine, sleeps = engine_for(tmp_path, server)
    store.record("item.create", {"name": "a", "qty": 1})

    report = engine.sync()

    assert report.needs_attention and "403" in (report.error or "")
    assert sleeps == [] and store.counts()[PENDING] == 1
