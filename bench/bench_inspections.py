"""Benchmark: inspections (issue 13, deliverable 7), side by side in one run.

Templates with and without ETag. A manager's published template of 200 questions (10 sections
of 20, every question type). `GET /api/v1/templates/{id}` at 1 and 16 clients, interleaved in
rounds: `full` (no validator: 200 and the whole template every time) and `etag` (the device
sends the `ETag` it holds as `If-None-Match`: 304 and no body). Figures: requests/s, p50/p99,
and the bytes each answer puts on the wire (status line + headers + body, as received).

Offline answer updates. 20 devices, each its own inspection, post POST /api/v1/sync/batch of
20 `inspection.update` ops (2 answers each, numbered `device_seq`, all against the version the
device last synced: the device's own saves since merge as they would after a day offline)
against one `quartermaster serve` (2 workers). Beside it, interleaved in the same rounds, the
same writes as plain SQL, one transaction per batch, one connection per client thread, on other
inspections of the same database (the server idle meanwhile):

  raw   per op: the inspection read (PostgreSQL: FOR UPDATE), its answers merged in Python,
        the row updated (answers, version, score, updated_at) and the version row inserted:
        what the domain needs, without ops, idempotency, audit, feed or merge bookkeeping.

Figures: ops/s (2xx op results / measured seconds over all rounds, with per-round min-max) and
p50/p99 per 20-op batch; pipeline/raw is the ratio to read.

    .venv/bin/python bench/bench_inspections.py            # 3 rounds x 5 s, ~6 minutes
    .venv/bin/python bench/bench_inspections.py --quick    # 1 round x 3 s
    .venv/bin/python bench/bench_inspections.py --only sqlite

PostgreSQL: the private durable bench server (`QM_PG_PORT=54330 QM_PG_DURABLE=1
scripts/ensure-postgres.sh`, started if it is not running: fsync on), or --pg-url; the bench
creates its own database there and drops it at the end. Results: bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import bench_items  # machine facts, database naming and version, the durable server
import bench_sales as bs  # server, login, client loop, SQLite connection

say = bs.say
PG_PORT = 54330
DEVICES = 20
OPS = 20
TEMPLATES = "/api/v1/templates"
INSPECTIONS = "/api/v1/inspections"
NUMBER_QUESTIONS = 100  # of each section's 20: 5 number, 5 yes/no, 5 text, 5 single choice


# ---------------------------------------------------------------------------------------------
# The world


def big_template(sections: int = 10, per_section: int = 20) -> dict[str, Any]:
    """200 questions of every answerable type (plus photo and signature, never required)."""
    kinds = ["number", "yes_no", "text", "single_choice"]
    body: dict[str, Any] = {"name": "Plant room, full survey", "sections": []}
    for s in range(sections):
        questions = []
        for q in range(per_section):
            kind = kinds[q % len(kinds)]
            question: dict[str, Any] = {
                "id": f"s{s}q{q}",
                "type": kind,
                "label": f"Section {s} check {q}: is the reading within the stated bounds?",
                "required": False,
            }
            if kind in ("yes_no", "single_choice"):  # the scored types
                question["weight"] = 1
            if kind == "number":
                question |= {"min": 0, "max": 1000, "unit": "bar"}
            if kind == "single_choice":
                question |= {
                    "options": ["good", "fair", "poor"],
                    "option_scores": {"good": 100, "fair": 50, "poor": 0},
                }
            questions.append(question)
        questions.append({"id": f"s{s}photo", "type": "photo", "label": "Photos", "max": 3})
        body["sections"].append({"id": f"s{s}", "title": f"Section {s}", "questions": questions})
    body["sections"][-1]["questions"].append(
        {"id": "signed", "type": "signature", "label": "Signature"}
    )
    return body


def answer_for(question: str, n: int) -> Any:
    q = int(question.split("q")[1])
    kind = q % 4
    if kind == 0:
        return n % 1000
    if kind == 1:
        return n % 2 == 0
    if kind == 2:
        return f"reading {n}"
    return ["good", "fair", "poor"][n % 3]


def patch_for(n: int) -> dict[str, Any]:
    """Two answers that change with `n` (the device's n-th op), spread over the template."""
    first, second = f"s{n % 10}q{n % 20}", f"s{(n + 3) % 10}q{(n + 7) % 20}"
    return {first: answer_for(first, n), second: answer_for(second, n + 1)}


@dataclass
class Device:
    """One device's inspection and what it knows of it."""

    name: str
    inspection: str
    synced_version: int = 1
    seq: int = 0


@dataclass
class World:
    base: str
    token: str
    template: str
    location: str
    pipeline: list[Device] = field(default_factory=list)
    raw: list[Device] = field(default_factory=list)


def _ok(reply: httpx.Response) -> Any:
    if reply.status_code >= 300:
        raise RuntimeError(f"{reply.request.method} {reply.request.url}: {reply.text[:300]}")
    return reply.json()


def set_up(base: str, token: str, devices: int) -> World:
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    with http:
        template = _ok(http.post(TEMPLATES, json=big_template()))["id"]
        _ok(http.post(f"{TEMPLATES}/{template}/publish"))
        locations = _ok(http.get("/api/v1/locations"))["results"]
        location = next(row["id"] for row in locations if row.get("is_default"))
        world = World(base, token, template, str(location))
        for path in ("pipeline", "raw"):
            for d in range(devices):
                made = _ok(
                    http.post(INSPECTIONS, json={"template": template, "location": location})
                )
                getattr(world, path).append(Device(f"bench-{path}-{d}", made["id"]))
    return world


# ---------------------------------------------------------------------------------------------
# Templates: full vs ETag


def template_cell(
    world: World, clients: int, duration_s: float, etag: str | None
) -> dict[str, Any]:
    sizes: list[int] = []
    lock = threading.Lock()

    def make(client: int) -> httpx.Client:
        headers = {"Authorization": f"Bearer {world.token}"}
        if etag:
            headers["If-None-Match"] = etag
        return httpx.Client(base_url=world.base, headers=headers, timeout=60)

    def one(client: int, http: httpx.Client) -> int:
        reply = http.get(f"{TEMPLATES}/{world.template}")
        wire = len(reply.content) + len(f"HTTP/1.1 {reply.status_code} X\r\n") + 2
        wire += sum(len(k) + len(v) + 4 for k, v in reply.headers.raw)
        with lock:
            if len(sizes) < 1000:
                sizes.append(wire)
        # 304 counts as a good answer here: it is the one asked for.
        return 200 if reply.status_code == 304 else reply.status_code

    figures = bs.run_clients(clients, duration_s, one, make)
    figures["bytes_per_answer"] = round(statistics.mean(sizes)) if sizes else None
    return figures


# ---------------------------------------------------------------------------------------------
# Updates: pipeline vs raw SQL


def batch_body(device: Device) -> dict[str, Any]:
    ops = []
    for _ in range(OPS):
        device.seq += 1
        ops.append(
            {
                "op_id": str(uuid.uuid4()),
                "type": "inspection.update",
                "payload": {"id": device.inspection, "answers": patch_for(device.seq)},
                "base_version": device.synced_version,
                "device_seq": device.seq,
            }
        )
    return {"device_id": device.name, "ops": ops}


def pipeline_cell(world: World, clients: int, duration_s: float) -> dict[str, Any]:
    ok_ops: list[int] = [0] * clients

    def make(client: int) -> httpx.Client:
        return httpx.Client(
            base_url=world.base, headers={"Authorization": f"Bearer {world.token}"}, timeout=120
        )

    def one(client: int, http: httpx.Client) -> int:
        device = world.pipeline[client]
        reply = http.post("/api/v1/sync/batch", json=batch_body(device))
        if reply.status_code != 200:
            return reply.status_code
        results = reply.json()["results"]
        good = [r for r in results if r["status"] < 300]
        ok_ops[client] += len(good)
        if good:
            device.synced_version = max(int(r["body"]["version"]) for r in good)
        return 200 if len(good) == len(results) else 207

    figures = bs.run_clients(clients, duration_s, one, make)
    figures["ops_s"] = round(sum(ok_ops) / figures["elapsed_s"], 1)
    return figures


class RawUpdates:
    """The same answer writes as plain SQL, one transaction per batch."""

    def __init__(self, connect: Callable[[], Any], postgres: bool) -> None:
        self.connect = connect
        self.postgres = postgres
        self.p = "%s" if postgres else "?"

    def batch(self, conn: Any, device: Device) -> None:
        p = self.p
        if not self.postgres:
            conn.execute("BEGIN IMMEDIATE")
        ident = device.inspection if self.postgres else device.inspection.replace("-", "")
        lock = " FOR UPDATE" if self.postgres else ""
        try:
            for _ in range(OPS):
                device.seq += 1
                cur = conn.execute(
                    f"SELECT answers, version FROM inspections_inspection WHERE id = {p}{lock}",
                    (ident,),
                )
                raw_answers, version = cur.fetchone()
                answers = raw_answers if isinstance(raw_answers, dict) else json.loads(raw_answers)
                patch = patch_for(device.seq)
                answers.update(patch)
                now = datetime.now(UTC)
                text = json.dumps(answers, sort_keys=True)
                conn.execute(
                    f"UPDATE inspections_inspection SET answers = {p}, version = {p},"
                    f" score_earned = {p}, updated_at = {p} WHERE id = {p}",
                    (
                        text,
                        version + 1,
                        len(answers) * 100,
                        now if self.postgres else now.isoformat(),
                        ident,
                    ),
                )
                conn.execute(
                    "INSERT INTO inspections_inspectionversion (inspection_id, version, action,"
                    " status, answers, changed, deleted, comment, actor_id, actor, device,"
                    f" device_seq, base_version, at) VALUES ({', '.join([p] * 14)})",
                    (
                        ident,
                        version + 1,
                        "inspection.update",
                        "draft",
                        text,
                        json.dumps(sorted(patch)),
                        False,
                        "",
                        None,
                        "bench",
                        device.name,
                        device.seq,
                        device.synced_version,
                        now if self.postgres else now.isoformat(),
                    ),
                )
            conn.commit()
        except Exception:
            conn.rollback()
            raise


def raw_cell(raw: RawUpdates, world: World, clients: int, duration_s: float) -> dict[str, Any]:
    def one(client: int, conn: Any) -> int:
        raw.batch(conn, world.raw[client])
        return 200

    figures = bs.run_clients(clients, duration_s, one, lambda client: raw.connect())
    figures["ops_s"] = round(figures["per_s"] * OPS, 1)
    return figures


def postgres_connector(url: str) -> Callable[[], Any]:
    import psycopg

    return lambda: psycopg.connect(url)


# ---------------------------------------------------------------------------------------------
# A database's run


@dataclass
class Kind:
    kind: str  # "sqlite" | "postgres"
    data_dir: str
    url: str | None
    version: str


@contextlib.contextmanager
def serving(kind: Kind) -> Iterator[World]:
    with bs.server(kind.url, kind.data_dir, role="admin") as base:
        token = bs.login(base)
        yield set_up(base, token, DEVICES)


def raw_for(kind: Kind) -> RawUpdates:
    if kind.kind == "postgres":
        return RawUpdates(postgres_connector(kind.url or ""), postgres=True)
    return RawUpdates(
        bs.sqlite_connector(str(Path(kind.data_dir) / "quartermaster.sqlite3")), False
    )


def summarize(runs: list[dict[str, Any]], rate: str) -> dict[str, Any]:
    rates = [r[rate] for r in runs]
    total = sum(r[rate] * r["elapsed_s"] for r in runs)
    seconds = sum(r["elapsed_s"] for r in runs)
    summary = {
        rate: round(total / seconds, 1),
        "min": min(rates),
        "max": max(rates),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs if r["p50_ms"] is not None),
        "p99_ms": max(r["p99_ms"] for r in runs if r["p99_ms"] is not None),
        "statuses": dict(sum((Counter(r["statuses"]) for r in runs), Counter())),
    }
    if "bytes_per_answer" in runs[0]:
        summary["bytes_per_answer"] = runs[0]["bytes_per_answer"]
    return summary


