"""Failover on a real pg_auto_failover group (issue 14): a monitor, a primary and a synchronous
standby on 127.0.0.1, three app processes, two devices pushing sales of one contended item
through all three URLs. The primary's PC dies (kill -9 of its keeper, postgres and app). The
standby takes over; the surviving apps answer 503 `failover`/`not_primary` with Retry-After
meanwhile and then write to the new primary; the change of primary is on the audit chain once
(two processes race to record it) and pushed on the WebSocket; the devices lose and double
nothing: every op ends with one outcome, and the stock is the start minus exactly the accepted
ones. Prints the figures.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from quartermaster.client import Backoff, DeviceStore, Session, SyncEngine
from quartermaster.client.store import DONE, PENDING, REJECTED
from tests.acceptance.test_served_api import start_quartermaster
from tests.conftest import redis_base_url
from tests.ha.cluster import Cluster, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

# Runs out after the failover: the last units are contended, and refusals are outcomes too.
START_QTY = 36
DEVICES = (("ha-till-1", "admin"), ("ha-till-2", "manager"))
PACE_S = 0.1  # between one device's sales: a till's pace, and it keeps the two cores free


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
    item_id: str
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
                store.record("item.adjust", {"item_id": self.item_id, "delta": -1})
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


def test_the_standby_takes_over_and_no_op_is_lost_or_doubled(
    ha_cluster: Cluster, tmp_path: Path
) -> None:
    cluster = ha_cluster
    old, new = cluster.nodes
    env = {
        "QM_DATABASE_URL": cluster.database_url,
        "QM_CLUSTER_MONITOR_URL": cluster.monitor_url,
        "QM_CLUSTER_POLL_MS": "300",
        # One secret set for every process: a token from one is good at the others.
        "QM_SECRET_KEY": "ha-test-secret-key-" + "x" * 40,
        "QM_AUDIT_KEY": "ha-test-audit-key-" + "y" * 40,
        "QM_DB_POOL_MAX": "6",
        # Several app processes share rate limits and WebSocket fan-out (serve refuses otherwise).
        "QM_CACHE_URL": f"{redis_base_url().rstrip('/')}/12",
    }
    apps = []
    for index, args in enumerate((["demo", "--serve"], ["serve"], ["serve"])):
        data = tmp_path / f"app{index}"
        data.mkdir()
        apps.append(start_quartermaster(data, [*args, "--no-access-log"], env))
    (doomed_app, doomed_url), (_, survivor), (_, witness) = apps
    urls = [doomed_url, survivor, witness]
    try:
        run_failover(cluster, old, new, urls, doomed_app, tmp_path)
    finally:
        for process, _ in apps:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=30)


def run_failover(cluster: Cluster, old: Any, new: Any, urls: list[str], doomed_app: Any,
                 tmp_path: Path) -> None:  # fmt: skip
    _, survivor, witness = urls
    admin = login(survivor, "admin")
    health = httpx.get(f"{survivor}/health").json()
    assert health["role"] == "primary" and health["database"] == "ok", health
    item = httpx.post(
        f"{survivor}/api/v1/items", json={"name": "ha last units", "qty": START_QTY}, headers=admin
    ).json()
    probe_item = httpx.post(
        f"{survivor}/api/v1/items", json={"name": "ha probe", "qty": 0}, headers=admin
    ).json()

    heard: list[Any] = []
    listener = threading.Thread(target=listen_for_primary_change, args=(witness, admin, heard))
    listener.start()
    tills = [
        Till(device, user, DeviceStore(tmp_path / f"{device}.sqlite3"), urls, item["id"])
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
        wait_for("sales before the kill", lambda: done() >= 20, deadline_s=60)
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
    def recorded() -> list[Any] | None:
        entries = httpx.get(
            f"{survivor}/api/v1/audit", params={"entity_type": "cluster.primary"}, headers=admin
        ).json()["results"]
        return entries or None

    entries = wait_for("the primary change audited", recorded, deadline_s=30)
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
    verify = httpx.get(f"{survivor}/api/v1/audit/verify", headers=admin).json()
    assert verify["ok"] is True, verify

    # Every op has one outcome; the stock is the start minus exactly the accepted sales.
    ops = [op for till in tills for op in till.store.ops()]
    assert not [op for op in ops if op.state == PENDING]
    accepted = [op for op in ops if op.state == DONE]
    rejected = [op for op in ops if op.state == REJECTED]
    assert rejected, "the last units were not contended"
    assert all(op.status == 400 for op in rejected), {op.status for op in rejected}
    final = httpx.get(f"{survivor}/api/v1/items/{item['id']}", headers=admin).json()
    assert final["qty"] == START_QTY - len(accepted) >= 0
    assert acknowledged_before <= {op.op_id for op in accepted}
    print(
        f"\nfailover: promoted {promoted_at - killed_at:.1f} s after the kill; longest write "
        f"outage seen by a client {outage:.1f} s; {len(accepted)} sales accepted, "
        f"{len(rejected)} refused (out of stock); lost 0, doubled 0; "
        f"503s {len(refusals)} ({sorted({code for _, _, code, _ in refusals})})"
    )
