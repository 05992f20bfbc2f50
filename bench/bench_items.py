"""Benchmark: PATCH /api/v1/items/{id}/qty {"delta": ±1} through the full pipeline, beside baselines.

In one run, on SQLite and on PostgreSQL, at 1 and 16 concurrent clients, it measures requests per
second and p50/p99 latency of:

  pipeline        `quartermaster serve` (auth, idempotency with a fresh Idempotency-Key per request,
                  audit chain, change feed): the full request path;
  pipeline-nokey  the same server and route without an Idempotency-Key;
  plain           a minimal plain-Django view (bench/qm_plain) doing the same guarded ORM update
                  (and reading the new qty back), no auth/idempotency/audit/feed, served by the same
                  uvicorn the same way;
  raw             the same guarded UPDATE, each in its own transaction, with sqlite3 / psycopg
                  directly from 1 and 16 threads (connections) in this process.

HTTP load comes from wrk (Debian package `wrk`, installed when missing and running as root) with a
Lua script for PATCH + Authorization + JSON body; its own CPU share is reported beside each figure.
Deltas alternate -1/+1 and the item starts with 1,000,000 units, so stock never runs out.

PostgreSQL: a durable private server (fsync on) started by
`QM_PG_PORT=54330 QM_PG_DURABLE=1 scripts/ensure-postgres.sh`, unless --pg-url names one; the
benchmark creates and drops its own database there.

    .venv/bin/python bench/bench_items.py            # ~5 minutes
    .venv/bin/python bench/bench_items.py --quick    # ~2 minutes, one short round
    .venv/bin/python bench/bench_items.py --profile --profile-gil   # + py-spy of the pipeline
    .venv/bin/python bench/bench_items.py --whatif conn --whatif conn,location,actor
        # + recommended changes applied from outside (bench/qm_whatif), measured side by side
    .venv/bin/python bench/bench_items.py --compare-src /tmp/base   # + the pipeline of another
        # source tree (e.g. `git archive BASE src | tar -x -C /tmp/base`): before/after

Optional tools: py-spy (--profile) and psycopg-pool (--whatif pool/conn on PostgreSQL), pinned in
the `bench` extra: `.venv/bin/pip install -c constraints.txt -e ".[bench]"`.
Results and their reading: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import platform
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PASSWORD = "bench-password-0123456789"
START_QTY = 1_000_000
HOST = "127.0.0.1"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


# ---------------------------------------------------------------------------------------------
# Environment: wrk, PostgreSQL, machine facts


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install the Debian package `wrk` (apt-get install wrk)")
    say("installing wrk (Debian package)…")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
    return shutil.which("wrk") or sys.exit("could not install wrk")


def ensure_postgres(port: int) -> str:
    env = {**os.environ, "QM_PG_PORT": str(port), "QM_PG_DURABLE": "1"}
    env.pop("QM_TEST_POSTGRES_URL", None)
    out = subprocess.run(
        [str(ROOT / "scripts" / "ensure-postgres.sh")],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def with_dbname(url: str, name: str) -> str:
    parts = urlparse(url)
    return urlunparse(parts._replace(path="/" + name))


def machine_facts() -> dict[str, Any]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kib = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    import django
    import psycopg

    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "loadavg_at_start": os.getloadavg(),
    }


# ---------------------------------------------------------------------------------------------
# CPU accounting


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies over all CPUs from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    tree = _children()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, []))
    return out


def tree_cpu_seconds(pid: int) -> float:
    """CPU of `pid` and its live descendants, plus the children it has reaped (e.g. the
    PostgreSQL backends of closed connections)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            parts = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(parts[11]) + int(parts[12])) / ticks
            if p == pid:
                total += (int(parts[13]) + int(parts[14])) / ticks
    return total