def bench_kind(kind: Kind, args: argparse.Namespace) -> dict[str, Any]:
    say(f"{kind.kind}: migrate, serve, publish a 200-question template, {DEVICES}x2 inspections")
    results: dict[str, Any] = {"db": kind.kind, "version": kind.version, "cells": []}
    raw = raw_for(kind)
    with serving(kind) as world:
        etag = httpx.get(
            f"{world.base}{TEMPLATES}/{world.template}",
            headers={"Authorization": f"Bearer {world.token}"},
        ).headers.get("ETag")
        if not etag:
            raise RuntimeError("GET /templates/{id} carried no ETag")
        cells: dict[tuple[str, int], list[dict[str, Any]]] = {}
        plan: list[tuple[str, int, Callable[[], dict[str, Any]]]] = []
        for clients in (1, 16):
            plan += [
                (
                    "template full",
                    clients,
                    lambda c=clients: template_cell(world, c, args.duration, None),
                ),
                (
                    "template etag",
                    clients,
                    lambda c=clients: template_cell(world, c, args.duration, etag),
                ),
            ]
        for clients in (1, DEVICES):
            plan += [
                (
                    "updates pipeline",
                    clients,
                    lambda c=clients: pipeline_cell(world, c, args.duration),
                ),
                ("updates raw", clients, lambda c=clients: raw_cell(raw, world, c, args.duration)),
            ]
        for round_no in range(args.rounds):
            order = plan if round_no % 2 == 0 else list(reversed(plan))
            for name, clients, run in order:
                figures = run()
                cells.setdefault((name, clients), []).append(figures)
                rate = "ops_s" if name.startswith("updates") else "per_s"
                say(
                    f"{kind.kind}: {name:<17} {clients:>2} clients, round {round_no + 1}/"
                    f"{args.rounds}: {figures[rate]:>8} {'ops' if rate == 'ops_s' else 'req'}/s,"
                    f" p99 {figures['p99_ms']} ms"
                )
        for (name, clients), runs in cells.items():
            rate = "ops_s" if name.startswith("updates") else "per_s"
            results["cells"].append({"path": name, "clients": clients, **summarize(runs, rate)})
    results["checks"] = checks(kind)
    return results


