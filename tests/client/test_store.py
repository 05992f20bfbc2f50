"""The device outbox: dense sequence, durable records (even across SIGKILL), temp ids, groups."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quartermaster.client.store import (
    DONE,
    PENDING,
    REJECTED,
    DeviceStore,
    OutboxError,
    Outcome,
    new_temp_id,
)

SRC = str(Path(__file__).parents[2] / "src")


def test_record_assigns_op_id_dense_seq_and_client_ts(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")

    first = store.record("item.create", {"name": "Valve", "qty": 5}, client_temp_id="temp_v")
    second = store.record("item.adjust", {"item_id": "temp_v", "delta": -1})

    assert (first.device_seq, second.device_seq) == (1, 2)
    assert first.op_id != second.op_id
    assert first.client_ts.endswith("Z")
    assert first.wire() == {
        "op_id": first.op_id,
        "type": "item.create",
        "payload": {"name": "Valve", "qty": 5},
        "client_ts": first.client_ts,
        "device_seq": 1,
        "client_temp_id": "temp_v",
    }
    assert [op.state for op in store.ops()] == [PENDING, PENDING]


def test_a_reopened_store_keeps_ops_device_id_and_the_sequence(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    with DeviceStore(path) as store:
        device = store.device_id("truck-07")
        store.record("item.create", {"name": "Valve", "qty": 5})

    with DeviceStore(path) as reopened:
        op = reopened.record("item.create", {"name": "Hose", "qty": 1})
        assert reopened.device_id() == device == "truck-07"
        assert op.device_seq == 2
        assert len(reopened.ops()) == 2


def test_an_op_recorded_before_a_sigkill_is_there_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    child = textwrap.dedent(
        f"""
        import sys, time
        from quartermaster.client.store import DeviceStore
        store = DeviceStore({str(path)!r})
        n = 0
        while True:
            n += 1
            op = store.record("item.adjust", {{"item_id": "x", "delta": n}})
            print(op.op_id, flush=True)   # only after record() returned: it is committed
            if n >= 50:
                time.sleep(0.001)
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", child],
        env={**os.environ, "PYTHONPATH": SRC},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    acknowledged = [process.stdout.readline().strip() for _ in range(200)]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    acknowledged += [line.strip() for line in process.stdout if line.strip()]

    with DeviceStore(path) as store:
        ops = store.ops()
    op_ids = [op.op_id for op in ops]
    assert set(acknowledged) <= set(op_ids)  # every acknowledged op survived
    assert len(op_ids) == len(set(op_ids))  # none twice
    assert [op.device_seq for op in ops] == list(range(1, len(ops) + 1))  # dense
    assert [op.payload["delta"] for op in ops] == list(range(1, len(ops) + 1))


