"""Failover on a real pg_auto_failover group (issue 14): a monitor, a primary and a synchronous
standby on 127.0.0.1, three app processes sharing one Redis, four tills selling the last units
of one item through every URL.

1. The primary's PC dies (kill -9 of its keeper, postgres and app). The standby takes over; the
   surviving apps answer 503 `failover`/`not_primary` with Retry-After meanwhile, then write to
   the new primary; the change is on the audit chain once (two processes race to record it) and
   pushed on the WebSocket; no op is lost or doubled; the audit chain and the stock ledger verify.
2. The old PC comes back: it rejoins as the standby (`quartermaster cluster status` says so), and a
   planned switchover makes it the primary again, on the record as a switchover.
3. A primary cut off from the monitor and its standby (their traffic stopped by SIGSTOP) commits
   nothing alone: its commit waits, and fails once its keeper learns it was demoted.

The tests share one cluster and run in this order; each prints its figures.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from quartermaster.client import Backoff, DeviceStore, Session, SyncEngine
from quartermaster.client.store import DONE, PENDING, REJECTED
from tests.acceptance.test_served_api import start_quartermaster
from tests.conftest import redis_base_url
from tests.ha.cluster import ROOT, Cluster, signal_all, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Runs out after the failover: the last units are contended, and refusals are outcomes too.
START_QTY = 40
DEVICES = (("ha-till-1", "admin"), ("ha-till-2", "manager"), ("ha-till-3", "admin"),
           ("ha-till-4", "manager"))  # fmt: skip
PACE_S = 0.2  # between one device's sales: a till's pace, and it keeps the two cores free


def login(base: str, username: str) -> dict[str, str]:
    reply = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": username, "password": f"{username}-demo-pass"},
        timeout=10,
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access']}"}


@dataclass
class Till:
    """A device selling the contended item as fast as a cashier, following the primary."""

    device_id: str
    username: str
    store: DeviceStore
    servers: list[str]
    sale: dict[str, Any]  # the payload of one sale of the contended item
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def engine(self, store: DeviceStore) -> SyncEngine:
        session = Session(
            store,
            self.servers,
            username=self.username,
            password=f"{self.username}-demo-pass",
            device_id=self.device_id,
            timeout_s=10,
        )
        return SyncEngine(store, session, backoff=Backoff(base_s=0.1, cap_s=0.5))

    def sell(self) -> None:
        with DeviceStore(self.store.path) as store:
            engine = self.engine(store)
            while not self.stop.is_set():
                store.record("sale.record", self.sale)
                report = engine.sync_once()
                if report.error:
                    self.errors.append(report.error)
                self.stop.wait(PACE_S)
            engine.session.close()

    def drain(self) -> None:
        with DeviceStore(self.store.path) as store:
            engine = self.engine(store)
            deadline = time.monotonic() + 60
            while store.counts()[PENDING] and time.monotonic() < deadline:
                engine.sync(max_rounds=20)
            engine.session.close()


@dataclass
class Prober:
    """Writes through one app process every 0.1 s and keeps what it was answered."""

    base: str
    headers: dict[str, str]
    item_id: str
    answers: list[tuple[float, int, str | None, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        with httpx.Client(timeout=15) as http:
            while not self.stop.is_set():
                try:
                    reply = http.patch(
                        f"{self.base}/api/v1/items/{self.item_id}/qty",
                        json={"delta": 1},
                        headers={**self.headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    code = reply.json().get("code") if reply.status_code >= 400 else None
                    self.answers.append(
                        (
                            time.monotonic(),
                            reply.status_code,
                            code,
                            reply.headers.get("Retry-After"),
                        )
                    )
                except httpx.HTTPError:
                    self.answers.append((time.monotonic(), 0, "transport", None))
                self.stop.wait(0.1)


def longest_outage_s(answers: list[tuple[float, int, str | None, str | None]]) -> float:
    """The longest time from a refused write to the next accepted one."""
    longest, refused_since = 0.0, None
    for at, status, _, _ in answers:
        if status != 200 and refused_since is None:
            refused_since = at
        elif status == 200 and refused_since is not None:
            longest, refused_since = max(longest, at - refused_since), None
    return longest


def listen_for_primary_change(base: str, headers: dict[str, str], heard: list[Any]) -> None:
    token = headers["Authorization"].split()[1]
    url = base.replace("http://", "ws://") + "/ws/changes"
    with connect(url, subprotocols=["bearer", token], open_timeout=10) as socket:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                message = json.loads(socket.recv(timeout=1))
            except TimeoutError:
                continue
            if message.get("event") == "primary_changed":
                heard.append(message)
                return


@dataclass
class Apps:
    """The app processes of the three PCs (each with its own data folder), and how to reach them."""

    processes: list[subprocess.Popen[bytes]]
    urls: list[str]
    env: dict[str, str]
    scratch: Path

    def cli(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        """`quartermaster ARGS` on this machine, against the cluster."""
        return subprocess.run(
            [sys.executable, "-m", "quartermaster", *args],
            env={**os.environ, **self.env, "QM_DATA_DIR": str(self.scratch),
                 "PYTHONPATH": str(ROOT / "src")},
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


@pytest.fixture(scope="module")
def apps(ha_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apps]:
    scratch = tmp_path_factory.mktemp("ha-apps")
    env = {
        "QM_DATABASE_URL": ha_cluster.database_url,
        "QM_CLUSTER_MONITOR_URL": ha_cluster.monitor_url,
        "QM_CLUSTER_POLL_MS": "300",
        # One secret set for every process: a token from one is good at the others.
        "QM_SECRET_KEY": "ha-test-secret-key-" + "x" * 40,
        "QM_AUDIT_KEY": "ha-test-audit-key-" + "y" * 40,
        "QM_DB_POOL_MAX": "6",
        # Several app processes share rate limits and WebSocket fan-out (serve refuses otherwise).
        "QM_CACHE_URL": f"{redis_base_url().rstrip('/')}/12",
    }
    started = []
    try:
        for index, args in enumerate((["demo", "--serve"], ["serve"], ["serve"])):
            data = scratch / f"app{index}"
            data.mkdir()
            started.append(start_quartermaster(data, [*args, "--no-access-log"], env))
        yield Apps([p for p, _ in started], [url for _, url in started], env, scratch)
    finally:
        for process, _ in started:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def primary_changes(base: str, headers: dict[str, str]) -> list[Any]:
    reply = httpx.get(
        f"{base}/api/v1/audit", params={"entity_type": "cluster.primary"}, headers=headers
    )
    return list(reply.json()["results"])


def test_the_standby_takes_over_and_no_op_is_lost_or_doubled(
    ha_cluster: Cluster, apps: Apps, tmp_path: Path
) -> None:
    cluster = ha_cluster
    old, new = cluster.nodes
    doomed_app = apps.processes[0]
    _, survivor, witness = apps.urls
    admin = login(survivor, "admin")
    health = httpx.get(f"{survivor}/health").json()
    assert health["role"] == "primary" and health["database"] == "ok", health
    item = httpx.post(
        f"{survivor}/api/v1/items", json={"name": "ha last units", "qty": START_QTY}, headers=admin
    ).json()
    probe_item = httpx.post(
        f"{survivor}/api/v1/items", json={"name": "ha probe", "qty": 0}, headers=admin
    ).json()
    customer = httpx.post(
        f"{survivor}/api/v1/customers", json={"name": "ha walk-in"}, headers=admin
    ).json()
    locations = httpx.get(f"{survivor}/api/v1/locations", headers=admin).json()["results"]
    [shop] = [location["id"] for location in locations if location["is_default"]]
    sale = {"customer": customer["id"], "location": shop, "confirm": True,
            "lines": [{"item": item["id"], "qty": 1}]}  # fmt: skip

    heard: list[Any] = []
    listener = threading.Thread(target=listen_for_primary_change, args=(witness, admin, heard))
    listener.start()
    tills = [
        Till(device, user, DeviceStore(tmp_path / f"{device}.sqlite3"), apps.urls, sale)
        for device, user in DEVICES
    ]
    for till in tills:
        till.store.device_id(till.device_id)
    sellers = [threading.Thread(target=till.sell) for till in tills]
    prober = Prober(survivor, admin, probe_item["id"])
    probing = threading.Thread(target=prober.run)
    for thread in [*sellers, probing]:
        thread.start()

    def done() -> int:
        return sum(till.store.counts()[DONE] for till in tills)

    def answered() -> int:
        return sum(till.store.counts()[DONE] + till.store.counts()[REJECTED] for till in tills)

    try:
        wait_for("sales before the kill", lambda: done() >= 16, deadline_s=60)
        acknowledged_before = {op.op_id for till in tills for op in till.store.ops(state=DONE)}
        killed_at = time.monotonic()
        cluster.kill_node(old)
        doomed_app.kill()
        doomed_app.wait()
        wait_for("the standby promoted", lambda: cluster.is_writable_primary(new), deadline_s=90)
        promoted_at = time.monotonic()
        answered_at_promotion = answered()
        wait_for("sales answered by the new primary",
                 lambda: answered() >= answered_at_promotion + 30, deadline_s=90)  # fmt: skip
    finally:
        for till in tills:
            till.stop.set()
        prober.stop.set()
        for thread in [*sellers, probing]:
            thread.join(timeout=60)
    for till in tills:
        till.drain()

    # The standby took over, and both surviving apps write to it.
    for url in (survivor, witness):
        health = wait_for(
            f"{url} on the new primary",
            lambda url=url: (
                (h := httpx.get(f"{url}/health").json())["role"] == "primary"
                and h["epoch"] is not None
                and h
            ),
            deadline_s=30,
        )
    # Meanwhile the app answered retryable 503s with Retry-After, never a 500, then 2xx again.
    after_kill = [answer for answer in prober.answers if answer[0] >= killed_at]
    refusals = [answer for answer in after_kill if answer[1] == 503]
    assert refusals, "no 503 while the primary was gone"
    assert all(code in {"failover", "not_primary"} and retry for _, _, code, retry in refusals)
    assert {status for _, status, _, _ in after_kill} <= {200, 503}, after_kill
    assert after_kill[-1][1] == 200
    outage = longest_outage_s(prober.answers)

    # The change of primary is on the audit chain once, though two processes watched.
    entries = wait_for(
        "the primary change audited",
        lambda: primary_changes(survivor, admin) or None,
        deadline_s=30,
    )
    assert len(entries) == 1, entries
    [entry] = entries
    assert entry["action"] == "cluster.primary_changed"
    assert entry["actor"] == "system"
    assert entry["after"]["old_node"].startswith(old.name)
    assert entry["after"]["new_node"].startswith(new.name)
    assert entry["after"]["reason"] == "failover"
    assert entry["after"]["epoch"] == health["epoch"] == int(entry["entity_id"])
    listener.join(timeout=30)
    assert heard and heard[0]["type"] == "critical" and heard[0]["epoch"] == health["epoch"]

    # Every op has one outcome; every sale acknowledged before the kill is on the new primary;
    # the stock is the start minus exactly the accepted sales.
    ops = [op for till in tills for op in till.store.ops()]
    assert not [op for op in ops if op.state == PENDING]
    accepted = [op for op in ops if op.state == DONE]
    rejected = [op for op in ops if op.state == REJECTED]
    assert rejected, "the last units were not contended"
    assert all(op.status == 409 for op in rejected), {op.status for op in rejected}
    with psycopg.connect(cluster.node_url(new)) as primary:
        stored = primary.execute(
            "SELECT key FROM core_idempotencyrecord WHERE scope = 'op' AND key = ANY(%s)",
            [sorted(acknowledged_before)],
        ).fetchall()
    lost = len(acknowledged_before - {key for (key,) in stored})
    final = httpx.get(f"{survivor}/api/v1/items/{item['id']}", headers=admin).json()
    doubled = (START_QTY - final["qty"]) - len(accepted)
    assert lost == 0 and doubled == 0 and final["qty"] >= 0, (lost, doubled, final)
    assert acknowledged_before <= {op.op_id for op in accepted}

    # The audit chain and the stock ledger verify on the new primary.
    for check in (["audit", "verify"], ["stock", "rebuild", "--check"]):
        result = apps.cli(check)
        assert result.returncode == 0, (check, result.stdout, result.stderr)
    print(
        f"\nfailover: promoted {promoted_at - killed_at:.1f} s after the kill; longest write "
        f"outage seen by a client {outage:.1f} s; {len(accepted)} sales accepted, "
        f"{len(rejected)} refused (out of stock); ops lost {lost}, ops doubled {doubled}; "
        f"503s {len(refusals)} ({sorted({code for _, _, code, _ in refusals})})"
    )


def cluster_status(apps: Apps) -> dict[str, Any]:
    result = apps.cli(["cluster", "status", "--json"])
    assert result.returncode in {0, 1}, result.stderr
    return dict(json.loads(result.stdout))


def roles(status: dict[str, Any]) -> dict[str, str]:
    return {node["name"]: node["role"] for node in status["nodes"]}


def test_the_old_primary_rejoins_as_standby_and_a_switchover_brings_it_back(
    ha_cluster: Cluster, apps: Apps
) -> None:
    cluster = ha_cluster
    _, survivor, witness = apps.urls
    admin = login(survivor, "admin")
    back_at: float | None = None
    for node in cluster.nodes:  # the PC killed by the test before comes back
        if node.process is None or node.process.poll() is not None:
            back_at = time.monotonic()
            cluster.restart_node(node)
    primary = cluster.writable_primary(deadline_s=60)
    [standby] = [node for node in cluster.nodes if node is not primary]

    def rejoined() -> dict[str, Any] | None:
        # The roles settle before the primary leaves wait_primary: both, or it is not done.
        status = cluster_status(apps)
        wanted = {primary.name: "primary", standby.name: "standby"}
        settled = roles(status) == wanted and status["durability"].startswith("two copies")
        return status if settled else None

    status = wait_for("the old primary rejoined as standby", rejoined, deadline_s=90, every_s=0.5)
    rejoined_at = time.monotonic()
    assert status["durability"].startswith("two copies"), status
    before = len(primary_changes(survivor, admin))

    probe_item = httpx.post(
        f"{survivor}/api/v1/items", json={"name": "ha switchover probe", "qty": 0}, headers=admin
    ).json()
    prober = Prober(witness, admin, probe_item["id"])
    probing = threading.Thread(target=prober.run)
    probing.start()
    try:
        wait_for("writes before the switchover", lambda: len(prober.answers) >= 3, deadline_s=30)
        asked_at = time.monotonic()
        cluster.switchover(primary)
        wait_for("the switchover", lambda: cluster.is_writable_primary(standby), deadline_s=60)
        switched_at = time.monotonic()
        wait_for("a write after the switchover",
                 lambda: prober.answers[-1][0] > switched_at and prober.answers[-1][1] == 200,
                 deadline_s=60)  # fmt: skip
    finally:
        prober.stop.set()
        probing.join(timeout=60)
    assert {status for _, status, _, _ in prober.answers} <= {200, 503}, prober.answers

    def recorded_again() -> list[Any] | None:
        entries = primary_changes(survivor, admin)
        return entries if len(entries) > before else None

    entries = wait_for("the switchover audited", recorded_again, deadline_s=30)
    assert len(entries) == before + 1, entries
    newest = max(entries, key=lambda entry: int(entry["entity_id"]))
    assert newest["after"]["reason"] == "switchover", newest
    assert newest["after"]["new_node"].startswith(standby.name)
    assert roles(cluster_status(apps))[standby.name] == "primary"
    rejoin = f"rejoined {rejoined_at - back_at:.1f} s after it came back; " if back_at else ""
    print(
        f"\nswitchover: {rejoin}switchover took {switched_at - asked_at:.1f} s; longest write "
        f"outage seen by a client {longest_outage_s(prober.answers):.1f} s"
    )


def test_a_primary_cut_off_from_the_monitor_and_its_standby_commits_nothing_alone(
    ha_cluster: Cluster,
) -> None:
    cluster = ha_cluster
    old, new = cluster.settled(deadline_s=90)
    with psycopg.connect(cluster.node_url(old), autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS ha_cut_off (id int PRIMARY KEY)")
        connection.execute("INSERT INTO ha_cut_off VALUES (1)")  # acknowledged: on both
    client = psycopg.connect(cluster.node_url(old))  # a till's connection, open before the cut
    keeper, postgres = cluster.keeper_pids(old), cluster.postgres_pids(old)
    outcome: list[str] = []
    try:
        # The cut: nothing of the old primary answers; the monitor promotes the standby.
        signal_all(keeper + postgres, signal.SIGSTOP)
        cut_at = time.monotonic()
        wait_for("the standby promoted", lambda: cluster.is_writable_primary(new), deadline_s=90)
        # The old primary's PostgreSQL runs again, its keeper still cut off: it believes it is
        # the primary, and a till writes to it. The commit waits for a standby that left.
        signal_all(postgres, signal.SIGCONT)

        def write() -> None:
            try:
                client.execute("INSERT INTO ha_cut_off VALUES (2)")
                client.commit()
                outcome.append("committed")
            except psycopg.Error as error:
                outcome.append(f"refused: {type(error).__name__}")

        writer = threading.Thread(target=write)
        writer.start()
        writer.join(timeout=5)  # how long it is held, not a wait for an outcome
        assert writer.is_alive() and not outcome, outcome
        held_s = 5.0
        # Its keeper reaches the monitor again, learns it was demoted and stops it.
        signal_all(keeper, signal.SIGCONT)
        writer.join(timeout=60)
        assert outcome and outcome[0].startswith("refused"), outcome
    finally:
        signal_all(keeper + postgres, signal.SIGCONT)
        client.close()
    with psycopg.connect(cluster.node_url(new)) as primary:
        rows = primary.execute("SELECT id FROM ha_cut_off ORDER BY id").fetchall()
    assert rows == [(1,)]
    wait_for("the cut-off node rejoined as standby",
             lambda: cluster.states().get(old.name) == ("secondary", "secondary"),
             deadline_s=90, every_s=0.5)  # fmt: skip
    print(
        f"\npartition: the standby was promoted {time.monotonic() - cut_at:.0f} s after the cut "
        f"(rejoin included); the cut-off old primary held a commit {held_s:.0f}+ s without "
        f"acknowledging it, then {outcome[0]}; the new primary has none of it"
    )
