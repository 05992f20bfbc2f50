"""Benchmark: Quartermaster beside two "seed" peer systems, run as black boxes, in one run.

  PATCH  Quartermaster `PATCH /api/v1/items/{id}/qty` (bearer token, a fresh Idempotency-Key per
         request, body {"delta": -1/+1 alternating}) beside seed-001 (github.com/BeardedNerd92/
         inventory-systemv2 @ 104b071, Django 4.2) `PATCH /items/{id}/qty`, same body.
  GET    Quartermaster `GET /api/v1/items/{id}` beside seed-003 (github.com/kamtafw/
         field-inspector-backend, Django 5.2 + DRF + simplejwt) `GET /api/v1/templates/{id}/`:
         its read-only catalogue record (an inspection template) fetched by id with a JWT, the
         nearest thing to one item. (Its inspection detail route is not a plain read: its
         `get_object` takes `select_for_update()`.)

The peers are never copied into this repository. At run time each is exported from its git
mirror (`git archive COMMIT | tar -x`) into --work-dir (default /var/tmp/qm-peers/<name>), gets its
own virtualenv there (venv-<name>: its requirements.txt from PyPI, plus gunicorn and
psycopg2-binary when missing) and a settings module written by this script into the checkout,
which imports the peer's settings and only changes: DATABASES (SQLite file or PostgreSQL database
of the run), DEBUG off, ALLOWED_HOSTS, rate limits off (django-ratelimit, DRF throttles), and for
seed-003 dummy values for the env vars its settings refuse to start without. Each peer runs under
gunicorn with 2 sync workers; Quartermaster under `quartermaster serve --workers 2` (uvicorn).
Rate limits are switched off on Quartermaster too (QM_API_REQUESTS_PER_USER/IP=0).

Load: wrk (1 thread, Lua script), 1 and 16 connections. Per cell: a warm-up per server, then R
rounds of D seconds with the two servers interleaved in every round (ours, peer; then peer, ours).
`ok req/s` counts only 2xx answers; any non-2xx, timeout or socket error is an error.

    .venv/bin/python bench/bench_peers.py --quick          # 1 round x 3 s, SQLite + PostgreSQL
    .venv/bin/python bench/bench_peers.py --db sqlite      # 3 rounds x 5 s
    .venv/bin/python bench/bench_peers.py --peer-src DIR   # DIR/seed001, DIR/seed003 already there

Get the mirrors with the session's fetch tool (github:BeardedNerd92/inventory-systemv2 and
github:kamtafw/field-inspector-backend) or pass --seed001-git/--seed003-git (any git dir, e.g. a
`git clone --bare`). Results and their reading: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from bench_items import (
    ERROR_KINDS,
    HOST,
    PASSWORD,
    ROOT,
    WRK_LUA,
    CpuWindow,
    Result,
    base_env,
    ensure_postgres,
    ensure_wrk,
    free_port,
    machine_facts,
    pipeline_cmd,
    qm,
    say,
    start_server,
    stop_server,
    with_dbname,
)

START_QTY = 1_000_000
MIRRORS = Path("/work/.mirror")
PEER_URLS = {
    "seed001": "https://github.com/BeardedNerd92/inventory-systemv2",
    "seed003": "https://github.com/kamtafw/field-inspector-backend",
}
EXTRA_REQUIREMENTS = {"gunicorn": "gunicorn==25.1.0", "psycopg2": "psycopg2-binary==2.9.11"}
TARGETS = {  # (endpoint, clients, database) -> minimum ours/peer of issue 9; p99 ceiling in ms
    ("patch", 1, "sqlite"): (1.2, None),
    ("patch", 16, "sqlite"): (3.0, 250.0),
    ("patch", 16, "postgres"): (2.0, None),
    ("get", 1, "sqlite"): (2.0, None),
    ("get", 16, "sqlite"): (2.0, None),
    ("get", 1, "postgres"): (2.0, None),
    ("get", 16, "postgres"): (2.0, None),
}


# ---------------------------------------------------------------------------------------------
# The peers: where they come from, how they are built and configured


@dataclass
class Peer:
    name: str  # seed001 | seed003
    mirror_glob: str
    commit: str
    app_dir: str  # inside the checkout: where manage.py is
    settings_base: str  # the peer's own settings module
    wsgi: str
    endpoint: str  # patch | get
    settings_extra: str = ""
    env: dict[str, str] = field(default_factory=dict)
    src: Path = Path()
    venv: Path = Path()
    sha: str = ""


def peer_specs(args: argparse.Namespace) -> list[Peer]:
    seed003_env = {  # its settings refuse to import without these (Cloudinary is never called)
        "DJANGO_SECRET_KEY": "bench-peer-secret-key-0123456789abcdef",
        "SECRET_KEY": "bench-peer-secret-key-0123456789abcdef",
        "CLOUDINARY_CLOUD_NAME": "bench-dummy",
        "CLOUDINARY_API_KEY": "bench-dummy",
        "CLOUDINARY_API_SECRET": "bench-dummy",
        "DEBUG": "False",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    seed003_extra = (
        "RATELIMIT_ENABLE = False\n"
        "REST_FRAMEWORK = {**REST_FRAMEWORK, 'DEFAULT_THROTTLE_CLASSES': [],"
        " 'DEFAULT_THROTTLE_RATES': {}}\n"
        "SILENCED_SYSTEM_CHECKS = ['django_ratelimit.E003', 'django_ratelimit.W001']\n"
    )
    return [
        Peer(
            "seed001",
            str(args.seed001_git or MIRRORS / "BeardedNerd92+inventory-systemv2*"),
            args.seed001_commit,
            "inventory",
            "inventory.settings",
            "inventory.wsgi:application",
            "patch",
            env={"DJANGO_SECRET_KEY": "bench-peer-secret-key-0123456789abcdef"},
        ),
        Peer(
            "seed003",
            str(args.seed003_git or MIRRORS / "kamtafw+field-inspector-backend*"),
            args.seed003_commit,
            ".",
            "config.settings",
            "config.wsgi:application",
            "get",
            settings_extra=seed003_extra,
            env=seed003_env,
        ),
    ]


def find_git_dir(pattern: str) -> Path | None:
    for hit in sorted(glob.glob(pattern)):
        for candidate in (Path(hit), Path(hit) / "repo", Path(hit) / ".git"):
            probe = subprocess.run(
                ["git", "--git-dir", str(candidate), "rev-parse", "--git-dir"],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                return candidate
    return None


def checkout(peer: Peer, args: argparse.Namespace) -> None:
    """Export the peer's source outside our tree (or use --peer-src DIR/<name>)."""
    if args.peer_src:
        peer.src = (args.peer_src / peer.name).resolve()
        if not peer.src.is_dir():
            sys.exit(f"--peer-src: {peer.src} is missing")
        peer.sha = "(from --peer-src)"
    else:
        git_dir = find_git_dir(peer.mirror_glob)
        if git_dir is None:
            url = PEER_URLS[peer.name]
            sys.exit(
                f"no git mirror of {peer.name} ({url}) at {peer.mirror_glob}.\n"
                f"Get one: `git clone --bare {url} DIR` and pass --{peer.name}-git DIR (the "
                "default looks under /work/.mirror, where the agent fetch tool puts snapshots: "
                f"fetch github:{url.removeprefix('https://github.com/')}); or export the sources "
                f"to DIR/{peer.name} yourself and pass --peer-src DIR."
            )
        git = ["git", "--git-dir", str(git_dir)]
        peer.sha = subprocess.run(
            [*git, "rev-parse", peer.commit], capture_output=True, text=True, check=True
        ).stdout.strip()
        peer.src = args.work_dir / peer.name
        shutil.rmtree(peer.src, ignore_errors=True)
        peer.src.mkdir(parents=True)
        archive = subprocess.Popen([*git, "archive", peer.sha], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(peer.src)], stdin=archive.stdout, check=True)
        if archive.wait() != 0:
            sys.exit(f"git archive {peer.sha} of {git_dir} failed")
    if peer.src.is_relative_to(ROOT):
        sys.exit(f"{peer.src} is inside {ROOT}: peers must live outside the project tree")
    say(f"{peer.name}: source {peer.src} ({peer.sha[:12]})")


