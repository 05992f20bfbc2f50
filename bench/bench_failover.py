"""Benchmark (issue 14, item 7): what synchronous replication costs a write, and how long a
failover keeps writes out, on a real pg_auto_failover group on 127.0.0.1.

In one run, through one `quartermaster serve` (the app of a PC that survives) following the primary:

  sync     PATCH /api/v1/items/{id}/qty {"delta": ±1} (fresh Idempotency-Key each) from N clients
           for S seconds, the primary waiting for its synchronous standby on every commit;
  single   the same load once the standby is gone (kill -9): the primary in `wait_primary`,
           committing alone, i.e. a single node with the same settings on the same machine;
  raw      beside each, single-row UPDATE commits straight on the primary from N connections:
           the commit's own cost, which the app's CPU hides on a small machine;
  failover K times: kill -9 of the primary's keeper and postgres while a client writes every
           50 ms; the time to promotion (monitor) and the client-visible write outage (first
           refused write to the next accepted one); the killed node restarts and rejoins before
           the next round.

The monitor runs with the tuned timeouts of tests/ha (README "A shop with failover").

    .venv/bin/python bench/bench_failover.py               # ~3 minutes: 8 clients, 15 s, 5 failovers
    .venv/bin/python bench/bench_failover.py --clients 4 --seconds 5 --failovers 5
Results and their reading: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.acceptance.test_served_api import start_quartermaster  # noqa: E402
from tests.ha.cluster import Cluster, Node, running_cluster, wait_for  # noqa: E402


@dataclass
class Load:
    latencies_ms: list[float] = field(default_factory=list)
    failures: int = 0
    seconds: float = 0.0

    def line(self, name: str) -> str:
        ordered = sorted(self.latencies_ms)
        p50 = ordered[len(ordered) // 2] if ordered else float("nan")
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else float("nan")
        rps = len(ordered) / self.seconds if self.seconds else 0.0
        return f"| {name} | {rps:.0f} | {p50:.1f} | {p99:.1f} | {len(ordered)} | {self.failures} |"


def login(base: str) -> dict[str, str]:
    reply = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": "admin", "password": "admin-demo-pass"},
        timeout=10,
    )
    reply.raise_for_status()
    return {"Authorization": f"Bearer {reply.json()['access']}"}


def write_load(base: str, headers: dict[str, str], item: str, clients: int, seconds: float) -> Load:
    load = Load()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        delta = 1 if index % 2 else -1
        with httpx.Client(timeout=15) as http:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                reply = http.patch(
                    f"{base}/api/v1/items/{item}/qty",
                    json={"delta": delta},
                    headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                )
                took = (time.perf_counter() - started) * 1000
                with lock:
                    if reply.status_code == 200:
                        load.latencies_ms.append(took)
                    else:
                        load.failures += 1
                delta = -delta

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - began
    return load


def raw_load(url: str, clients: int, seconds: float) -> Load:
    """Single-row UPDATE commits straight on the primary, one row per connection (no lock
    waits): what a commit costs the database, without the app."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS bench_raw (id int PRIMARY KEY, n bigint)")
        connection.execute(
            "INSERT INTO bench_raw SELECT g, 0 FROM generate_series(0, %s) g ON CONFLICT DO NOTHING",
            [clients],
        )
    load = Load()
    lock = threading.Lock()
    stop_at = time.monotonic() + seconds

    def client(index: int) -> None:
        with psycopg.connect(url, autocommit=True) as connection:
            while time.monotonic() < stop_at:
                started = time.perf_counter()
                connection.execute("UPDATE bench_raw SET n = n + 1 WHERE id = %s", [index])
                took = (time.perf_counter() - started) * 1000
                with lock:
                    load.latencies_ms.append(took)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = time.monotonic() - began
    return load


def say(message: str) -> None:
    print(f"{datetime.now(UTC):%H:%M:%S} {message}", file=sys.stderr, flush=True)


@dataclass
class Round:
    promotion_s: float
    outage_s: float
    rejoin_s: float