def postgres_cpu_seconds(port: int) -> float:
    """CPU of the postgres processes serving `port` (postmaster found by its -p argument)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            if cmd and cmd[0].endswith(b"postgres") and b"-p" in cmd:
                idx = cmd.index(b"-p")
                if idx + 1 < len(cmd) and cmd[idx + 1] == str(port).encode():
                    return tree_cpu_seconds(int(entry.name))
    return 0.0


# ---------------------------------------------------------------------------------------------
# Results


@dataclass
class Result:
    db: str
    clients: int
    path: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    client_cpu: float = 0.0  # load generator CPU, share of one core
    server_cpu: float = 0.0  # app server processes, share of one core
    db_cpu: float = 0.0  # postgres processes, share of one core
    machine_busy: float = 0.0  # all CPUs, 0..1
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        """Successful requests (2xx) per second: failed ones (500s, timeouts) do not count."""
        return max(0, self.requests - self.errors) / self.seconds if self.seconds else 0.0


class CpuWindow:
    """Measures CPU of the server tree, postgres, this process's waited children and the machine."""

    def __init__(self, server_pid: int | None, pg_port: int | None) -> None:
        self.server_pid = server_pid
        self.pg_port = pg_port

    def __enter__(self) -> CpuWindow:
        self.t0 = time.perf_counter()
        self.m0 = machine_cpu()
        self.c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.s0 = resource.getrusage(resource.RUSAGE_SELF)
        self.srv0 = tree_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        self.pg0 = postgres_cpu_seconds(self.pg_port) if self.pg_port else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        m1 = machine_cpu()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = wall
        self.children = (c1.ru_utime + c1.ru_stime - self.c0.ru_utime - self.c0.ru_stime) / wall
        self.self_cpu = (s1.ru_utime + s1.ru_stime - self.s0.ru_utime - self.s0.ru_stime) / wall
        self.server = (
            (tree_cpu_seconds(self.server_pid) - self.srv0) / wall if self.server_pid else 0.0
        )
        self.pg = (postgres_cpu_seconds(self.pg_port) - self.pg0) / wall if self.pg_port else 0.0
        self.machine = (m1[0] - self.m0[0]) / max(1.0, m1[1] - self.m0[1])


# ---------------------------------------------------------------------------------------------
# HTTP load with wrk

WRK_LUA = r"""
local token = "%(token)s"
local path = "%(path)s"
local use_key = %(use_key)s
local run = "%(run)s"
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end
local counter = 0
function request()
  counter = counter + 1
  local delta = (counter %% 2 == 1) and -1 or 1
  local headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}
  if use_key then
    headers["Idempotency-Key"] = run .. "-" .. tostring(tid) .. "-" .. tostring(counter)
  end
  return wrk.format("PATCH", path, headers, '{"delta":' .. delta .. '}')
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"mean_us":%%f,' ..
    '"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


ERROR_KINDS = ("connect", "read", "write", "status", "timeout")


@dataclass
class Target:
    name: str
    port: int
    pid: int
    token: str = ""
    use_key: bool = False


def run_wrk(
    wrk: str,
    target: Target,
    item_path: str,
    clients: int,
    seconds: float,
    workdir: Path,
    pg_port: int | None,
) -> tuple[dict[str, Any], CpuWindow]:
    script = workdir / f"patch-{target.name}-{clients}-{time.monotonic_ns()}.lua"
    script.write_text(
        WRK_LUA
        % {
            "token": target.token,
            "path": item_path,
            "use_key": "true" if target.use_key else "false",
            "run": f"r{time.monotonic_ns()}",
        }
    )
    threads = 1  # one event-loop thread drives 16 connections easily and keeps wrk's CPU low
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{clients}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://{HOST}:{target.port}",
    ]
    with CpuWindow(target.pid, pg_port) as cpu:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    return json.loads(line[len("WRKJSON ") :]), cpu


# ---------------------------------------------------------------------------------------------
# Servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class DbSetup:
    kind: str  # "sqlite" | "postgres"
    url: str
    workers: int
    env: dict[str, str]
    pg_port: int | None = None
    sqlite_path: str = ""


def base_env(db_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QM_")}
    env.update(
        {
            "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{BENCH}",
            "QM_DATABASE_URL": db_url,
            "QM_DATA_DIR": str(data_dir),
            "QM_SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
            "QM_AUDIT_KEY": "bench-audit-key-not-for-production-0123456789abcdef",
            "QM_LOG_LEVEL": "WARNING",
            # Tokens outlive the whole run (one login per server).
            "QM_ACCESS_TOKEN_TTL_S": "7200",
            # The request limits would refuse the load itself (the pipeline is what is measured).
            "QM_API_REQUESTS_PER_USER": "0",
            "QM_API_REQUESTS_PER_IP": "0",
            # `serve --workers 2` needs a shared cache for rate limits and lockouts.
            "QM_CACHE_URL": os.environ.get("QM_CACHE_URL") or "redis://127.0.0.1:63799/11",
        }
    )
    return env


def qm(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "quartermaster", *args],
        env=env,
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"quartermaster {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def start_server(
    cmd: list[str], env: dict[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    proc = subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
    )
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                return proc
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server on port {port} did not become healthy: {log.read_text()[-2000:]}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def pipeline_cmd(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "quartermaster",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def plain_cmd(port: int, workers: int, app: str = "qm_plain.asgi:application") -> list[str]:
    # The same uvicorn options `quartermaster serve` uses (lifespan off, auto loop/http).
    return [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
    ]


def login(port: int) -> str:
    import httpx

    reply = httpx.post(
        f"http://{HOST}:{port}/api/v1/auth/login",
        json={"username": "bench", "password": PASSWORD},
        timeout=30,
    )
    reply.raise_for_status()
    return str(reply.json()["access"])


def create_item(port: int, token: str) -> str:
    import httpx

    reply = httpx.post(
        f"http://{HOST}:{port}/api/v1/items",
        json={"name": "bench item", "qty": START_QTY},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if reply.status_code != 201:
        raise RuntimeError(f"create item: {reply.status_code} {reply.text}")
    return str(reply.json()["id"])


def check_one(port: int, item_path: str, token: str) -> None:
    """One +1 then one -1 by hand: the route answers 200 before we load it."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for delta in (1, -1):
        reply = httpx.patch(
            f"http://{HOST}:{port}{item_path}", json={"delta": delta}, headers=headers, timeout=30
        )
        if reply.status_code != 200:
            raise RuntimeError(f"PATCH on port {port}: {reply.status_code} {reply.text}")


