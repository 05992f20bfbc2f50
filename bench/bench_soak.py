"""Soak: PATCH qty at 16 clients for minutes, watching each worker's memory and connections.

Catches what a short benchmark cannot: a worker whose resident memory grows with every request
or whose database connections pile up (issue 9 measured 105-159 SQLite connections and 150-200 MB
per uvicorn worker after a few minutes, from a thread and a connection per request). Every
`--every` seconds it samples, per worker process: RSS (/proc/PID/status) and its database
connections (SQLite: open descriptors on the database file; PostgreSQL: the worker's TCP
sockets to the server's port). It fails (exit 1) when a worker holds more connections than
`--max-connections` (the server's QM_HTTP_THREADS) or its RSS grew more than `--max-growth`
between the end of the first minute and the end of the run.

    .venv/bin/python bench/bench_soak.py                       # SQLite, 10 minutes
    .venv/bin/python bench/bench_soak.py --db postgres --minutes 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from bench_items import (
    HOST,
    PASSWORD,
    Target,
    base_env,
    create_item,
    ensure_postgres,
    ensure_wrk,
    free_port,
    login,
    machine_facts,
    pipeline_cmd,
    process_tree,
    qm,
    run_wrk,
    say,
    start_server,
    stop_server,
    with_dbname,
)

Counter = Callable[[int], int]  # a worker's pid → its database connections


@dataclass
class Sample:
    at_s: float
    rss_mib: dict[int, float]
    connections: dict[int, int]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def sqlite_connections(pid: int, database: str) -> int:
    """Open descriptors on the database file itself (one per connection; -wal/-shm not counted)."""
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == database:
                count += 1
        except OSError:
            continue
    return count


def postgres_connections(pid: int, port: int) -> int:
    """The worker's TCP sockets whose remote end is the PostgreSQL port."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[9] in inodes and remote_port == port and fields[3] == "01":
                count += 1
    return count


def workers_of(server_pid: int) -> list[int]:
    """uvicorn's worker processes: the server's descendants that are Python processes."""
    return [pid for pid in process_tree(server_pid) if pid != server_pid]


def sample(server_pid: int, started: float, connections_of: Counter) -> Sample:
    workers = workers_of(server_pid)
    return Sample(
        at_s=time.monotonic() - started,
        rss_mib={pid: rss_mib(pid) for pid in workers},
        connections={pid: connections_of(pid) for pid in workers},
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration (default 10)")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-connections", type=int, default=4)
    parser.add_argument("--max-growth", type=float, default=0.10, help="RSS growth allowed")
    parser.add_argument("--pg-port", type=int, default=54330)
    return parser.parse_args(argv)


def prepare(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, str], Counter]:
    """The server's environment and how to count a worker's connections."""
    if args.db == "sqlite":
        env = base_env("", workdir)
        database = str(workdir / "quartermaster.sqlite3")
        return env, lambda pid: sqlite_connections(pid, database)
    server = ensure_postgres(args.pg_port)
    name = f"qm_soak_{os.getpid()}"
    subprocess.run(["psql", server, "-qc", f"CREATE DATABASE {name}"], check=True)
    port = urlparse(server).port or 5432
    return base_env(with_dbname(server, name), workdir), lambda pid: postgres_connections(pid, port)


def report(samples: list[Sample], args: argparse.Namespace) -> bool:
    say("| t s | worker | RSS MiB | DB connections |")
    say("|---:|---:|---:|---:|")
    for s in samples:
        for pid in sorted(s.rss_mib):
            say(f"| {s.at_s:.0f} | {pid} | {s.rss_mib[pid]:.1f} | {s.connections[pid]} |")
    baseline = next((s for s in samples if s.at_s >= 60), samples[0])
    last = samples[-1]
    ok = True
    for pid, rss in last.rss_mib.items():
        growth = rss / baseline.rss_mib.get(pid, rss) - 1
        worst = max(s.connections.get(pid, 0) for s in samples)
        verdict = growth <= args.max_growth and worst <= args.max_connections
        ok = ok and verdict
        say(
            f"worker {pid}: RSS {baseline.rss_mib.get(pid, rss):.1f} → {rss:.1f} MiB "
            f"({growth:+.1%}), at most {worst} connections: {'ok' if verdict else 'FAIL'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="qm-soak-"))
    env, connections_of = prepare(args, workdir)
    env.update({"QM_API_REQUESTS_PER_USER": "0", "QM_API_REQUESTS_PER_IP": "0"})
    qm(env, "migrate")
    qm(env, "createuser", "bench", "--role", "admin", stdin=PASSWORD + "\n")
    port = free_port()
    server = start_server(pipeline_cmd(port, args.workers), env, port, workdir / "server.log")
    say(f"soak: {args.db}, {args.workers} workers, {args.clients} clients, {args.minutes} min")
    say(f"machine: {machine_facts()}")
    try:
        token = login(port)
        item_path = f"/api/v1/items/{create_item(port, token)}/qty"
        target = Target("soak", port, server.pid, token=token, use_key=True)
        started, samples = time.monotonic(), []
        while time.monotonic() - started < args.minutes * 60:
            stats, _ = run_wrk(wrk, target, item_path, args.clients, args.every, workdir, None)
            samples.append(sample(server.pid, started, connections_of))
            errors = stats["status"] + stats["timeout"] + stats["connect"]
            rate = (stats["requests"] - errors) / (stats["duration_us"] / 1e6)
            say(
                f"  t={samples[-1].at_s:.0f}s {rate:.0f} ok req/s, p99 "
                f"{stats['p99_us'] / 1000:.0f} ms, {errors} errors; "
                f"RSS {sorted(round(v) for v in samples[-1].rss_mib.values())} MiB; "
                f"connections {sorted(samples[-1].connections.values())}"
            )
    finally:
        stop_server(server)
    say(f"server: http://{HOST}:{port}, data in {workdir}")
    return 0 if report(samples, args) else 1


if __name__ == "__main__":
    sys.exit(main())
