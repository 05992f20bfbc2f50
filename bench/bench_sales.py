"""Benchmark: confirmed 3-line sales per second through the API, beside raw SQL of the same work.

For SQLite and PostgreSQL, at 1 and 16 concurrent clients, on different items per client and on
one hot set of items shared by every client, it measures sales/s and p50/p99 latency of:

  pipeline  POST /api/v1/transactions {"confirm": true, 3 lines} against `quartermaster serve`
            (2 uvicorn workers): auth, validation, sale + lines, stock rows locked in pk order,
            movement + lines, invoice + lines, TRX/INV numbers, audit chain, change feed;
  raw       the same domain transaction as hand-written SQL (sqlite3 / psycopg, one connection
            per client thread, in this process): TRX number, sale + 3 lines, lock the 6 stock
            rows in pk order, 6 guarded updates, movement + 3 lines, INV number, invoice + 3
            lines. No audit, feed or idempotency: that is the pipeline's overhead being measured.

Load comes from httpx client threads in this process (the machine's CPUs are shared by client,
server and database; the machine facts are printed with the figures).

    PYTHONPATH=src .venv/bin/python bench/bench_sales.py                 # ~4 minutes
    PYTHONPATH=src .venv/bin/python bench/bench_sales.py --duration 3    # quicker
    --pg-url postgresql://qm@127.0.0.1:54329   (default: the private test server; fsync is off
                                                there, see scripts/ensure-postgres.sh)
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-0123456789"
START_QTY = 10**12
BENCH_DB = "qm_bench_sales"


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# Server


def server_env(
    db_url: str | None, data_dir: str, extra_env: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment `server()` runs `quartermaster` with (also for its CLI checks)."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "QM_DATA_DIR": data_dir,
        "QM_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "QM_AUDIT_KEY": "bench-audit-key-0123456789abcdef",
        "QM_ACCESS_TOKEN_TTL_S": "3600",
        "QM_LOG_LEVEL": "WARNING",
        # Measuring throughput, not the per-user limit (600 a minute would answer 429s).
        "QM_API_REQUESTS_PER_USER": "0",
        "QM_API_REQUESTS_PER_IP": "0",
    }
    env.pop("QM_DATABASE_URL", None)
    if "QM_CACHE_URL" not in env:
        env["QM_CACHE_URL"] = bench_cache_url()
    if db_url:
        env["QM_DATABASE_URL"] = db_url
    env.update(extra_env or {})
    return env


@functools.cache
def bench_cache_url() -> str:
    """`serve --workers 2` refuses to start without a shared cache (rate limits, lockouts):
    the private Redis of scripts/ensure-redis.sh, database 11 (the tests use database 0)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "ensure-redis.sh")], check=True, capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[-1].rstrip("/") + "/11"