# ---------------------------------------------------------------------------------------------
# Raw SQL baseline


def raw_rate(setup: DbSetup, stock_id: int, threads: int, seconds: float) -> Result:
    """The guarded UPDATE in its own transaction, `threads` connections, for `seconds`."""
    latencies: list[list[float]] = [[] for _ in range(threads)]
    failures = [0] * threads
    stop = threading.Event()
    ready = threading.Barrier(threads + 1)
    sql = "UPDATE inventory_stock SET qty = qty + {p} WHERE id = {p} AND qty + {p} >= 0"

    def worker_sqlite(n: int) -> None:
        conn = sqlite3.connect(setup.sqlite_path, timeout=20, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        stmt = sql.format(p="?")
        ready.wait()
        delta, lat = -1, latencies[n]
        while not stop.is_set():
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            rows = conn.execute(stmt, (delta, stock_id, delta)).rowcount
            conn.execute("COMMIT")
            lat.append(time.perf_counter() - t)
            failures[n] += rows != 1
            delta = -delta
        conn.close()

    def worker_pg(n: int) -> None:
        import psycopg

        conn = psycopg.connect(setup.url)
        stmt = sql.format(p="%s")
        ready.wait()
        delta, lat = -1, latencies[n]
        while not stop.is_set():
            t = time.perf_counter()
            with conn.transaction():
                rows = conn.execute(stmt, (delta, stock_id, delta)).rowcount
            lat.append(time.perf_counter() - t)
            failures[n] += rows != 1
            delta = -delta
        conn.close()

    target = worker_sqlite if setup.kind == "sqlite" else worker_pg
    pool = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(threads)]
    for t in pool:
        t.start()
    ready.wait()
    with CpuWindow(None, setup.pg_port) as cpu:
        time.sleep(seconds)
        stop.set()
        for t in pool:
            t.join()
    all_lat = sorted(x for lat in latencies for x in lat)
    return Result(
        db=setup.kind,
        clients=threads,
        path="raw",
        requests=len(all_lat),
        seconds=cpu.wall,
        p50_ms=_pct(all_lat, 50) * 1000,
        p99_ms=_pct(all_lat, 99) * 1000,
        errors=sum(failures),
        client_cpu=cpu.self_cpu,
        db_cpu=cpu.pg,
        machine_busy=cpu.machine,
        note="threads in the bench process (python)",
    )


def _pct(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def stock_row_id(setup: DbSetup, item_id: str) -> int:
    if setup.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(setup.sqlite_path)) as conn:
            row = conn.execute(
                "SELECT s.id FROM inventory_stock s JOIN inventory_location l ON l.id = s.location_id"
                " WHERE l.is_default AND s.item_id = ?",
                (item_id.replace("-", ""),),
            ).fetchone()
    else:
        import psycopg

        with psycopg.connect(setup.url) as conn:
            row = conn.execute(
                "SELECT s.id FROM inventory_stock s JOIN inventory_location l ON l.id = s.location_id"
                " WHERE l.is_default AND s.item_id = %s",
                (item_id,),
            ).fetchone()
    if row is None:
        raise RuntimeError("stock row of the bench item not found")
    return int(row[0])


def db_version(setup: DbSetup) -> str:
    if setup.kind == "sqlite":
        return f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL, BEGIN IMMEDIATE)"
    import psycopg

    with psycopg.connect(setup.url) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        fsync = conn.execute("SHOW fsync").fetchone()
        sync = conn.execute("SHOW synchronous_commit").fetchone()
    return (
        f"PostgreSQL {version[0] if version else '?'} (fsync={fsync[0] if fsync else '?'}, "
        f"synchronous_commit={sync[0] if sync else '?'})"
    )