def test_two_processes_recording_at_once_share_one_dense_sequence(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    DeviceStore(path).close()
    child = textwrap.dedent(
        f"""
        import sys
        from quartermaster.client.store import DeviceStore
        store = DeviceStore({str(path)!r})
        for n in range(100):
            store.record("item.adjust", {{"item_id": sys.argv[1], "delta": 1}})
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    processes = [
        subprocess.Popen([sys.executable, "-c", child, name], env=env) for name in ("a", "b")
    ]
    assert [process.wait(timeout=60) for process in processes] == [0, 0]

    with DeviceStore(path) as store:
        ops = store.ops()
    assert [op.device_seq for op in ops] == list(range(1, 201))
    assert sorted(op.payload["item_id"] for op in ops) == ["a"] * 100 + ["b"] * 100


def test_connections_opening_a_new_device_database_at_once_create_it_once(
    tmp_path: Path,
) -> None:
    # The recorder and the syncer of one device open their own connections; whichever comes
    # second must find the schema made (it failed with "duplicate column name" before).
    path = tmp_path / "agent.sqlite3"
    child = textwrap.dedent(
        f"""
        from quartermaster.client.store import DeviceStore
        DeviceStore({str(path)!r}).record("item.adjust", {{"item_id": "x", "delta": 1}})
        """
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    processes = [subprocess.Popen([sys.executable, "-c", child], env=env) for _ in range(4)]

    assert [process.wait(timeout=60) for process in processes] == [0, 0, 0, 0]
    with DeviceStore(path) as store:
        assert [op.device_seq for op in store.ops()] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("op_type", "payload", "message"),
    [
        ("create", {}, "op type"),
        ("item.create", [1, 2], "JSON object"),
        ("item.create", {"qty": float("nan")}, "not JSON"),
        ("item.create", {"when": object()}, "not JSON"),
    ],
)
def test_bad_ops_are_refused_and_nothing_is_recorded(
    tmp_path: Path, op_type: str, payload: object, message: str
) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")

    with pytest.raises(OutboxError, match=message):
        store.record(op_type, payload)  # type: ignore[arg-type]

    assert store.ops() == []


def test_a_temp_id_names_one_op(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    temp_id = new_temp_id()
    store.record("item.create", {"name": "a", "qty": 1}, client_temp_id=temp_id)

    with pytest.raises(OutboxError, match="already names"):
        store.record("item.create", {"name": "b", "qty": 1}, client_temp_id=temp_id)

    assert temp_id.startswith("temp_") and temp_id != new_temp_id()
    assert len(store.ops()) == 1


def test_a_group_is_recorded_in_one_run_before_it_is_sent(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    store.record("item.create", {"name": "a", "qty": 1}, group="g1")
    store.record("item.create", {"name": "b", "qty": 1}, group="g1")
    store.record("item.create", {"name": "c", "qty": 1})

    with pytest.raises(OutboxError, match="one after another"):
        store.record("item.create", {"name": "d", "qty": 1}, group="g1")
    store.record("item.create", {"name": "e", "qty": 1}, group="g2")
    store.note_attempt([store.ops()[-1].op_id], "link down")
    with pytest.raises(OutboxError, match="already been sent"):
        store.record("item.create", {"name": "f", "qty": 1}, group="g2")

    assert len(store.ops()) == 4


def test_record_group_writes_the_whole_group_or_nothing(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    store.record("item.create", {"name": "a", "qty": 1}, client_temp_id="temp_a")

    ops = store.record_group(
        "g1",
        [
            {"type": "item.adjust", "payload": {"item_id": "temp_a", "delta": 1}},
            {"type": "item.adjust", "payload": {"item_id": "temp_a", "delta": -1}},
        ],
    )
    with pytest.raises(OutboxError, match="already names another op"):
        store.record_group(
            "g2",
            [
                {"type": "item.create", "payload": {"name": "b", "qty": 1}},
                {
                    "type": "item.create",
                    "payload": {"name": "c", "qty": 1},
                    "client_temp_id": "temp_a",
                },
            ],
        )

    assert [(op.device_seq, op.group) for op in ops] == [(2, "g1"), (3, "g1")]
    assert [op.device_seq for op in store.ops()] == [1, 2, 3]
    assert [op.op_id for op in store.next_batch(100)][1:] == [op.op_id for op in ops]


def test_next_batch_never_splits_a_group(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    for n in range(3):
        store.record("item.create", {"name": f"solo{n}", "qty": 1})
    for n in range(4):
        store.record("item.create", {"name": f"g{n}", "qty": 1}, group="g")

    first = store.next_batch(5)
    assert [op.device_seq for op in first] == [1, 2, 3]
    store.save_outcomes(Outcome(op.op_id, 201, {}, {}, final=True) for op in first)
    # The group (4 ops) is longer than the limit (2): it still travels whole.
    assert [op.device_seq for op in store.next_batch(2)] == [4, 5, 6, 7]


def test_outcomes_close_an_op_once_and_keep_the_answer_and_id_map(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    made = store.record("item.create", {"name": "a", "qty": 1}, client_temp_id="temp_a")
    refused = store.record("item.adjust", {"item_id": "temp_a", "delta": -9})
    flaky = store.record("item.adjust", {"item_id": "temp_a", "delta": 1})

    store.save_outcomes(
        [
            Outcome(made.op_id, 201, {"id": "u1"}, {"temp_a": "u1"}, final=True),
            Outcome(refused.op_id, 409, {"code": "insufficient_stock"}, {}, final=True),
            Outcome(flaky.op_id, 503, {"error": "busy"}, {}, final=False),
        ]
    )
    store.save_outcomes([Outcome(made.op_id, 500, None, {}, final=False)])  # late duplicate

    by_id = {op.op_id: op for op in store.ops()}
    assert (by_id[made.op_id].state, by_id[made.op_id].body) == (DONE, {"id": "u1"})
    assert (by_id[refused.op_id].state, by_id[refused.op_id].is_conflict) == (REJECTED, True)
    assert (by_id[flaky.op_id].state, by_id[flaky.op_id].attempts) == (PENDING, 1)
    assert store.resolve("temp_a") == "u1" and store.resolve("temp_zz") is None
    assert store.counts() == {PENDING: 1, DONE: 1, REJECTED: 1, "conflicts": 1}


def test_the_device_id_cannot_change_once_ops_were_sent(tmp_path: Path) -> None:
    store = DeviceStore(tmp_path / "agent.sqlite3")
    store.device_id("truck-07")
    op = store.record("item.create", {"name": "a", "qty": 1})
    assert store.device_id("truck-08") == "truck-08"  # nothing sent yet: still free to rename
    store.note_attempt([op.op_id], "link down")

    with pytest.raises(OutboxError, match="truck-08"):
        store.device_id("truck-09")


def test_only_one_sync_runs_per_device_database_at_a_time(tmp_path: Path) -> None:
    from quartermaster.client.cli import _sync_lock

    db = tmp_path / "agent.sqlite3"
    with _sync_lock(db) as first, _sync_lock(db) as second:
        assert (first, second) == (True, False)
    with _sync_lock(db) as after:
        assert after is True