def build_venv(peer: Peer, args: argparse.Namespace) -> None:
    """venv-<name> with the peer's requirements (+ gunicorn, psycopg2 when it lacks them)."""
    requirements = (peer.src / "requirements.txt").read_text()
    names = requirements.lower()
    extra = [pin for key, pin in EXTRA_REQUIREMENTS.items() if key not in names]
    peer.venv = args.work_dir / f"venv-{peer.name}"
    stamp = hashlib.sha256((requirements + "\n".join(extra)).encode()).hexdigest()
    stamp_file = peer.venv / "qm-bench-stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    say(f"{peer.name}: building {peer.venv} (requirements.txt + {extra or 'nothing'}) …")
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--clear", str(peer.venv)], check=True)
    pip = [str(peer.venv / "bin" / "pip"), "install", "--disable-pip-version-check"]
    log = peer.venv / "pip.log"
    with log.open("w") as handle:
        done = subprocess.run(
            [*pip, "-r", str(peer.src / "requirements.txt"), *extra],
            stdout=handle,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        sys.exit(f"{peer.name}: pip install failed (see {log}):\n{log.read_text()[-3000:]}")
    stamp_file.write_text(stamp)


def peer_database(peer: Peer, kind: str, run_dir: Path, pg_url: str) -> dict[str, Any]:
    if kind == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(run_dir / f"{peer.name}.db")}
    parts = urlparse(pg_url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or 5432),
    }