# ---------------------------------------------------------------------------------------------
# Profiling (py-spy on the pipeline server under load)


def profile_pipeline(
    wrk: str,
    target: Target,
    item_path: str,
    seconds: float,
    workdir: Path,
    out_path: Path,
    clients: int,
    gil: bool = False,
) -> Profile | None:
    pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(pyspy).exists():
        say("py-spy not found: pip install py-spy (optional group `bench`) to profile")
        return None
    raw = workdir / "pipeline.collapsed"
    spy = subprocess.Popen(
        [
            pyspy,
            "record",
            "--pid",
            str(target.pid),
            "--subprocesses",
            "--rate",
            "250",
            "--duration",
            str(round(seconds)),
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
            *(["--gil"] if gil else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    time.sleep(1.0)
    run_wrk(wrk, target, item_path, clients, seconds, workdir, None)
    _, err = spy.communicate(timeout=60)
    if not raw.exists():
        say(f"py-spy produced nothing: {err.decode()[-500:]}")
        return None
    out_path.write_text(raw.read_text())
    return summarize_profile(raw.read_text())


# Categories of the request path: each sample goes to the innermost frame that names one.
CATEGORIES: list[tuple[str, str]] = [
    ("tokens.decode", "auth: JWT decode"),
    ("load_actor", "auth: load_actor (user + locations queries)"),
    ("claim (core/idempotency.py)", "idempotency: claim (advisory lock + lookup)"),
    ("store (core/idempotency.py)", "idempotency: store response"),
    ("fingerprint", "idempotency: request fingerprint"),
    ("_lock_head", "audit/feed: lock chain head"),
    ("append_entries", "audit: seal (HMAC) + insert"),
    ("record_changes", "audit/feed: feed insert + head update"),
    ("get_default_location", "handler: get_default_location query"),
    ("_guarded_update", "handler: guarded UPDATE"),
    ("get_item", "handler: get_item (read back)"),
    ("handle (", "handler: other"),
    ("Atomic.__enter__", "transaction: BEGIN / SAVEPOINT"),
    ("Atomic.__exit__", "transaction: COMMIT / RELEASE"),
    ("close_old_connections", "connection: open/close/health check"),
    ("get_new_connection", "connection: open/close/health check"),
    ("to_http", "response: render JSON"),
    ("_get_values", "ninja: parse + validate input"),
    ("Operation.run", "ninja: other"),
    ("BaseHandler.get_response", "django: middleware, routing"),
    ("convert_exception_to_response", "django: middleware, routing"),
    ("ASGIHandler", "django: ASGI handler (async side)"),
    ("asgiref", "asgiref: sync/async hand-off"),
    ("uvicorn", "uvicorn: HTTP protocol"),
]


@dataclass
class Profile:
    samples: int
    categories: list[tuple[str, float]]
    functions: list[tuple[str, float, float]]


def summarize_profile(collapsed: str) -> Profile:
    """Shares of all non-idle samples of the server processes, by category and by function."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    cats: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [_frame_name(f) for f in stack.split(";") if not f.startswith("process ")]
        frames = [f for f in frames if not f.startswith(" ")]
        if not frames:
            continue
        count = int(count_text)
        total += count
        for name in set(frames):
            inclusive[name] += count
        own[frames[-1]] += count
        cats[_category(frames)] += count
    if not total:
        return Profile(0, [], [])
    return Profile(
        total,
        [(name, 100.0 * n / total) for name, n in cats.most_common()],
        [
            (name, 100.0 * n / total, 100.0 * own.get(name, 0) / total)
            for name, n in inclusive.most_common(400)
        ],
    )


def _category(frames: list[str]) -> str:
    for frame in reversed(frames):
        for needle, name in CATEGORIES:
            if needle in frame:
                return name
    return "other (event loop, threads, startup)"


def _frame_name(frame: str) -> str:
    # "func (path/to/module.py:123)" → "func (module.py)"
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if parts else file
    return f"{name} ({short})"


# ---------------------------------------------------------------------------------------------
# One database


def prepare_db(kind: str, args: argparse.Namespace, workdir: Path) -> DbSetup:
    data_dir = workdir / kind
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        path = data_dir / "bench.sqlite3"
        url = f"sqlite:///{path}"
        return DbSetup(
            "sqlite", url, args.sqlite_workers, base_env(url, data_dir), sqlite_path=str(path)
        )
    import psycopg

    server = args.pg_url or ensure_postgres(args.pg_port)
    port = urlparse(server).port or 5432
    name = f"qm_bench_{os.getpid()}"
    with psycopg.connect(with_dbname(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = with_dbname(server, name)
    return DbSetup("postgres", url, args.pg_workers, base_env(url, data_dir), pg_port=port)


def drop_db(setup: DbSetup) -> None:
    if setup.kind != "postgres":
        return
    import psycopg

    name = urlparse(setup.url).path.lstrip("/")
    with (
        contextlib.suppress(psycopg.Error),
        psycopg.connect(with_dbname(setup.url, "postgres"), autocommit=True) as conn,
    ):
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def servers(
    setup: DbSetup,
    workdir: Path,
    whatif: list[str],
    compare_src: Path | None,
    compare_whatif: str = "",
) -> Iterator[tuple[list[Target], str]]:
    """Start the pipeline and plain servers (plus what-if variants); yield them and the item id."""
    say(f"{setup.kind}: migrate, createuser, start servers ({setup.workers} workers each)")
    qm(setup.env, "migrate")
    qm(setup.env, "createuser", "bench", "--role", "admin", stdin=PASSWORD + "\n")
    plain_env = {**setup.env, "DJANGO_SETTINGS_MODULE": "qm_plain.settings"}
    specs: list[tuple[str, Callable[[int, int], list[str]], dict[str, str], bool]] = [
        ("pipeline", pipeline_cmd, setup.env, True),
        ("plain", plain_cmd, plain_env, False),
    ]
    whatif_app = functools.partial(plain_cmd, app="qm_whatif.asgi:application")
    for spec in whatif:
        names = set(spec.split(","))
        env = {**setup.env, "DJANGO_SETTINGS_MODULE": "qm_whatif.settings"}
        env["QM_BENCH_WHATIF"] = spec
        # qm_whatif.asgi is Quartermaster's ASGI app plus the `thread` experiment; uvicorn gets
        # the options `quartermaster serve` passes.
        specs.append((f"pipeline+{spec}", whatif_app, env, True))
        if names & {"pool", "conn"} and names.isdisjoint({"location", "actor"}):
            # The plain baseline with the same connection handling.
            env = {**plain_env, "QM_BENCH_WHATIF": spec}
            specs.append((f"plain+{spec}", whatif_app, env, False))
    if compare_src:
        # The same pipeline from another source tree (e.g. `git archive` of the base commit),
        # on the same database: before/after of a change, side by side.
        env = {**setup.env, "PYTHONPATH": f"{compare_src / 'src'}{os.pathsep}{BENCH}"}
        if compare_whatif:
            env["DJANGO_SETTINGS_MODULE"] = "qm_whatif.settings"
            env["QM_BENCH_WHATIF"] = compare_whatif
            whatif_app = functools.partial(plain_cmd, app="qm_whatif.asgi:application")
            specs.append((f"pipeline@base+{compare_whatif}", whatif_app, env, True))
        else:
            specs.append(("pipeline@base", pipeline_cmd, env, True))
    procs: list[subprocess.Popen[bytes]] = []
    targets: list[Target] = []
    try:
        for name, make_cmd, env, authenticated in specs:
            port = free_port()
            proc = start_server(
                make_cmd(port, setup.workers),
                env,
                port,
                workdir / f"{setup.kind}-{name}.log",
            )
            procs.append(proc)
            targets.append(Target(name, port, proc.pid, use_key=authenticated))
        token = login(targets[0].port)
        item_id = create_item(targets[0].port, token)
        item_path = f"/api/v1/items/{item_id}/qty"
        for target in targets:
            if target.use_key:
                target.token = token
            check_one(target.port, item_path, target.token)
        yield targets, item_id
    finally:
        for proc in procs:
            stop_server(proc)


def measure(
    wrk: str,
    setup: DbSetup,
    targets: list[Target],
    item_path: str,
    clients: int,
    args: argparse.Namespace,
    workdir: Path,
) -> list[Result]:
    """Rounds of short runs, the paths interleaved, so background load hits them alike."""
    runs: dict[str, list[tuple[dict[str, Any], CpuWindow]]] = {t.name: [] for t in targets}
    for target in targets:
        if args.warmup > 0:
            run_wrk(wrk, target, item_path, clients, args.warmup, workdir, None)
    for n in range(args.rounds):
        for target in targets:
            stats, cpu = run_wrk(
                wrk, target, item_path, clients, args.duration, workdir, setup.pg_port
            )
            runs[target.name].append((stats, cpu))
            rps = stats["requests"] / (stats["duration_us"] / 1e6)
            say(
                f"{setup.kind}: {target.name:<15} {clients:>2} clients, round {n + 1}/"
                f"{args.rounds}: {rps:7.0f} req/s, p50 {stats['p50_us'] / 1000:6.2f} ms, "
                f"machine busy {cpu.machine:.0%}"
            )
    results = []
    for target in targets:
        stats_list = [s for s, _ in runs[target.name]]
        cpus = [c for _, c in runs[target.name]]
        errors = sum(int(s[k]) for s in stats_list for k in ERROR_KINDS)
        per_round = [
            max(0, s["requests"] - sum(int(s[k]) for k in ERROR_KINDS)) / (s["duration_us"] / 1e6)
            for s in stats_list
        ]
        results.append(
            Result(
                db=setup.kind,
                clients=clients,
                path=target.name,
                requests=sum(int(s["requests"]) for s in stats_list),
                seconds=sum(s["duration_us"] for s in stats_list) / 1e6,
                p50_ms=statistics.median(s["p50_us"] for s in stats_list) / 1000,
                p99_ms=statistics.median(s["p99_us"] for s in stats_list) / 1000,
                errors=errors,
                client_cpu=statistics.fmean(c.children for c in cpus),
                server_cpu=statistics.fmean(c.server for c in cpus),
                db_cpu=statistics.fmean(c.pg for c in cpus),
                machine_busy=statistics.fmean(c.machine for c in cpus),
                note="wrk -t1",
                extra={
                    "rps_rounds": per_round,
                    "app_cpu_ms_per_req": 1000
                    * sum(c.server * c.wall for c in cpus)
                    / max(1, sum(int(s["requests"]) for s in stats_list)),
                    "pg_cpu_ms_per_req": 1000
                    * sum(c.pg * c.wall for c in cpus)
                    / max(1, sum(int(s["requests"]) for s in stats_list)),
                },
            )
        )
    return results


def bench_db(kind: str, args: argparse.Namespace, wrk: str, workdir: Path) -> dict[str, Any]:
    setup = prepare_db(kind, args, workdir)
    results: list[Result] = []
    profile: Profile | None = None
    info: dict[str, Any] = {"db": kind, "workers": setup.workers}
    try:
        info["version"] = db_version(setup)
        with servers(setup, workdir, args.whatif, args.compare_src, args.compare_whatif) as (
            started,
            item_id,
        ):
            item_path = f"/api/v1/items/{item_id}/qty"
            pipe = started[0]
            targets = list(started)
            if args.nokey:
                nokey = Target("pipeline-nokey", pipe.port, pipe.pid, token=pipe.token)
                targets.insert(1, nokey)
            for clients in args.clients:
                for result in measure(wrk, setup, targets, item_path, clients, args, workdir):
                    results.append(result)
                    say(f"   {result.path:<15} {result.clients:>2} clients: {fmt_row(result)}")
            if args.profile and kind in args.profile_dbs:
                say(
                    f"{kind}: profiling {args.profile_target} (py-spy, {args.profile_clients} clients, "
                    f"{args.profile_s:g} s) …"
                )
                chosen = next((t for t in started if t.name == args.profile_target), pipe)
                profile = profile_pipeline(
                    wrk,
                    chosen,
                    item_path,
                    args.profile_s,
                    workdir,
                    workdir / f"profile-{kind}.collapsed.txt",
                    args.profile_clients,
                    args.profile_gil,
                )
        # The pipeline kept its promises under load: the chain verifies (after the servers
        # stopped, so their connections are gone).
        try:
            verify = qm(setup.env, "audit", "verify").strip()
        except RuntimeError as error:
            verify = f"audit verify failed: {str(error).strip().splitlines()[-1]}"
        info["audit_verify"] = verify
        say(f"{kind}: {verify}")
        stock_id = stock_row_id(setup, item_id)
        for threads in args.clients:
            say(f"{kind}: raw guarded UPDATE, {threads} connections, {args.duration:g} s …")
            result = raw_rate(setup, stock_id, threads, args.duration)
            results.append(result)
            say(f"   raw             {threads:>2} threads: {fmt_row(result)}")
    finally:
        drop_db(setup)
    info["results"] = [asdict(r) | {"rps": r.rps} for r in results]
    info["profile"] = asdict(profile) if profile else None
    return info


# ---------------------------------------------------------------------------------------------
# Reporting


def fmt_row(r: Result) -> str:
    return (
        f"{r.rps:8.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  errors {r.errors}"
        f"  client CPU {r.client_cpu:4.0%}  server CPU {r.server_cpu:4.0%}"
        f"  postgres CPU {r.db_cpu:4.0%}  machine busy {r.machine_busy:4.0%}"
    )


def table(infos: list[dict[str, Any]]) -> str:
    lines = [
        "| DB | clients | path | ok req/s (rounds min-max) | p50 ms | p99 ms | errors "
        "| app CPU ms/req | PG CPU ms/req | load-gen CPU | app CPU | PG CPU | machine busy |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for info in infos:
        for r in info["results"]:
            rounds = r["extra"].get("rps_rounds") or [r["rps"]]
            app_ms = r["extra"].get("app_cpu_ms_per_req")
            pg_ms = r["extra"].get("pg_cpu_ms_per_req")
            lines.append(
                f"| {r['db']} | {r['clients']} | {r['path']} | {r['rps']:,.0f} "
                f"({min(rounds):,.0f}-{max(rounds):,.0f}) | {r['p50_ms']:.2f} "
                f"| {r['p99_ms']:.2f} | {r['errors']} "
                f"| {'-' if app_ms is None else f'{app_ms:.2f}'} "
                f"| {'-' if pg_ms is None or r['db'] != 'postgres' else f'{pg_ms:.2f}'} "
                f"| {r['client_cpu']:.0%} | {r['server_cpu']:.0%} | {r['db_cpu']:.0%} "
                f"| {r['machine_busy']:.0%} |"
            )
    lines += [
        "",
        "Cost ratios = time per successful request relative to the baseline (inverse ok req/s). "
        "Target: pipeline <= 1.5x plain. 'plain+conn fix' is the plain view with the same "
        "connection handling as the what-if pipelines.",
        "",
        "| DB | clients | path | vs plain | vs plain+conn fix | vs raw SQL | p50 vs plain "
        "| app CPU/req vs plain | <= 1.5x plain |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for info in infos:
        by = {(r["path"], r["clients"]): r for r in info["results"]}
        for clients in sorted({r["clients"] for r in info["results"]}):
            plain, raw = by.get(("plain", clients)), by.get(("raw", clients))
            pooled = next(
                (
                    r
                    for r in info["results"]
                    if r["clients"] == clients and r["path"].startswith("plain+")
                ),
                None,
            )
            if not (plain and raw):
                continue
            for r in info["results"]:
                if r["clients"] != clients or not r["path"].startswith("pipeline"):
                    continue
                vs_plain = plain["rps"] / r["rps"]
                vs_pool = f"{pooled['rps'] / r['rps']:.2f}x" if pooled else "-"
                lines.append(
                    f"| {info['db']} | {clients} | {r['path']} | {vs_plain:.2f}x | {vs_pool} "
                    f"| {raw['rps'] / r['rps']:.1f}x | {r['p50_ms'] / plain['p50_ms']:.2f}x "
                    f"| {cpu_ratio(r, plain)} | {'yes' if vs_plain <= 1.5 else 'no'} |"
                )
    return "\n".join(lines)


def cpu_ratio(r: dict[str, Any], base: dict[str, Any]) -> str:
    a, b = r["extra"].get("app_cpu_ms_per_req"), base["extra"].get("app_cpu_ms_per_req")
    return f"{a / b:.2f}x" if a and b else "-"


def profile_table(profile: dict[str, Any], limit: int = 30) -> str:
    lines = [
        f"{profile['samples']} samples (non-idle, all worker processes).",
        "",
        "| where the time goes (innermost match) | % of samples |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {pct:.1f} |" for name, pct in profile["categories"]]
    ours = [
        row
        for row in profile["functions"]
        if any(k in row[0] for k in ("core/", "identity/", "inventory/", "sql/", "models/", "db/"))
    ]
    lines += ["", "| function (Quartermaster and Django ORM) | inclusive % | self % |"]
    lines += ["|---|---:|---:|"]
    lines += [f"| `{name}` | {inc:.1f} | {own:.1f} |" for name, inc, own in ours[:limit]]
    top_self = sorted(profile["functions"], key=lambda r: -r[2])[:12]
    lines += ["", "| top self time | self % |", "|---|---:|"]
    lines += [f"| `{name}` | {own:.1f} |" for name, _, own in top_self]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="PATCH item qty: full pipeline vs plain Django vs raw SQL, SQLite and PostgreSQL.",
        epilog="Needs wrk (Debian package; installed automatically as root) and, for PostgreSQL, "
        "the server binaries (scripts/ensure-postgres.sh installs them as root).",
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 round of 3 s runs, 1 s warm-up (~2 minutes)"
    )
    parser.add_argument("--duration", type=float, help="seconds per run (default 5)")
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds per measurement (default 3; quick 1)"
    )
    parser.add_argument(
        "--no-nokey",
        dest="nokey",
        action="store_false",
        help="skip the pipeline run without Idempotency-Key",
    )
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per run (default 2)")
    parser.add_argument(
        "--db", choices=["sqlite", "postgres", "both"], default="both", help="databases to run"
    )
    parser.add_argument(
        "--clients", default="1,16", help="concurrency levels, comma separated (default 1,16)"
    )
    parser.add_argument(
        "--sqlite-workers", type=int, default=2, help="uvicorn workers on SQLite (default 2)"
    )
    parser.add_argument(
        "--pg-workers", type=int, default=4, help="uvicorn workers on PostgreSQL (default 4)"
    )
    parser.add_argument(
        "--pg-url",
        help="PostgreSQL server URL (any database name; the bench creates its own). Default: a "
        "durable private server from scripts/ensure-postgres.sh on --pg-port",
    )
    parser.add_argument("--pg-port", type=int, default=54330, help="private server port (54330)")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the pipeline server under load afterwards"
    )
    parser.add_argument(
        "--profile-clients", type=int, default=1, help="clients while profiling (default 1)"
    )
    parser.add_argument(
        "--profile-db", default="postgres", help="databases to profile: sqlite,postgres"
    )
    parser.add_argument("--profile-s", type=float, default=20, help="profile seconds (20)")
    parser.add_argument(
        "--profile-gil",
        action="store_true",
        help="sample only threads holding the GIL (Python CPU), not threads waiting on the DB",
    )
    parser.add_argument(
        "--profile-target",
        default="pipeline",
        help="server to profile: pipeline (default) or a what-if name such as pipeline+conn",
    )
    parser.add_argument(
        "--whatif",
        action="append",
        default=[],
        help="(repeatable) "
        "also run a pipeline with experiments applied from bench/qm_whatif "
        "(comma list of conn,pool,thread,location,actor; a connection-only list adds the plain "
        "baseline with the same change)",
    )
    parser.add_argument(
        "--compare-src",
        type=Path,
        help="also run the pipeline from this source tree (with src/), e.g. an export of the base "
        "commit, as `pipeline@base`",
    )
    parser.add_argument(
        "--compare-whatif",
        default="",
        help="run the --compare-src pipeline with these what-if experiments (e.g. conn)",
    )
    parser.add_argument(
        "--from-json", type=Path, help="print the tables of a run saved with --json, run nothing"
    )
    parser.add_argument("--json", type=Path, help="also write all figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.profile_dbs = {d.strip() for d in args.profile_db.split(",")}
    return args


def render(facts: dict[str, Any], infos: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"# PATCH /api/v1/items/{{id}}/qty — {facts['date']}")
    print(
        f"machine: {facts['nproc']} CPUs, {facts['cpu']}, {facts['ram_gib']} GiB; "
        f"Python {facts['python']}, Django {facts['django']}, psycopg {facts['psycopg']}"
    )
    for info in infos:
        print(f"{info['db']}: {info['version']}; {info['workers']} uvicorn workers per server")
        print(f"{info['db']}: {info.get('audit_verify', '')}")
    print()
    print(table(infos))
    for info in infos:
        if info["profile"]:
            print(f"\nProfile of {args.profile_target} on {info['db']} (py-spy):\n")
            print(profile_table(info["profile"]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        saved = json.loads(args.from_json.read_text())
        for info in saved["runs"]:
            for r in info["results"]:
                r["rps"] = max(0, r["requests"] - r["errors"]) / r["seconds"]
        render(saved["machine"], saved["runs"], args)
        return 0
    wrk = ensure_wrk()
    wants_pool = any({"pool", "conn"} & set(w.split(",")) for w in args.whatif)
    if wants_pool and args.db != "sqlite":
        try:
            import psycopg_pool  # noqa: F401
        except ImportError:
            sys.exit('--whatif pool/conn needs psycopg-pool: pip install -e ".[bench]"')
    facts = machine_facts()
    say(
        f"machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram_gib']} GiB RAM, "
        f"load average {facts['loadavg_at_start'][0]:.2f}"
    )
    workdir = Path(tempfile.mkdtemp(prefix="qm-bench-"))
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    infos = []
    try:
        for kind in kinds:
            infos.append(bench_db(kind, args, wrk, workdir))
    finally:
        if args.keep:
            say(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print()
    print(
        f"{args.rounds} interleaved round(s) of {args.duration:g} s per figure after "
        f"{args.warmup:g} s warm-up; HTTP load: wrk -t1 (one thread, Lua script)"
    )
    render(facts, infos, args)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "runs": infos}, indent=2) + "\n")
        say(f"figures written to {args.json}")
    mean_busy = statistics.fmean(
        r["machine_busy"] for info in infos for r in info["results"] if r["path"] != "raw"
    )
    say(f"done (mean machine busy during HTTP runs {mean_busy:.0%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