@contextlib.contextmanager
def server(
    db_url: str | None,
    data_dir: str,
    extra_env: dict[str, str] | None = None,
    role: str = "manager",
) -> Iterator[str]:
    """Migrate, create the bench user (`role`) and serve (2 workers); yields the base URL."""
    env = server_env(db_url, data_dir, extra_env)
    python = sys.executable
    subprocess.run([python, "-m", "quartermaster", "migrate"], env=env, check=True)
    subprocess.run(
        [python, "-m", "quartermaster", "createuser", "bench", "--role", role],
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    port = free_port()
    process = subprocess.Popen(
        [
            python,
            "-m",
            "quartermaster",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("server did not start")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def login(base: str) -> str:
    reply = httpx.post(
        f"{base}/api/v1/auth/login", json={"username": "bench", "password": PASSWORD}
    )
    reply.raise_for_status()
    return str(reply.json()["access"])


def setup_world(base: str, token: str, clients: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        items = []
        for n in range(3 * clients):
            body = {"name": f"item {n}", "qty": START_QTY, "price": "12.50", "tax_rate_bp": 1800}
            reply = http.post("/api/v1/items", json=body)
            reply.raise_for_status()
            items.append(reply.json()["id"])
        customers = []
        for n in range(clients):
            reply = http.post("/api/v1/customers", json={"name": f"customer {n}"})
            reply.raise_for_status()
            customers.append(reply.json())
        depot = http.get("/api/v1/locations?kind=depot").json()["results"][0]["id"]
    return {"items": items, "customers": customers, "depot": depot}


def lines_for(world: dict[str, Any], client: int, hot: bool) -> list[str]:
    start = 0 if hot else 3 * client
    return world["items"][start : start + 3]


# ---------------------------------------------------------------------------------------------
# Load


def run_clients(
    clients: int, duration_s: float, one: Callable[[int, Any], int], make: Callable[[int], Any]
) -> dict[str, Any]:
    """Each client thread calls one(client, handle) until the deadline; returns figures."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    statuses: list[Counter[int]] = [Counter() for _ in range(clients)]
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()

    def loop(client: int) -> None:
        handle = make(client)
        try:
            barrier.wait()
            while not stop.is_set():
                started = time.perf_counter()
                status = one(client, handle)
                latencies[client].append(time.perf_counter() - started)
                statuses[client][status] += 1
        finally:
            with contextlib.suppress(Exception):
                handle.close()

    threads = [threading.Thread(target=loop, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(duration_s)
    stop.set()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    every = sorted(x for per in latencies for x in per)
    total: Counter[int] = Counter()
    for per in statuses:
        total.update(per)
    ok = sum(n for status, n in total.items() if status in (200, 201))
    return {
        "elapsed_s": round(elapsed, 3),
        "calls": len(every),
        "per_s": round(ok / elapsed, 1),
        "p50_ms": round(statistics.median(every) * 1000, 1) if every else None,
        "p99_ms": round(every[min(len(every) - 1, int(len(every) * 0.99))] * 1000, 1)
        if every
        else None,
        "statuses": dict(total),
    }


def pipeline_run(
    base: str, token: str, world: dict[str, Any], clients: int, hot: bool, duration_s: float
) -> dict[str, Any]:
    def make(client: int) -> httpx.Client:
        return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60)

    def one(client: int, http: httpx.Client) -> int:
        body = {
            "customer": world["customers"][client]["id"],
            "location": world["depot"],
            "lines": [{"item": item, "qty": 1} for item in lines_for(world, client, hot)],
            "confirm": True,
        }
        return http.post("/api/v1/transactions", json=body).status_code

    return run_clients(clients, duration_s, one, make)


# ---------------------------------------------------------------------------------------------
# Raw SQL of the same transaction


class SqliteConn:
    """A sqlite3 connection in manual mode (isolation_level=None) with psycopg-like commit():
    the caller opens each transaction itself (`BEGIN IMMEDIATE`, as Quartermaster does)."""

    def __init__(self, path: str) -> None:
        self.c = sqlite3.connect(path, timeout=20, isolation_level=None)
        self.c.execute("PRAGMA journal_mode=WAL")
        self.c.execute("PRAGMA synchronous=NORMAL")
        self.c.execute("PRAGMA foreign_keys=ON")
        # The page cache Quartermaster's settings give each connection (SQLITE_CACHE_KIB).
        self.c.execute("PRAGMA cache_size=-32768")

    def execute(self, *a: Any) -> Any:
        return self.c.execute(*a)

    def cursor(self) -> Any:
        return self.c.cursor()

    def commit(self) -> None:
        self.c.execute("COMMIT")

    def rollback(self) -> None:
        if self.c.in_transaction:
            self.c.execute("ROLLBACK")

    def close(self) -> None:
        self.c.close()


def sqlite_connector(path: str) -> Callable[[], SqliteConn]:
    return lambda: SqliteConn(path)


class Raw:
    """The confirm transaction by hand. `param` is the placeholder; ids are in the DB's format."""

    def __init__(self, connect: Callable[[], Any], postgres: bool) -> None:
        self.connect = connect
        self.postgres = postgres
        self.p = "%s" if postgres else "?"

    def ident(self, value: str) -> Any:
        return uuid.UUID(value) if self.postgres else uuid.UUID(value).hex

    def new_id(self) -> Any:
        fresh = uuid.uuid4()
        return fresh if self.postgres else fresh.hex

    def stock_ids(self, conn: Any, items: list[str], locations: list[str]) -> list[int]:
        p = self.p
        rows = conn.execute(
            f"SELECT id FROM inventory_stock WHERE item_id IN ({p},{p},{p}) AND location_id IN ({p},{p}) ORDER BY id",
            [*(self.ident(i) for i in items), *(self.ident(loc) for loc in locations)],
        ).fetchall()
        return [r[0] for r in rows]

    def sale(
        self,
        conn: Any,
        customer: dict[str, Any],
        depot: str,
        items: list[str],
        stock_rows: dict[str, list[int]],
    ) -> None:
        p = self.p
        now = datetime.now(UTC) if self.postgres else datetime.now(UTC).isoformat(" ")
        if not self.postgres:
            conn.execute("BEGIN IMMEDIATE")
        trx = conn.execute(
            f"UPDATE core_numberseries SET last_value = last_value + 1 WHERE name = {p} RETURNING last_value",
            ["TRX"],
        ).fetchone()[0]
        sale_id = self.new_id()
        conn.execute(
            "INSERT INTO sales_saletransaction (id, number, status, void_reason, client_temp_id, created_by, "
            f"created_at, confirmed_at, version, customer_id, location_id) VALUES ({p},{p},{p},'','',{p},{p},{p},2,{p},{p})",
            [
                sale_id,
                f"RAW-TRX-{trx}",
                "confirmed",
                "bench",
                now,
                now,
                self.ident(customer["id"]),
                self.ident(depot),
            ],
        )
        conn.cursor().executemany(
            f"INSERT INTO sales_saleline (line_no, qty, unit_price_minor, serials, item_id, sale_id) VALUES ({p},1,1250,'[]',{p},{p})",
            [[n, self.ident(item), sale_id] for n, item in enumerate(items)],
        )
        lock = " FOR UPDATE" if self.postgres else ""
        sources, targets = stock_rows["sources"], stock_rows["targets"]
        every = sorted(sources + targets)
        marks = ",".join([p] * len(every))
        conn.execute(
            f"SELECT id, qty FROM inventory_stock WHERE id IN ({marks}) ORDER BY id{lock}", every
        ).fetchall()
        for row in every:
            delta = -1 if row in sources else 1
            updated = conn.execute(
                f"UPDATE inventory_stock SET qty = qty + {p} WHERE id = {p} AND qty + {p} >= 0",
                [delta, row, delta],
            ).rowcount
            assert updated == 1
        movement = self.new_id()
        conn.execute(
            "INSERT INTO inventory_movement (id, kind, reason, reference, client_temp_id, actor, created_at) "
            f"VALUES ({p},'sale','',{p},'','bench',{p})",
            [movement, f"sale:{sale_id}", now],
        )
        conn.cursor().executemany(
            "INSERT INTO inventory_movementline (line_no, qty, serials, from_location_id, item_id, movement_id, to_location_id) "
            f"VALUES ({p},1,'[]',{p},{p},{p},{p})",
            [
                [n, self.ident(depot), self.ident(item), movement, self.ident(customer["site"])]
                for n, item in enumerate(items)
            ],
        )
        inv = conn.execute(
            f"UPDATE core_numberseries SET last_value = last_value + 1 WHERE name = {p} RETURNING last_value",
            ["INV"],
        ).fetchone()[0]
        invoice = self.new_id()
        conn.execute(
            "INSERT INTO sales_invoice (id, number, subtotal_minor, tax_minor, deposit_minor, total_minor, created_at, customer_id, sale_id) "
            f"VALUES ({p},{p},3750,675,0,4425,{p},{p},{p})",
            [invoice, f"RAW-INV-{inv}", now, self.ident(customer["id"]), sale_id],
        )
        conn.cursor().executemany(
            "INSERT INTO sales_invoiceline (line_no, kind, description, qty, unit_price_minor, net_minor, tax_rate_bp, tax_minor, total_minor, invoice_id, item_id) "
            f"VALUES ({p},'goods','item',1,1250,1250,1800,225,1475,{p},{p})",
            [[n, invoice, self.ident(item)] for n, item in enumerate(items)],
        )
        conn.commit()


def raw_run(
    raw: Raw, world: dict[str, Any], clients: int, hot: bool, duration_s: float
) -> dict[str, Any]:
    setup = raw.connect()
    plans = []
    for client in range(clients):
        items = lines_for(world, client, hot)
        customer = world["customers"][client]
        sources = raw.stock_ids(setup, items, [world["depot"], world["depot"]])
        targets = raw.stock_ids(setup, items, [customer["site"], customer["site"]])
        assert len(sources) == 3 and len(targets) == 3, "run the pipeline first: it opens the rows"
        plans.append((items, customer, {"sources": sources, "targets": targets}))
    setup.close()

    def one(client: int, conn: Any) -> int:
        items, customer, rows = plans[client]
        raw.sale(conn, customer, world["depot"], items, rows)
        return 201

    return run_clients(clients, duration_s, one, lambda client: raw.connect())


# ---------------------------------------------------------------------------------------------


def bench_database(name: str, db_url: str | None, duration_s: float) -> list[dict[str, Any]]:
    results = []
    with tempfile.TemporaryDirectory() as data_dir, server(db_url, data_dir) as base:
        token = login(base)
        world = setup_world(base, token, 16)
        if db_url:
            import psycopg

            raw = Raw(lambda: psycopg.connect(db_url), postgres=True)
        else:
            raw = Raw(
                sqlite_connector(str(Path(data_dir) / "quartermaster.sqlite3")), postgres=False
            )
        # Warm-up: opens every customer-site stock row and the number series.
        for hot in (False, True):
            pipeline_run(base, token, world, 16, hot, 1.0)
        for hot in (False, True):
            for clients in (1, 16):
                label = "hot item" if hot else "different items"
                pipe = pipeline_run(base, token, world, clients, hot, duration_s)
                plain = raw_run(raw, world, clients, hot, duration_s)
                row = {
                    "db": name,
                    "clients": clients,
                    "items": label,
                    "pipeline": pipe,
                    "raw": plain,
                }
                row["pipeline_vs_raw"] = (
                    round(pipe["per_s"] / plain["per_s"], 3) if plain["per_s"] else None
                )
                say(json.dumps(row))
                results.append(row)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument(
        "--pg-url", default="postgresql://qm@127.0.0.1:54329", help="server, no db name"
    )
    parser.add_argument("--only", choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    results = []
    if args.only in (None, "sqlite"):
        results += bench_database("sqlite", None, args.duration)
    if args.only in (None, "postgresql"):
        import psycopg

        with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB}")
            admin.execute(f"CREATE DATABASE {BENCH_DB}")
        try:
            results += bench_database("postgresql", f"{args.pg_url}/{BENCH_DB}", args.duration)
        finally:
            with psycopg.connect(f"{args.pg_url}/postgres", autocommit=True) as admin:
                admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
    print()
    print(
        "| db | clients | items | pipeline sales/s | p50 ms | p99 ms | raw SQL sales/s | raw p99 ms | pipeline/raw |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        p, w = r["pipeline"], r["raw"]
        print(
            f"| {r['db']} | {r['clients']} | {r['items']} | {p['per_s']} | {p['p50_ms']} | {p['p99_ms']} "
            f"| {w['per_s']} | {w['p99_ms']} | {r['pipeline_vs_raw']} |"
        )
    bad = [r for r in results if set(r["pipeline"]["statuses"]) - {201}]
    if bad:
        print(
            "non-201 responses:",
            [(r["db"], r["clients"], r["items"], r["pipeline"]["statuses"]) for r in bad],
        )
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()}")


if __name__ == "__main__":
    main()