def write_settings(peer: Peer, kind: str, database: dict[str, Any]) -> str:
    """The benchmark's own settings module, in the peer's checkout (never in our tree)."""
    module = f"qm_bench_settings_{kind}"
    body = (
        f"# Written by Quartermaster's bench/bench_peers.py at run time.\n"
        f"from {peer.settings_base} import *  # noqa: F403\n\n"
        f"DEBUG = False\nALLOWED_HOSTS = ['*']\n"
        f"DATABASES = {{'default': {database!r}}}\n{peer.settings_extra}"
    )
    (peer.src / peer.app_dir / f"{module}.py").write_text(body)
    (peer.src / peer.app_dir / "logs").mkdir(exist_ok=True)  # seed-003 logs to files there
    return module


def peer_env(peer: Peer, module: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QM_", "DJANGO_"))}
    env.pop("PYTHONPATH", None)
    env.update(peer.env)
    env["DJANGO_SETTINGS_MODULE"] = module
    env["PATH"] = f"{peer.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def manage(peer: Peer, env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [str(peer.venv / "bin" / "python"), "manage.py", *args],
        cwd=peer.src / peer.app_dir,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{peer.name}: manage.py {args[0]} failed:\n{out.stderr[-3000:]}")
    return out.stdout


def start_peer(peer: Peer, env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd = [str(peer.venv / "bin" / "gunicorn"), "--workers", "2", "--worker-class", "sync"]
    cmd += ["--bind", f"{HOST}:{port}", "--chdir", str(peer.src / peer.app_dir), peer.wsgi]
    proc = subprocess.Popen(
        cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{peer.name} exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://{HOST}:{port}/", timeout=2)  # any answer means it is up
            return proc
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"{peer.name} did not answer on port {port}: {log.read_text()[-2000:]}")


# ---------------------------------------------------------------------------------------------
# One server under test, and its data


@dataclass
class Side:
    name: str  # "quartermaster" | peer name
    port: int
    pid: int
    path: str  # the URL path under load
    token: str = ""
    body_bytes: int = 0  # size of one answer, for the record


def check(side: Side, method: str) -> None:
    """One request of each kind by hand: the route answers 200 before we load it."""
    headers = {"Authorization": f"Bearer {side.token}"} if side.token else {}
    url = f"http://{HOST}:{side.port}{side.path}"
    for delta in (-1, 1) if method == "PATCH" else (0,):
        body = {"delta": delta} if method == "PATCH" else None
        key = {"Idempotency-Key": str(uuid.uuid4())} if method == "PATCH" else {}
        reply = httpx.request(method, url, json=body, headers=headers | key, timeout=30)
        if reply.status_code != 200:
            raise RuntimeError(
                f"{side.name} {method} {side.path}: {reply.status_code} {reply.text}"
            )
        side.body_bytes = len(reply.content)


def ours_setup(port: int, kind: str) -> tuple[str, str]:
    """Login, create an item, stock it with a big delta; returns (token, item id)."""
    base = f"http://{HOST}:{port}/api/v1"
    reply = httpx.post(f"{base}/auth/login", json={"username": "bench", "password": PASSWORD})
    reply.raise_for_status()
    token = str(reply.json()["access"])
    auth = {"Authorization": f"Bearer {token}"}
    reply = httpx.post(f"{base}/items", json={"name": f"bench {kind}", "qty": 0}, headers=auth)
    if reply.status_code != 201:
        raise RuntimeError(f"create item: {reply.status_code} {reply.text}")
    item_id = str(reply.json()["id"])
    headers = auth | {"Idempotency-Key": str(uuid.uuid4())}
    reply = httpx.patch(f"{base}/items/{item_id}/qty", json={"delta": START_QTY}, headers=headers)
    if reply.status_code != 200:
        raise RuntimeError(f"stock item: {reply.status_code} {reply.text}")
    return token, item_id


def seed001_setup(port: int) -> str:
    reply = httpx.post(
        f"http://{HOST}:{port}/items", json={"name": "bench item", "qty": START_QTY}, timeout=30
    )
    if reply.status_code != 201:
        raise RuntimeError(f"seed001 create item: {reply.status_code} {reply.text}")
    return f"/items/{reply.json()['id']}/qty"


SEED003_TEMPLATE = """
from apps.inspections.models import InspectionTemplate
items = [{"id": f"q{i}", "label": f"Check {i}", "type": "boolean", "required": True}
         for i in range(1, 6)]
print(InspectionTemplate.objects.create(name="Bench template", checklist_items=items).id)
"""


def seed003_setup(peer: Peer, env: dict[str, str], port: int) -> tuple[str, str]:
    """A template (it has no API to create one: its manage.py shell) and a user (signup)."""
    template_id = manage(peer, env, "shell", "-c", SEED003_TEMPLATE).strip().splitlines()[-1]
    reply = httpx.post(
        f"http://{HOST}:{port}/api/v1/auth/signup/",
        json={"first_name": "Bench", "last_name": "User", "password": PASSWORD},
        timeout=30,
    )
    if reply.status_code != 201:
        raise RuntimeError(f"seed003 signup: {reply.status_code} {reply.text}")
    return str(reply.json()["access"]), f"/api/v1/templates/{template_id}/"


# ---------------------------------------------------------------------------------------------
# Load

GET_LUA = r"""
local token = "%(token)s"
local path = "%(path)s"
function request()
  local headers = {}
  if token ~= "" then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("GET", path, headers)
end
""" + WRK_LUA[WRK_LUA.index("function done") :]


def wrk_once(
    wrk: str, side: Side, endpoint: str, clients: int, seconds: float, workdir: Path, pg: int | None
) -> tuple[dict[str, Any], CpuWindow]:
    """One wrk run; PATCH uses bench_items' script (fresh Idempotency-Key, alternating delta)."""
    values = {"token": side.token, "path": side.path, "use_key": "true", "run": uuid.uuid4().hex}
    script = workdir / f"{endpoint}-{side.name}-{clients}-{time.monotonic_ns()}.lua"
    script.write_text((WRK_LUA if endpoint == "patch" else GET_LUA) % values)
    cmd = [wrk, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s"]
    cmd += ["-s", str(script), f"http://{HOST}:{side.port}"]
    with CpuWindow(side.pid, pg) as cpu:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {out.stdout}\n{out.stderr}")
    return json.loads(line[len("WRKJSON ") :]), cpu


def to_result(
    kind: str, endpoint: str, clients: int, side: Side, runs: list[tuple[dict[str, Any], Any]]
) -> Result:
    stats = [s for s, _ in runs]
    cpus = [c for _, c in runs]
    requests = sum(int(s["requests"]) for s in stats)
    per_round = [
        max(0, s["requests"] - sum(int(s[k]) for k in ERROR_KINDS)) / (s["duration_us"] / 1e6)
        for s in stats
    ]
    return Result(
        db=kind,
        clients=clients,
        path=side.name,
        requests=requests,
        seconds=sum(s["duration_us"] for s in stats) / 1e6,
        p50_ms=statistics.median(s["p50_us"] for s in stats) / 1000,
        p99_ms=statistics.median(s["p99_us"] for s in stats) / 1000,
        errors=sum(int(s[k]) for s in stats for k in ERROR_KINDS),
        client_cpu=statistics.fmean(c.children for c in cpus),
        server_cpu=statistics.fmean(c.server for c in cpus),
        db_cpu=statistics.fmean(c.pg for c in cpus),
        machine_busy=statistics.fmean(c.machine for c in cpus),
        note=endpoint,
        extra={
            "endpoint": endpoint,
            "url_path": side.path,
            "body_bytes": side.body_bytes,
            "rps_rounds": per_round,
            "app_cpu_ms_per_req": 1000 * sum(c.server * c.wall for c in cpus) / max(1, requests),
        },
    )


def measure_cell(
    wrk: str, kind: str, endpoint: str, sides: list[Side], clients: int, ctx: RunContext
) -> list[Result]:
    """Warm-up each, then rounds with the servers interleaved (order reversed every other round)."""
    args = ctx.args
    runs: dict[str, list[tuple[dict[str, Any], CpuWindow]]] = {s.name: [] for s in sides}
    for side in sides:
        if args.warmup > 0:
            wrk_once(wrk, side, endpoint, clients, args.warmup, ctx.workdir, None)
    for n in range(args.rounds):
        for side in sides if n % 2 == 0 else sides[::-1]:
            stats, cpu = wrk_once(wrk, side, endpoint, clients, args.duration, ctx.workdir, ctx.pg)
            runs[side.name].append((stats, cpu))
            ok = stats["requests"] - sum(int(stats[k]) for k in ERROR_KINDS)
            say(
                f"{kind} {endpoint} {clients:>2} clients, round {n + 1}/{args.rounds}: "
                f"{side.name:<13} {ok / (stats['duration_us'] / 1e6):7.0f} ok req/s, p99 "
                f"{stats['p99_us'] / 1000:7.1f} ms, machine busy {cpu.machine:.0%}"
            )
    return [to_result(kind, endpoint, clients, side, runs[side.name]) for side in sides]


# ---------------------------------------------------------------------------------------------
# One database: our server and the peers, their data, the cells


@dataclass
class RunContext:
    args: argparse.Namespace
    workdir: Path  # this database's run directory (data, logs, Lua scripts)
    pg_server: str = ""  # PostgreSQL server URL (any database name)
    pg: int | None = None  # its port, for CPU accounting
    databases: list[str] = field(default_factory=list)  # created here, dropped at the end

    def database_url(self, name: str) -> str:
        import psycopg

        with psycopg.connect(with_dbname(self.pg_server, "postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return with_dbname(self.pg_server, name)

    def drop_databases(self) -> None:
        import psycopg

        with (
            contextlib.suppress(psycopg.Error),
            psycopg.connect(with_dbname(self.pg_server, "postgres"), autocommit=True) as conn,
        ):
            for name in self.databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def our_server(kind: str, ctx: RunContext, workers: int) -> Iterator[tuple[Side, str]]:
    """`quartermaster serve --workers N` on a database of its own; named `quartermaster`, or
    `quartermaster-wN` when the run compares worker counts (`--our-workers`)."""
    name = "quartermaster" if len(ctx.args.our_workers) == 1 else f"quartermaster-w{workers}"
    data_dir = ctx.workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        url = f"sqlite:///{data_dir / 'quartermaster.sqlite3'}"
    else:
        url = ctx.database_url(f"qm_peers_{name.replace('-', '_')}")
    env = base_env(url, data_dir)
    env.update({"QM_API_REQUESTS_PER_USER": "0", "QM_API_REQUESTS_PER_IP": "0"})
    qm(env, "migrate")
    qm(env, "createuser", "bench", "--role", "admin", stdin=PASSWORD + "\n")
    port = free_port()
    proc = start_server(pipeline_cmd(port, workers), env, port, ctx.workdir / f"{name}.log")
    try:
        token, item_id = ours_setup(port, kind)
        yield Side(name, port, proc.pid, "", token), item_id
    finally:
        stop_server(proc)


@contextlib.contextmanager
def peer_server(peer: Peer, kind: str, ctx: RunContext) -> Iterator[Side]:
    pg_url = ctx.database_url(f"qm_peers_{peer.name}") if kind == "postgres" else ""
    module = write_settings(peer, kind, peer_database(peer, kind, ctx.workdir, pg_url))
    env = peer_env(peer, module)
    manage(peer, env, "migrate", "--noinput")
    if kind == "sqlite" and ctx.args.peer_wal:
        with contextlib.closing(sqlite3.connect(ctx.workdir / f"{peer.name}.db")) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent in the file
    port = free_port()
    proc = start_peer(peer, env, port, ctx.workdir / f"{peer.name}.log")
    try:
        if peer.name == "seed001":
            side = Side(peer.name, port, proc.pid, seed001_setup(port))
        else:
            token, path = seed003_setup(peer, env, port)
            side = Side(peer.name, port, proc.pid, path, token)
        check(side, "PATCH" if peer.endpoint == "patch" else "GET")
        yield side
    finally:
        stop_server(proc)


def bench_db(kind: str, peers: list[Peer], wrk: str, args: argparse.Namespace) -> dict[str, Any]:
    ctx = RunContext(args, args.work_dir / f"run-{os.getpid()}" / kind)
    ctx.workdir.mkdir(parents=True, exist_ok=True)
    if kind == "postgres":
        ctx.pg_server = args.pg_url or ensure_postgres(args.pg_port)
        ctx.pg = urlparse(ctx.pg_server).port or 5432
    info: dict[str, Any] = {
        "db": kind,
        "results": [],
        "cells": [],  # per cell: our servers' rows, then the peer's
        "skipped": {},
        "version": db_version(ctx),
    }
    try:
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(our_server(kind, ctx, n)) for n in args.our_workers]
            for peer in peers:
                for ours, item_id in servers:
                    ours.path = f"/api/v1/items/{item_id}" + (
                        "/qty" if peer.endpoint == "patch" else ""
                    )
                    check(ours, "PATCH" if peer.endpoint == "patch" else "GET")
                sides = [ours for ours, _ in servers]
                try:
                    with peer_server(peer, kind, ctx) as side:
                        for clients in args.clients:
                            cell = measure_cell(
                                wrk, kind, peer.endpoint, [*sides, side], clients, ctx
                            )
                            rows = [asdict(r) | {"rps": r.rps} for r in cell]
                            info["results"] += rows
                            info["cells"].append(rows)
                except (RuntimeError, httpx.HTTPError, subprocess.CalledProcessError) as error:
                    reason = str(error).strip().splitlines()[-1][:300]
                    say(f"{kind}: {peer.name} skipped: {reason}")
                    info["skipped"][peer.name] = reason
    finally:
        if kind == "postgres":
            ctx.drop_databases()
    return info


def db_version(ctx: RunContext) -> str:
    if not ctx.pg_server:
        return f"SQLite {sqlite3.sqlite_version}"
    import psycopg

    with psycopg.connect(with_dbname(ctx.pg_server, "postgres")) as conn:
        row = conn.execute("SELECT version(), current_setting('fsync')").fetchone()
    return f"{row[0].split(' on ')[0]} (fsync={row[1]})" if row else "PostgreSQL ?"


# ---------------------------------------------------------------------------------------------
# Reporting


def results_table(infos: list[dict[str, Any]]) -> str:
    lines = [
        "| DB | endpoint | clients | server | ok req/s (rounds) | p50 ms | p99 ms | errors "
        "| app CPU ms/req | machine busy |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for info in infos:
        for r in info["results"]:
            rounds = r["extra"]["rps_rounds"]
            spread = f" ({min(rounds):,.0f}-{max(rounds):,.0f})" if len(rounds) > 1 else ""
            lines.append(
                f"| {r['db']} | {r['note']} | {r['clients']} | {r['path']} | {r['rps']:,.0f}"
                f"{spread} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['errors']} "
                f"| {r['extra']['app_cpu_ms_per_req']:.1f} | {r['machine_busy']:.0%} |"
            )
    return "\n".join(lines)


def ratio_table(infos: list[dict[str, Any]]) -> str:
    lines = [
        "| DB | endpoint | clients | ours vs peer | ours/peer ok req/s | peer/ours app CPU per req "
        "| ours p99 ms | issue 9 target | met |",
        "|---|---|---:|---|---:|---:|---:|---|---|",
    ]
    for info in infos:
        pairs = [(ours, cell[-1]) for cell in info["cells"] for ours in cell[:-1]]
        for ours, peer in pairs:
            ratio = ours["rps"] / peer["rps"] if peer["rps"] else float("inf")
            cpu_ours = ours["extra"]["app_cpu_ms_per_req"]
            cpu_ratio = peer["extra"]["app_cpu_ms_per_req"] / cpu_ours if cpu_ours else 0.0
            key = (ours["note"], ours["clients"], info["db"])
            minimum, p99_max = TARGETS.get(key, (None, None))
            target, met = "-", "-"
            if minimum is not None:
                target = f"≥ {minimum:g}x" + (f", p99 ≤ {p99_max:g} ms" if p99_max else "")
                ok = ratio >= minimum and (p99_max is None or ours["p99_ms"] <= p99_max)
                met = "yes" if ok else "**no**"
            lines.append(
                f"| {info['db']} | {ours['note']} | {ours['clients']} | {ours['path']} vs {peer['path']} "
                f"| {ratio:.2f} | {cpu_ratio:.2f} | {ours['p99_ms']:.1f} | {target} | {met} |"
            )
        for name, reason in info["skipped"].items():
            lines.append(f"| {info['db']} | - | - | {name} | skipped: {reason} | | | | |")
    return "\n".join(lines)


def render(facts: dict[str, Any], peers: list[Peer], infos: list[dict[str, Any]]) -> None:
    args_line = facts["method"]
    print(f"# Quartermaster vs seed peers — {facts['date']}")
    print(
        f"machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['ram_gib']} GiB, Linux "
        f"{facts['kernel']}; load average at start {facts['loadavg_at_start'][0]:.2f}"
    )
    print(
        f"ours: {facts['code']}, quartermaster serve --workers "
        f"{'/'.join(map(str, facts['our_workers']))} (uvicorn), "
        f"Django {facts['django']}"
    )
    routes = {"patch": "PATCH /items/{id}/qty", "get": "GET /api/v1/templates/{id}/"}
    for peer in peers:
        print(
            f"{peer.name}: {peer.sha[:12]}, Django {facts['peers'][peer.name]}, gunicorn 2 sync "
            f"workers, {routes[peer.endpoint]}"
        )
    for info in infos:
        print(f"{info['db']}: {info['version']}")
    print(args_line)
    print()
    print(results_table(infos))
    print()
    print(ratio_table(infos))


def our_code() -> str:
    """The commit measured, and whether src/ had uncommitted changes."""
    git = ["git", "-C", str(ROOT)]
    quiet: dict[str, Any] = {"capture_output": True, "text": True, "check": False}
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], **quiet)
    dirty = subprocess.run([*git, "status", "--porcelain", "src"], **quiet)
    suffix = " + uncommitted changes in src/" if dirty.stdout.strip() else ""
    return f"commit {head.stdout.strip() or '?'}{suffix}"


def django_version(peer: Peer) -> str:
    out = subprocess.run(
        [str(peer.venv / "bin" / "python"), "-c", "import django; print(django.get_version())"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "?"


# ---------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Quartermaster PATCH qty / GET item beside the seed-001 and seed-003 peers "
        "(black boxes under gunicorn), interleaved, SQLite and PostgreSQL.",
        epilog="Needs wrk (installed as root when missing), PyPI for the peers' virtualenvs and, "
        "for PostgreSQL, the server binaries (scripts/ensure-postgres.sh installs them as root).",
    )
    add = parser.add_argument
    add("--quick", action="store_true", help="1 round of 3 s, 1 s warm-up (a few minutes)")
    add("--rounds", type=int, help="interleaved rounds per cell (default 3; quick 1)")
    add("--duration", type=float, help="seconds per run (default 5; quick 3)")
    add("--warmup", type=float, help="warm-up seconds per server and cell (default 2; quick 1)")
    add("--clients", default="1,16", help="connections, comma separated (default 1,16)")
    add(
        "--our-workers",
        default="2",
        help="our `serve --workers` counts, comma separated: each its own server and database, "
        "all interleaved in every cell (default 2)",
    )
    add("--db", choices=["sqlite", "postgres", "both"], default="both", help="databases")
    add("--only", choices=["seed001", "seed003"], help="one peer only (PATCH or GET)")
    add("--seed001-git", type=Path, help="git dir of inventory-systemv2 (default: /work/.mirror)")
    add("--seed001-commit", default="104b071", help="seed-001 commit (default 104b071)")
    add("--seed003-git", type=Path, help="git dir of field-inspector-backend (default: mirror)")
    add("--seed003-commit", default="HEAD", help="seed-003 commit (default HEAD of the mirror)")
    add("--peer-src", type=Path, help="use DIR/seed001 and DIR/seed003 as they are (no export)")
    add("--work-dir", type=Path, default=Path("/var/tmp/qm-peers"), help="(default %(default)s)")
    add("--peer-wal", action="store_true", help="switch the peers' SQLite files to WAL")
    add("--pg-url", help="PostgreSQL server URL (default: scripts/ensure-postgres.sh, durable)")
    add("--pg-port", type=int, default=54330, help="private server port (default 54330)")
    add("--json", type=Path, help="also write all figures to this JSON file")
    add("--keep", action="store_true", help="keep this run's databases and logs in --work-dir")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.clients = [int(c) for c in args.clients.split(",") if c.strip()]
    args.our_workers = [int(n) for n in args.our_workers.split(",") if n.strip()]
    args.work_dir = args.work_dir.resolve()
    if args.work_dir.is_relative_to(ROOT):
        parser.error("--work-dir must be outside the project tree")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = ensure_wrk()
    peers = [p for p in peer_specs(args) if args.only in (None, p.name)]
    for peer in peers:
        checkout(peer, args)
        build_venv(peer, args)
    facts = machine_facts()
    facts["peers"] = {peer.name: django_version(peer) for peer in peers}
    facts["code"] = our_code()
    facts["our_workers"] = args.our_workers
    facts["peer_sqlite_journal"] = "WAL" if args.peer_wal else "as shipped (rollback journal)"
    facts["method"] = (
        f"{args.rounds} interleaved round(s) x {args.duration:g} s per server and cell after "
        f"{args.warmup:g} s warm-up; wrk -t1; peers' SQLite journal: "
        f"{facts['peer_sqlite_journal']}"
    )
    say(f"machine: nproc {facts['nproc']} ({facts['cpu']}), load {facts['loadavg_at_start'][0]}")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    try:
        infos = [bench_db(kind, peers, wrk, args) for kind in kinds]
    finally:
        run_dir = args.work_dir / f"run-{os.getpid()}"
        if args.keep:
            say(f"databases and logs kept in {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
    print()
    render(facts, peers, infos)
    if args.json:
        peer_info = {p.name: {"sha": p.sha, "src": str(p.src)} for p in peers}
        payload = {"machine": facts, "peers": peer_info, "runs": infos}
        args.json.write_text(json.dumps(payload, indent=2, default=str) + "\n")
        say(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