def checks(kind: Kind) -> dict[str, Any]:
    env = bs.server_env(kind.url, kind.data_dir)
    out = subprocess.run(
        [sys.executable, "-m", "quartermaster", "audit", "verify"],
        env=env,
        capture_output=True,
        text=True,
    )
    return {"audit verify": {"rc": out.returncode, "tail": out.stdout.strip().splitlines()[-1:]}}


# ---------------------------------------------------------------------------------------------
# Output


def render(facts: dict[str, Any], infos: list[dict[str, Any]]) -> None:
    print()
    print(
        f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), {facts['ram_gib']} GiB; load average"
        f" {facts['loadavg_at_start'][0]:.2f} at start, {facts['loadavg_at_end'][0]:.2f} at end"
    )
    print()
    print(
        "| DB | path | clients | rate (rounds min-max) | p50 ms | p99 ms | bytes/answer | statuses |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for info in infos:
        for cell in info["cells"]:
            rate = "ops_s" if cell["path"].startswith("updates") else "per_s"
            unit = "ops/s" if rate == "ops_s" else "req/s"
            print(
                f"| {info['db']} | {cell['path']} | {cell['clients']} | {cell[rate]:,} {unit}"
                f" ({cell['min']:,}-{cell['max']:,}) | {cell['p50_ms']} | {cell['p99_ms']} |"
                f" {cell.get('bytes_per_answer') or ''} | {cell['statuses']} |"
            )
    print()
    for info in infos:
        by = {(c["path"], c["clients"]): c for c in info["cells"]}
        for clients in (1, DEVICES):
            pipe, raw = by[("updates pipeline", clients)], by[("updates raw", clients)]
            print(
                f"{info['db']}, {clients} devices: pipeline/raw = {pipe['ops_s'] / raw['ops_s']:.2f}"
            )
        for clients in (1, 16):
            full, etag = by[("template full", clients)], by[("template etag", clients)]
            print(
                f"{info['db']}, template at {clients} clients: {full['bytes_per_answer']} →"
                f" {etag['bytes_per_answer']} bytes per answer"
                f" ({full['bytes_per_answer'] / etag['bytes_per_answer']:.0f}x fewer),"
                f" {full['per_s']} → {etag['per_s']} req/s"
            )
        print(f"{info['db']}: {info['version']}; checks {info['checks']}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Inspections: template GET with/without ETag; 20 devices' answer updates "
        "through sync beside the same writes as plain SQL (SQLite and PostgreSQL).",
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s runs")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--duration", type=float, help="seconds per run (default 5; quick 3)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="one database only")
    parser.add_argument("--pg-url", help="a PostgreSQL server URL (default: the private one)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    return args


def make_kinds(work: Path, pg_server: str | None, only: str | None) -> list[Kind]:
    kinds = []
    if only in (None, "sqlite"):
        data_dir = work / "sqlite"
        data_dir.mkdir()
        kinds.append(Kind("sqlite", str(data_dir), None, f"SQLite {sqlite3.sqlite_version}"))
    if only in (None, "postgres"):
        assert pg_server
        name = f"qm_bench_inspections_{os.getpid()}"
        url = bench_items.with_dbname(pg_server, name)
        pg_databases(pg_server, [name], create=True)
        data_dir = work / "postgres"
        data_dir.mkdir()
        version = bench_items.db_version(bench_items.DbSetup("postgres", url, 2, {}))
        kinds.append(Kind("postgres", str(data_dir), url, version))
    return kinds


def pg_databases(server_url: str, names: list[str], create: bool) -> None:
    import psycopg

    with psycopg.connect(bench_items.with_dbname(server_url, "postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = bench_items.machine_facts()
    say(f"machine: {facts['nproc']} CPUs, load average {facts['loadavg_at_start'][0]:.2f}")
    pg_server = None
    if args.only != "sqlite":
        pg_server = args.pg_url or bench_items.ensure_postgres(PG_PORT)
    infos = []
    with tempfile.TemporaryDirectory(prefix="qm-bench-inspections-") as work:
        kinds = make_kinds(Path(work), pg_server, args.only)
        try:
            infos = [bench_kind(kind, args) for kind in kinds]
        finally:
            if pg_server:
                with contextlib.suppress(Exception):
                    pg_databases(
                        pg_server, [(k.url or "").rsplit("/", 1)[-1] for k in kinds if k.url], False
                    )
    facts["loadavg_at_end"] = os.getloadavg()
    render(facts, infos)
    if args.json:
        args.json.write_text(json.dumps({"facts": facts, "results": infos}, indent=2, default=str))
        say(f"figures written to {args.json}")
    failed = [i["db"] for i in infos if any(c["rc"] for c in i["checks"].values())]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