def one_failover(cluster: Cluster, base: str, headers: dict[str, str], item: str) -> Round:
    [primary] = [node for node in cluster.nodes if cluster.is_writable_primary(node)]
    [standby] = [node for node in cluster.nodes if node is not primary]
    answers: list[tuple[float, bool]] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=15) as http:
            while not stop.is_set():
                try:
                    reply = http.patch(
                        f"{base}/api/v1/items/{item}/qty",
                        json={"delta": 1},
                        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
                    )
                    answers.append((time.monotonic(), reply.status_code == 200))
                except httpx.HTTPError:
                    answers.append((time.monotonic(), False))
                stop.wait(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        wait_for("writes before the kill", lambda: sum(ok for _, ok in answers) >= 5, deadline_s=30)
        killed_at = time.monotonic()
        cluster.kill_node(primary)
        wait_for("promotion", lambda: cluster.is_writable_primary(standby), deadline_s=120)
        promoted_at = time.monotonic()
        wait_for("a write after promotion",
                 lambda: any(ok and at > promoted_at for at, ok in answers), deadline_s=60)  # fmt: skip
    finally:
        stop.set()
        prober.join(timeout=30)
    outage, refused_since = 0.0, None
    for at, ok in answers:
        if not ok and refused_since is None:
            refused_since = at
        elif ok and refused_since is not None:
            outage, refused_since = max(outage, at - refused_since), None
    back_at = time.monotonic()
    rejoin(cluster, primary)
    return Round(promoted_at - killed_at, outage, time.monotonic() - back_at)


def rejoin(cluster: Cluster, node: Node) -> None:
    """Restart `node` and wait until it is the synchronous standby of a settled primary."""
    cluster.restart_node(node)

    def settled() -> bool:
        states = cluster.states()
        others = [state for name, state in states.items() if name != node.name]
        return states.get(node.name) == ("secondary", "secondary") and others == [
            ("primary", "primary")
        ]

    wait_for(f"{node.name} back as standby", settled, deadline_s=120, every_s=0.5)


def redis_url() -> str:
    if os.environ.get("QM_CACHE_URL"):
        return os.environ["QM_CACHE_URL"]
    script = ROOT / "scripts" / "ensure-redis.sh"
    done = subprocess.run([str(script)], check=True, capture_output=True, text=True)
    return done.stdout.strip().rstrip("/") + "/11"


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.node()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"load average {load[0]:.1f} at the start"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--failovers", type=int, default=5)
    args = parser.parse_args()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {machine()}", flush=True)
    with running_cluster() as cluster, tempfile.TemporaryDirectory() as folder:
        scratch = Path(folder)
        env = {
            "QM_DATABASE_URL": cluster.database_url,
            "QM_CLUSTER_MONITOR_URL": cluster.monitor_url,
            "QM_CACHE_URL": redis_url(),
            "QM_SECRET_KEY": "bench-failover-secret-" + "x" * 40,
            "QM_AUDIT_KEY": "bench-failover-audit-" + "y" * 40,
            # No request limits: the load is one user's, far above a person's pace.
            "QM_API_REQUESTS_PER_USER": "0",
            "QM_API_REQUESTS_PER_IP": "0",
        }
        app, base = start_quartermaster(scratch, ["demo", "--serve", "--no-access-log"], env)
        try:
            headers = login(base)
            item = httpx.post(
                f"{base}/api/v1/items",
                json={"name": "bench failover", "qty": 1_000_000},
                headers=headers,
            ).json()["id"]
            write_load(base, headers, item, args.clients, 2)  # warm-up
            primary, standby = cluster.nodes
            say("writes with the synchronous standby")
            synchronous = write_load(base, headers, item, args.clients, args.seconds)
            raw_synchronous = raw_load(cluster.node_url(primary), args.clients, args.seconds)
            cluster.kill_node(standby)
            wait_for("the primary alone", lambda: cluster.states().get(primary.name,
                     ("",))[0] == "wait_primary", deadline_s=60)  # fmt: skip
            say("writes on the primary alone")
            single = write_load(base, headers, item, args.clients, args.seconds)
            raw_single = raw_load(cluster.node_url(primary), args.clients, args.seconds)
            rejoin(cluster, standby)
            rounds = []
            for index in range(args.failovers):
                say(f"failover {index + 1} of {args.failovers}")
                rounds.append(one_failover(cluster, base, headers, item))
        finally:
            app.terminate()
            app.wait(timeout=30)
    report(args, (synchronous, single, raw_synchronous, raw_single), rounds)
    return 0


def report(args: argparse.Namespace, loads: tuple[Load, ...], rounds: list[Round]) -> None:
    synchronous, single, raw_synchronous, raw_single = loads
    print(f"\nwrites: {args.clients} clients, {args.seconds:.0f} s each")
    print("| set-up | req/s | p50 ms | p99 ms | writes | refused |")
    print("|---|---|---|---|---|---|")
    print(synchronous.line("PATCH qty via the app: primary + synchronous standby"))
    print(single.line("PATCH qty via the app: primary alone (wait_primary)"))
    print(raw_synchronous.line("UPDATE commit on the primary: + synchronous standby"))
    print(raw_single.line("UPDATE commit on the primary: alone"))
    print(f"\nfailovers: {len(rounds)} kills of the primary (keeper + postgres, kill -9)")
    print("| | min | median | max |")
    print("|---|---|---|---|")
    for name, values in (
        ("kill → promotion (s)", [r.promotion_s for r in rounds]),
        ("client-visible write outage (s)", [r.outage_s for r in rounds]),
        ("old primary back → standby (s)", [r.rejoin_s for r in rounds]),
    ):
        print(
            f"| {name} | {min(values):.1f} | {statistics.median(values):.1f} | {max(values):.1f} |"
        )


if __name__ == "__main__":
    raise SystemExit(main())
