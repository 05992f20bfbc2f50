"""Chaos: 4 field devices sync ≥2,000 ops through a fault-injecting proxy while the server is
SIGKILLed mid-batch and restarted. After convergence every op has exactly one outcome, none was
applied twice, contended stock equals the model, every replica equals the server, and the audit
chain verifies. Prints the figures.

Devices record in one thread and sync in another (two connections to one device database, as
`agent record` beside `agent sync`), go offline for a while now and then, and share three items
whose stock runs out again and again, so many sales are refused for good (409/400) and groups
of two sales fail as one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from quartermaster.client import Backoff, DeviceStore, Session, SyncEngine
from quartermaster.client.store import DONE, PENDING, REJECTED
from tests.acceptance.fault_proxy import FaultProxy, FaultRates
from tests.acceptance.test_served_api import free_port

pytestmark = pytest.mark.slow

SRC = str(Path(__file__).parents[2] / "src")
OPS_PER_DEVICE = 520
# The concurrent-duplicates run on PostgreSQL (each op a transaction over the network) records
# fewer ops per device, to stay under ~90 s; it still meets every race many times over.
OPS_PER_DEVICE_CONCURRENT_PG = 260
CONTENDED_START_QTY = 30
DEVICES = (  # (device id, user, may create and delete items)
    ("chaos-driver1", "driver1", False),
    ("chaos-cashier1", "cashier1", False),
    ("chaos-manager", "manager", True),
    ("chaos-admin", "admin", True),
)
DEADLINE_S = 240


@contextmanager
def chaos_database() -> Iterator[str]:
    """A fresh database for the server under test: a new one on the PostgreSQL server the suite
    runs on (QM_DATABASE_URL), else "" (SQLite in the data dir)."""
    base = os.environ.get("QM_DATABASE_URL", "")
    if not base.startswith("postgres"):
        yield ""
        return
    import psycopg

    name = f"qm_chaos_{uuid.uuid4().hex[:10]}"
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServerProcess:
    """`quartermaster demo --serve` on its own data dir and database; killable, restartable."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.database = "PostgreSQL" if database_url else "SQLite"
        self.env = {
            **os.environ,
            "QM_DATA_DIR": str(data_dir),
            "QM_DATABASE_URL": database_url,
            "PYTHONPATH": SRC,
        }
        self.log = data_dir / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, *, demo: bool) -> None:
        command = ["demo", "--serve"] if demo else ["serve"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "quartermaster", *command, "--port", str(self.port),
                 "--no-access-log", "--log-level", "warning"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


def login(base: str, username: str) -> dict[str, str]:
    reply = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": username, "password": f"{username}-demo-pass"},
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access']}"}


def paged(base: str, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}{path}", params=query, headers=headers, timeout=60).json()
        rows.extend(page["results"])
        cursor = page.get("next_cursor")
        if not cursor:
            return rows


@dataclass
class Device:
    device_id: str
    username: str
    creates: bool
    db: Path
    proxy_url: str
    seed: int
    ops_to_record: int = OPS_PER_DEVICE
    recorded: list[str] = field(default_factory=list)  # op ids acknowledged by record()
    planned_groups: list[list[str]] = field(default_factory=list)
    syncs: int = 0
    offline_periods: int = 0
    replays: int = 0
    errors: list[str] = field(default_factory=list)
    recording_done: threading.Event = field(default_factory=threading.Event)
    drained: threading.Event = field(default_factory=threading.Event)

    def engine(self, store: DeviceStore) -> SyncEngine:
        session = Session(
            store,
            self.proxy_url,
            username=self.username,
            password=f"{self.username}-demo-pass",
            device_id=self.device_id,
            timeout_s=30,
        )
        backoff = Backoff(base_s=0.05, cap_s=0.8, rng=random.Random(self.seed))
        return SyncEngine(store, session, backoff=backoff)

    def record_all(self, contended: list[str], stop: threading.Event) -> None:
        rng = random.Random(self.seed)
        store = DeviceStore(self.db)
        own_items: list[str] = []  # temp ids of items this device created
        deleted: set[str] = set()
        try:
            count = 0
            burst_left = rng.randint(5, 40)
            while count < self.ops_to_record and not stop.is_set():
                roll = rng.random()
                if self.creates and roll < 0.04:
                    temp_id = f"temp_{self.device_id}_{len(own_items)}"
                    name = f"{self.device_id} item {len(own_items)}"
                    op = store.record(
                        "item.create", {"item_name": name, "qty": 10}, client_temp_id=temp_id
                    )
                    own_items.append(temp_id)
                    ops = [op]
                elif self.creates and own_items and roll < 0.12:
                    target = rng.choice(own_items)
                    if rng.random() < 0.08 and target not in deleted:
                        deleted.add(target)
                        ops = [store.record("item.delete", {"item_id": target})]
                    else:
                        delta = rng.choice([-4, -2, -1, 1, 3])
                        ops = [store.record("item.adjust", {"item_id": target, "delta": delta})]
                elif roll < 0.22:
                    group = f"{self.device_id}-g{count}"
                    first, second = rng.sample(contended, 2)
                    ops = store.record_group(
                        group,
                        [
                            {"type": "item.adjust", "payload": {"item_id": first, "delta": -1}},
                            {"type": "item.adjust", "payload": {"item_id": second, "delta": -1}},
                        ],
                    )
                    self.planned_groups.append([op.op_id for op in ops])
                elif roll < 0.235:
                    ops = [store.record("item.teleport", {"item_id": rng.choice(contended)})]
                else:
                    item = rng.choice(contended)
                    delta = rng.choice([2, 5]) if rng.random() < 0.2 else -rng.choice([1, 1, 2, 3])
                    ops = [store.record("item.adjust", {"item_id": item, "delta": delta})]
                self.recorded.extend(op.op_id for op in ops)
                count += len(ops)
                burst_left -= len(ops)
                if burst_left <= 0:  # a delivery done: a pause before the next stop
                    time.sleep(rng.uniform(0.1, 0.6))
                    burst_left = rng.randint(5, 40)
        finally:
            store.close()
            self.recording_done.set()

    def sync_until_drained(self, stop: threading.Event) -> None:
        rng = random.Random(self.seed + 1000)
        store = DeviceStore(self.db)
        engine = self.engine(store)
        try:
            while not stop.is_set():
                if rng.random() < 0.25:  # out of coverage for a while; recording goes on
                    self.offline_periods += 1
                    time.sleep(rng.uniform(0.3, 1.2))
                    continue
                report = engine.sync(max_rounds=4)
                self.syncs += 1
                self.replays += report.replayed
                if report.needs_attention:
                    self.errors.append(report.error or "needs attention")
                    return
                if self.recording_done.is_set() and store.counts()[PENDING] == 0:
                    self.drained.set()
                    return
                time.sleep(rng.uniform(0.05, 0.4))
        finally:
            engine.session.close()
            store.close()

    def final_pull(self) -> None:
        store = DeviceStore(self.db)
        engine = self.engine(store)
        try:
            report = engine.sync(max_rounds=60)
            assert report.complete, report.error
        finally:
            engine.session.close()
            store.close()


RETRANSMISSIONS = FaultRates(
    drop_request=0.08, drop_response=0.08, duplicate=0.08, delay=0.15, max_delay_s=0.25
)


def test_chaos_every_op_has_one_outcome_and_everything_converges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = run_chaos(tmp_path, RETRANSMISSIONS, capsys)

    assert figures["lost"] == 0 and figures["applied_twice"] == 0
    assert figures["wrong_outcomes"] == 0 and figures["split_groups"] == 0
    assert figures["rejections_told_differently"] == 0
    assert figures["ops"] >= 2000
    faults = figures["faults"]
    assert faults["dropped_requests"] and faults["dropped_responses"] and faults["duplicated"]
    assert faults["hook_fired"] == 1 and figures["server_sigkills"] == 1


def test_chaos_with_concurrent_duplicates_still_tells_every_device_the_stored_outcome(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rates = FaultRates(
        drop_request=0.08,
        drop_response=0.08,
        duplicate=0.04,
        duplicate_concurrent=0.08,
        delay=0.15,
        max_delay_s=0.25,
    )

    ops_per_device = OPS_PER_DEVICE_CONCURRENT_PG if on_postgres() else OPS_PER_DEVICE
    figures = run_chaos(tmp_path, rates, capsys, ops_per_device)

    assert figures["ops"] >= len(DEVICES) * ops_per_device
    assert figures["faults"]["duplicated_concurrently"]
    # What holds already: nothing lost, nothing applied twice, stock, replicas, audit.
    assert figures["lost"] == 0 and figures["applied_twice"] == 0
    # What two copies of a batch at once broke: each device hears the outcome the server stored.
    assert figures["wrong_outcomes"] == 0 and figures["split_groups"] == 0
    assert figures["rejections_told_differently"] == 0


def on_postgres() -> bool:
    return os.environ.get("QM_DATABASE_URL", "").startswith("postgres")


def run_chaos(
    tmp_path: Path,
    rates: FaultRates,
    capsys: pytest.CaptureFixture[str],
    ops_per_device: int = OPS_PER_DEVICE,
) -> dict[str, Any]:
    with chaos_database() as database_url:
        return _run_chaos(tmp_path, database_url, rates, capsys, ops_per_device)


def _run_chaos(
    tmp_path: Path,
    database_url: str,
    rates: FaultRates,
    capsys: pytest.CaptureFixture[str],
    ops_per_device: int,
) -> dict[str, Any]:
    started = time.monotonic()
    server = ServerProcess(tmp_path, database_url)
    stop = threading.Event()
    kills: list[float] = []
    try:
        server.start(demo=True)
        ready_at = time.monotonic() - started
        admin = login(server.url, "admin")
        contended = []
        for letter in "ABC":
            created = httpx.post(
                f"{server.url}/api/v1/items",
                json={"name": f"chaos cylinder {letter}", "qty": CONTENDED_START_QTY},
                headers=admin,
            )
            assert created.status_code == 201, created.text
            contended.append(created.json()["id"])

        with FaultProxy(server.url, rates, seed=11) as proxy:
            devices = [
                Device(
                    device_id,
                    user,
                    creates,
                    tmp_path / f"{device_id}.sqlite3",
                    proxy.url,
                    n,
                    ops_to_record=ops_per_device,
                )
                for n, (device_id, user, creates) in enumerate(DEVICES)
            ]
            killed = threading.Event()

            def kill_server() -> None:
                kills.append(time.monotonic() - started)
                server.kill()
                killed.set()

            # SIGKILL the server while the 13th batch is in flight (about a third of the way),
            # then restart it on the same port and data.
            proxy.arm("/api/v1/sync/batch", kill_server, skip=12)
            threads = [
                threading.Thread(target=d.record_all, args=(contended, stop)) for d in devices
            ] + [threading.Thread(target=d.sync_until_drained, args=(stop,)) for d in devices]
            for thread in threads:
                thread.start()
            assert killed.wait(timeout=60), "no batch to kill the server under"
            time.sleep(1.0)  # devices meet a dead server for a while
            server.start(demo=False)
            restarted_at = time.monotonic() - started

            for device in devices:
                remaining = DEADLINE_S - (time.monotonic() - started)
                assert device.drained.wait(timeout=max(1.0, remaining)), (
                    f"{device.device_id} did not drain: {device.errors}"
                )
            for device in devices:
                device.final_pull()  # every push is in: the replicas can catch up
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            faults = dict(proxy.stats)

        figures = verify_convergence(server.url, devices, contended)
    finally:
        stop.set()
        server.stop()
    figures.update(
        {
            "faults": faults,
            "database": server.database,
            "server_ready_s": round(ready_at, 1),
            "server_sigkills": len(kills),
            "killed_at_s": round(kills[0], 1),
            "restarted_at_s": round(restarted_at, 1),
            "seconds": round(time.monotonic() - started, 1),
            "syncs": sum(d.syncs for d in devices),
            "offline_periods": sum(d.offline_periods for d in devices),
            "replayed_answers": sum(d.replays for d in devices),
        }
    )
    with capsys.disabled():
        print("\nchaos figures:")
        for key, value in figures.items():
            print(f"  {key:<28} {value}")
    return figures


def verify_convergence(base: str, devices: list[Device], contended: list[str]) -> dict[str, Any]:
    admin = login(base, "admin")
    outcomes: dict[str, tuple[str, int, Any]] = {}
    accepted_by_device: Counter[tuple[str, str]] = Counter()
    deltas: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    lost = 0
    differing_rejections = wrong_outcomes = split_groups = 0
    examples: list[str] = []
    for device in devices:
        with DeviceStore(device.db) as store:
            ops = store.ops()
            id_map = store.id_map()
            # Every acknowledged op is in the outbox once, with a final outcome.
            assert len({op.op_id for op in ops}) == len(ops) == len(device.recorded)
            assert {op.op_id for op in ops} == set(device.recorded)
            assert [op.device_seq for op in ops] == list(range(1, len(ops) + 1))
            lost += sum(op.state == PENDING for op in ops)
            for op in ops:
                outcomes[op.op_id] = (op.state, op.status or 0, op.body)
                if op.state == DONE:
                    accepted_by_device[(device.device_id, op.type)] += 1
                    item = op.payload.get("item_id")
                    if op.type == "item.adjust" and item in contended:
                        deltas[item] += op.payload["delta"]
                else:
                    code = op.body.get("code") if isinstance(op.body, dict) else None
                    reasons[f"{op.type} {op.status} {code}"] += 1
                    assert op.state == REJECTED and 400 <= (op.status or 0) < 500
            # Groups are all-or-nothing.
            for group in device.planned_groups:
                split_groups += len({outcomes[op_id][0] for op_id in group}) != 1
            # The server still holds one outcome per op, the same the device got: a replay of
            # every op answers from the record and applies nothing.
            session = Session(
                store,
                base,
                username=device.username,
                password=f"{device.username}-demo-pass",
                device_id=device.device_id,
            )
            try:
                for start in range(0, len(ops), 100):
                    chunk = ops[start : start + 100]
                    reply = session.request(
                        "POST",
                        "/api/v1/sync/batch",
                        json={"device_id": device.device_id, "ops": [op.wire() for op in chunk]},
                    )
                    assert reply.status_code in (200, 207), reply.text
                    for op, result in zip(chunk, reply.json()["results"], strict=True):
                        assert result["op_id"] == op.op_id
                        assert result["replayed"] is True, (op, result)
                        applied = 200 <= result["status"] < 300
                        if applied != (op.state == DONE):
                            wrong_outcomes += 1
                            examples.append(
                                f"#{op.device_seq} {op.type} device {op.status} {op.body}; "
                                f"server {result['status']}"
                            )
                        elif applied:
                            assert (result["status"], result["body"]) == (op.status, op.body)
                        elif (result["status"], result["body"]) != (op.status, op.body):
                            # Rejected on both sides, for another reason than the device heard.
                            differing_rejections += 1
            finally:
                session.close()
            # Temp ids resolved for every accepted create.
            creates = [op for op in ops if op.type == "item.create" and op.state == DONE]
            assert all(op.client_temp_id in id_map for op in creates)

    # Nothing applied twice: one audit entry per accepted op, per device and action.
    audit = paged(base, "/api/v1/audit", admin, entity_type="item")
    audited: Counter[tuple[str, str]] = Counter(
        (entry["device"], entry["action"])
        for entry in audit
        if entry["device"] in {d.device_id for d in devices}
    )
    applied_twice = sum(
        max(0, audited[key] - accepted_by_device[key]) for key in audited | accepted_by_device
    )
    assert audited == accepted_by_device, (audited, accepted_by_device)

    # Contended stock equals the model: start + every accepted delta, never below zero.
    server_items = {item["id"]: item for item in paged(base, "/api/v1/items", admin)}
    stock = {}
    for item in contended:
        stock[item[:8]] = server_items[item]["qty"]
        assert server_items[item]["qty"] == CONTENDED_START_QTY + deltas[item]
        assert server_items[item]["qty"] >= 0

    # Every replica equals what its user sees on the server.
    for device in devices:
        seen = {
            item["id"]: item for item in paged(base, "/api/v1/items", login(base, device.username))
        }
        with DeviceStore(device.db) as store:
            assert store.replica("item") == seen, device.device_id

    verify = httpx.get(f"{base}/api/v1/audit/verify", headers=admin, timeout=120).json()
    assert verify["ok"] is True, verify

    states = Counter(state for state, _, _ in outcomes.values())
    return {
        "ops": len(outcomes),
        "accepted": states[DONE],
        "rejected": states[REJECTED],
        "lost": lost,
        "applied_twice": applied_twice,
        "wrong_outcomes": wrong_outcomes,
        "split_groups": split_groups,
        "rejections_told_differently": differing_rejections,
        "wrong_outcome_examples": examples[:3],
        "contended_stock": stock,
        "audit_entries": verify["entries"],
        "rejections": dict(reasons.most_common(6)),
    }
