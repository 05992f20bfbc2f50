"""The field client against a real `quartermaster demo --serve`: ops recorded offline reach the
server once, temp ids resolve, the replica equals the server, a lost answer is replayed, and the
`agent` CLI works as a new user would try it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from quartermaster.client import DeviceStore, Session, SyncEngine, new_temp_id
from quartermaster.client.store import DONE, REJECTED
from tests.acceptance.test_served_api import login, server  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow

SRC = str(Path(__file__).parents[2] / "src")


def all_items(base: str, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/api/v1/items", params=params, headers=headers).json()
        items.update({item["id"]: item for item in page["results"]})
        cursor = page["next_cursor"]
        if not cursor:
            return items


def engine_for(
    base: str,
    store: DeviceStore,
    username: str = "admin",
    transport: httpx.BaseTransport | None = None,
) -> SyncEngine:
    session = Session(
        store,
        base,
        username=username,
        password=f"{username}-demo-pass",
        device_id=store.device_id(),
        transport=transport,
    )
    return SyncEngine(store, session, sleep=lambda seconds: None)


class LoseFirstBatchAnswer(httpx.HTTPTransport):
    """Delivers the first batch to the server, then drops its answer (the link died)."""

    def __init__(self) -> None:
        super().__init__()
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.url.path == "/api/v1/sync/batch" and not self.lost:
            response.read()
            self.lost += 1
            raise httpx.ReadError("connection reset after the server committed", request=request)
        return response


def test_offline_ops_reach_the_server_once_and_the_replica_equals_it(
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    admin = login(server, "admin", "admin-demo-pass")
    store = DeviceStore(tmp_path / "agent.sqlite3")
    store.device_id("acceptance-truck-1")
    valve = new_temp_id()
    store.record("item.create", {"item_name": "client valve", "qty": 5}, client_temp_id=valve)
    store.record("item.adjust", {"item_id": valve, "delta": -2})
    oversell = store.record("item.adjust", {"item_id": valve, "delta": -50})
    store.record("item.adjust", {"item_id": valve, "delta": 1})  # not blocked by the rejection

    report = engine_for(server, store).sync()

    valve_id = store.resolve(valve)
    assert report.complete, report
    assert (report.accepted, report.rejected) == (3, 1)
    assert valve_id is not None
    on_server = httpx.get(f"{server}/api/v1/items/{valve_id}", headers=admin).json()
    assert on_server["qty"] == 4
    assert [op.state for op in store.ops()] == [DONE, DONE, REJECTED, DONE]
    assert store.get_op(oversell.op_id).status == 400  # type: ignore[union-attr]
    assert store.replica("item") == all_items(server, admin)
    status = httpx.get(
        f"{server}/api/v1/devices/acceptance-truck-1/sync-status", headers=admin
    ).json()
    assert (status["last_contiguous_seq"], status["missing"]) == (4, [])


def test_a_lost_answer_is_replayed_by_the_server_and_nothing_is_applied_twice(
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    admin = login(server, "admin", "admin-demo-pass")
    item = httpx.post(
        f"{server}/api/v1/items", json={"name": "replayed hose", "qty": 10}, headers=admin
    ).json()
    audit_before = httpx.get(
        f"{server}/api/v1/audit", params={"entity_id": item["id"]}, headers=admin
    ).json()
    store = DeviceStore(tmp_path / "agent.sqlite3")
    store.record("item.adjust", {"item_id": item["id"], "delta": -3})
    transport = LoseFirstBatchAnswer()
    engine = engine_for(server, store, username="driver1", transport=transport)

    lost = engine.sync_once()
    assert lost.error is not None and lost.pending == 1 and transport.lost == 1
    again = engine.sync()

    assert again.complete and again.accepted == 1 and again.replayed == 1
    assert httpx.get(f"{server}/api/v1/items/{item['id']}", headers=admin).json()["qty"] == 7
    audit_after = httpx.get(
        f"{server}/api/v1/audit", params={"entity_id": item["id"]}, headers=admin
    ).json()
    assert len(audit_after["results"]) == len(audit_before["results"]) + 1
    assert httpx.get(f"{server}/api/v1/audit/verify", headers=admin).json()["ok"] is True


def agent(args: list[str], db: Path, base: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartermaster", "agent", *args],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": SRC,
            "QM_AGENT_DB": str(db),
            "QM_AGENT_SERVER": base,
            "QM_AGENT_USERNAME": "admin",
            "QM_AGENT_PASSWORD": "admin-demo-pass",
        },
        stdin=subprocess.DEVNULL,
        timeout=120,
        check=False,
    )


def test_the_agent_cli_records_offline_syncs_and_reports(
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "cli" / "agent.sqlite3"

    created = agent(
        ["record", "item.create", "--payload", '{"item_name": "cli regulator", "qty": 3}',
         "--temp-id", "temp_regulator"],
        db, server,
    )  # fmt: skip
    agent(
        ["record", "item.adjust", "--payload", '{"item_id": "temp_regulator", "delta": -9}'],
        db,
        server,
    )
    synced = agent(["sync"], db, server)
    status = json.loads(agent(["status", "--json"], db, server).stdout)
    conflicts = agent(["conflicts"], db, server)
    resolved = agent(["resolve", "temp_regulator"], db, server)
    again = agent(["sync", "--once"], db, server)

    assert created.returncode == 0, created.stdout + created.stderr
    # Exit 3: the sync went through and some ops were rejected (a script can tell).
    assert synced.returncode == 3, synced.stdout + synced.stderr
    assert "pushed 2 ops: 1 accepted, 1 rejected" in synced.stdout
    assert "rejected #2 item.adjust → 400" in synced.stdout
    assert status["ops"] == {"pending": 0, "done": 1, "rejected": 1, "conflicts": 0}
    assert status["last_sync_result"] == "ok" and status["replica"]["item"] >= 5
    assert "qty cannot go below 0" in conflicts.stdout
    admin = login(server, "admin", "admin-demo-pass")
    regulator_id = resolved.stdout.strip()
    regulator = httpx.get(f"{server}/api/v1/items/{regulator_id}", headers=admin).json()
    assert regulator["name"] == "cli regulator" and regulator["qty"] == 3
    assert again.returncode == 0 and "pushed 0 ops" in again.stdout


def test_agent_sync_watch_pulls_as_soon_as_the_server_pokes(
    server: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    db = tmp_path / "watch" / "agent.sqlite3"
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "QM_AGENT_DB": str(db),
        "QM_AGENT_SERVER": server,
        "QM_AGENT_USERNAME": "admin",
        "QM_AGENT_PASSWORD": "admin-demo-pass",
    }
    watcher = subprocess.Popen(
        [sys.executable, "-m", "quartermaster", "agent", "sync", "--watch", "--interval", "60"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        first_round = [watcher.stdout.readline() for _ in range(3)]
        while "in sync" not in first_round[-1] and first_round[-1]:
            first_round.append(watcher.stdout.readline())
        assert "in sync" in first_round[-1], first_round
        time.sleep(1)  # the watcher is now waiting on the WebSocket
        admin = login(server, "admin", "admin-demo-pass")
        created = httpx.post(
            f"{server}/api/v1/items", json={"name": "poked valve", "qty": 2}, headers=admin
        ).json()
        deadline = time.monotonic() + 15  # far less than --interval: the poke woke it
        replica: dict[str, Any] = {}
        while time.monotonic() < deadline and created["id"] not in replica:
            time.sleep(0.2)
            with DeviceStore(db) as store:
                replica = store.replica("item")
    finally:
        watcher.terminate()
        watcher.wait(timeout=20)

    assert replica.get(created["id"]) == created
