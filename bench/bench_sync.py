"""Benchmark: sync throughput, POST /api/v1/sync/batch of confirmed 3-line sales, beside raw SQL.

In one run, for SQLite and PostgreSQL, at 1 and 4 concurrent devices, on "distinct" items (each
client its own 3 items and customer) and on "hot" items (every client the same 3 items, each
still its own customer), it measures ops/s, batches/s and p50/p99 latency per batch of:

  bulk        `quartermaster serve` (2 uvicorn workers, bench_sales.server) with QM_SYNC_BULK=1:
              the set-based bulk sync path. Each request is one batch of 100 ops
              {"op_id": <fresh uuid4>, "type": "sale.record", "payload": {"customer", "location":
              <depot>, "lines": [3 lines of qty 1], "confirm": true}, "client_ts"}, one device_id
              per client thread. Only ops whose per-op result status is 2xx count.
  per-op      the same against a second server started with QM_SYNC_BULK=0 (the kill switch:
              every op in its own transaction, as before the bulk path). Until the switch exists
              in src/ both servers run the same code (the run says so).
  raw-domain  the same 100 sales as hand-written set-based SQL (sqlite3 / psycopg, no Django,
              one connection per client thread in this process), one transaction per batch:
              TRX and INV number blocks in one statement each (core_numberseries), 100 sales +
              300 sale lines, all stock rows of the batch locked in one SELECT ... ORDER BY id
              (FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE holds the write lock), one
              guarded UPDATE for all of them (qty + d >= 0, row count checked), 100 movements +
              300 movement lines, 100 invoices + 300 invoice lines, as multi-row INSERTs
              (PostgreSQL: COPY for 10 rows or more, as the pipeline does).
  raw-full    raw-domain plus what the pipeline also does per op: the 100 op ids claimed in one
              statement (PostgreSQL: transaction advisory locks, as core.idempotency does) and
              looked up in core_idempotencyrecord in another, the 100 op records (scope "op",
              the sale view as body), the chain head locked last, 9 audit entries per op (sale,
              movement, 6 stock rows, invoice, with the same views as before/after) sealed with
              HMAC-SHA256 over canonical JSON and chained in Python, 9 feed rows per op, the
              chain head update and the device's last_seen. `quartermaster audit verify` checks
              that chain afterwards.

Databases: each server has its own database (SQLite file / PostgreSQL database), and raw SQL runs
against a third one, migrated by `quartermaster migrate` and seeded through a short-lived server
(same items, customers and warm-up batches as the servers' own), so raw runs never share tables,
indexes or lock queues with a server's and all four paths can be interleaved: in each round every
cell runs bulk, per-op, raw-domain, raw-full in turn, so background load hits all of them alike;
odd rounds run cells and paths in reverse, because the databases grow as they run (the raw one
fastest, and SQLite's raw throughput falls as its file grows past the page cache), so a fixed
order would favour whatever runs first. At 1 client "distinct" and "hot" are the same work
(client 0's items are the hot ones). Rate limits are off on the servers (QM_API_REQUESTS_PER_*=0).

Figures: ops/s = 2xx op results / measured seconds, summed over rounds (the batches in flight at
the deadline finish and count, as in bench_sales.run_clients), with the per-round min-max;
batches/s likewise; p50/p99 over every batch of every round; "non-2xx ops" counts op results
outside 2xx (a failed batch counts all its ops under its HTTP status, 0 = transport error) and
"failed batches" answers other than 200/207. Ratios divide ops/s: bulk / raw-domain and bulk /
raw-full (the share of the hand-written floor the pipeline reaches), bulk / per-op (speed-up).

Rows per op: before the measurements one 100-op batch per path runs alone and the rows of every
table are counted before and after (the servers' databases for bulk and per-op, the raw database
for raw-domain and raw-full), so the table shows the pipeline and raw SQL write the same rows.
UPDATEs are not counted (stock rows, sale status, number series, chain head, device state).

After the runs the servers are stopped and `quartermaster audit verify` and `quartermaster stock
rebuild --check` run against all three databases with the server's environment.

Load comes from httpx client threads in this process; the machine's CPUs are shared by client,
servers and database. Machine facts and the load average before/after are printed with the
figures.

    .venv/bin/python bench/bench_sync.py                 # 3 rounds x 5 s per cell, ~15 minutes
    .venv/bin/python bench/bench_sync.py --quick         # 1 round x 2 s per cell, ~3 minutes
    .venv/bin/python bench/bench_sync.py --only sqlite --duration 3 --json /tmp/sync.json

PostgreSQL: by default the private test server of `scripts/ensure-postgres.sh` (started if it is
not running; it prints its URL; fsync is off there unless QM_PG_DURABLE=1 started it), or
--pg-url. The bench creates its three databases there and drops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_items  # machine facts, database naming and version
import bench_sales as bs  # server, login, world, load loop, raw SQL per sale

ROOT = bs.ROOT
say = bs.say
OPS = 100  # ops per batch (the API's maximum)
CLIENTS = (1, 4)
PATHS = ("bulk", "per-op", "raw-domain", "raw-full")
ITEMS = ("distinct", "hot")
# Rate limits off: the bench measures throughput, not the limiter.
SERVER_ENV = {"QM_API_REQUESTS_PER_USER": "0", "QM_API_REQUESTS_PER_IP": "0"}
SERVER_FOR = {"bulk": {"QM_SYNC_BULK": "1"}, "per-op": {"QM_SYNC_BULK": "0"}}
OP_FINGERPRINT = hashlib.sha256(b'["op","sale.record"]').hexdigest()  # commands.key_fingerprint


# The columns the raw path writes, per table (the models' db columns).
COLUMNS = {
    "sales_saletransaction": "id number status void_reason client_temp_id created_by created_at "
    "confirmed_at version customer_id location_id movement_id",
    "sales_saleline": "line_no qty unit_price_minor serials item_id sale_id",
    "inventory_movement": "id kind reason reference client_temp_id actor created_at",
    "inventory_movementline": "line_no qty serials from_location_id item_id movement_id "
    "to_location_id",
    "sales_invoice": "id number subtotal_minor tax_minor deposit_minor total_minor created_at "
    "customer_id sale_id",
    "sales_invoiceline": "line_no kind description qty unit_price_minor net_minor tax_rate_bp "
    "tax_minor total_minor invoice_id item_id",
    "core_idempotencyrecord": "owner_id scope key fingerprint status body created_at",
    "core_auditentry": "seq at actor_id actor device action entity_type entity_id before after "
    "client_ts prev_hash hash",
    "core_feedentry": "seq at entity entity_id op version data location_id",
}


def canonical(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def money(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass
class Tally:
    """One path in one cell, summed over rounds."""

    ok_ops: int = 0
    elapsed_s: float = 0.0
    batches: int = 0
    per_round: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    op_statuses: Counter[int] = field(default_factory=Counter)
    batch_statuses: Counter[int] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)

    def add(self, run: dict[str, Any]) -> None:
        ok = sum(n for status, n in run["op_statuses"].items() if 200 <= status < 300)
        self.ok_ops += ok
        self.elapsed_s += run["elapsed_s"]
        self.batches += run["calls"]
        self.per_round.append(ok / run["elapsed_s"])
        self.latencies += run["latencies"]
        self.op_statuses.update(run["op_statuses"])
        self.batch_statuses.update(run["batch_statuses"])
        self.samples += run["samples"][: max(0, 3 - len(self.samples))]

    @property
    def ops_s(self) -> float:
        return self.ok_ops / self.elapsed_s if self.elapsed_s else 0.0

    def pct_ms(self, p: float) -> float | None:
        every = sorted(self.latencies)
        if not every:
            return None
        return every[min(len(every) - 1, int(len(every) * p))] * 1000

    @property
    def failed_ops(self) -> int:
        return sum(n for status, n in self.op_statuses.items() if not 200 <= status < 300)

    @property
    def failed_batches(self) -> int:
        return sum(n for status, n in self.batch_statuses.items() if status not in (200, 207))

    def as_dict(self) -> dict[str, Any]:
        return {
            "ops_per_s": round(self.ops_s, 1),
            "ops_per_s_rounds": [round(x, 1) for x in self.per_round],
            "batches_per_s": round(self.batches / self.elapsed_s, 2) if self.elapsed_s else 0,
            "ok_ops": self.ok_ops,
            "batches": self.batches,
            "elapsed_s": round(self.elapsed_s, 2),
            "p50_ms": _round(self.pct_ms(0.5)),
            "p99_ms": _round(self.pct_ms(0.99)),
            "op_statuses": {str(k): v for k, v in sorted(self.op_statuses.items())},
            "batch_statuses": {str(k): v for k, v in sorted(self.batch_statuses.items())},
            "non_2xx_ops": self.failed_ops,
            "failed_batches": self.failed_batches,
            "error_samples": self.samples,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def measured(
    clients: int,
    duration_s: float,
    one: Callable[[int, Any], tuple[int, Counter[int], str]],
    make: Callable[[int], Any],
) -> dict[str, Any]:
    """bench_sales.run_clients around `one`, which returns (batch status, op statuses, sample)."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    ops: list[Counter[int]] = [Counter() for _ in range(clients)]
    samples: list[str] = []

    def timed(client: int, handle: Any) -> int:
        started = time.perf_counter()
        status, statuses, sample = one(client, handle)
        latencies[client].append(time.perf_counter() - started)
        ops[client].update(statuses)
        if sample and len(samples) < 3:
            samples.append(sample)
        return status

    figures = bs.run_clients(clients, duration_s, timed, make)
    total: Counter[int] = Counter()
    for per in ops:
        total.update(per)
    return {
        "elapsed_s": figures["elapsed_s"],
        "calls": figures["calls"],
        "latencies": [x for per in latencies for x in per],
        "op_statuses": total,
        "batch_statuses": Counter(figures["statuses"]),
        "samples": samples,
    }


# ---------------------------------------------------------------------------------------------
# Pipeline: POST /api/v1/sync/batch


def device_for(path: str, client: int) -> str:
    return f"bench-{path}-{client}"


def batch_body(world: dict[str, Any], client: int, hot: bool, device: str, n: int) -> Any:
    payload = {
        "customer": world["customers"][client]["id"],
        "location": world["depot"],
        "lines": [{"item": item, "qty": 1} for item in bs.lines_for(world, client, hot)],
        "confirm": True,
    }
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    ops = [
        {"op_id": str(uuid.uuid4()), "type": "sale.record", "payload": payload, "client_ts": ts}
        for _ in range(n)
    ]
    return {"device_id": device, "ops": ops}


def post_batch(http: httpx.Client, body: Any) -> tuple[int, Counter[int], str]:
    """(HTTP status, per-op statuses, an error sample or "")."""
    n = len(body["ops"])
    try:
        reply = http.post("/api/v1/sync/batch", json=body)
    except httpx.HTTPError as exc:
        return 0, Counter({0: n}), f"transport: {exc!r}"[:300]
    if reply.status_code not in (200, 207):
        return reply.status_code, Counter({reply.status_code: n}), reply.text[:300]
    statuses: Counter[int] = Counter()
    sample = ""
    for result in reply.json()["results"]:
        statuses[result["status"]] += 1
        if not sample and not 200 <= result["status"] < 300:
            sample = json.dumps({"status": result["status"], "body": result["body"]})[:300]
    return reply.status_code, statuses, sample


def http_client(base: str, token: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=300)


def pipeline_cell(
    site: Site, clients: int, hot: bool, duration_s: float, n: int = OPS
) -> dict[str, Any]:
    def one(client: int, http: httpx.Client) -> tuple[int, Counter[int], str]:
        body = batch_body(site.world, client, hot, device_for(site.path, client), n)
        return post_batch(http, body)

    return measured(clients, duration_s, one, lambda client: http_client(site.base, site.token))


def warm_up(base: str, token: str, world: dict[str, Any], path: str, clients: int = 4) -> None:
    """One small batch per client on each item set: opens the customer-site stock rows, the
    number series, the chain head and the devices' sync state; warms both workers."""

    def send(client: int, hot: bool) -> None:
        with http_client(base, token) as http:
            status, statuses, sample = post_batch(
                http, batch_body(world, client, hot, device_for(path, client), 5)
            )
        if set(statuses) - {201}:
            raise RuntimeError(f"warm-up batch on {path} failed: {status} {sample}")

    with ThreadPoolExecutor(clients) as pool:
        for hot in (False, True):
            list(pool.map(send, range(clients), [hot] * clients))


@dataclass
class Site:
    """A running server: its base URL, token, world and database."""

    path: str
    base: str
    token: str
    world: dict[str, Any]
    db: Db


@dataclass
class Db:
    kind: str  # "sqlite" | "postgres"
    name: str  # "bulk" | "per-op" | "raw"
    data_dir: str
    url: str | None  # None: SQLite in data_dir

    @property
    def sqlite_path(self) -> str:
        return str(Path(self.data_dir) / "quartermaster.sqlite3")

    @property
    def extra_env(self) -> dict[str, str]:
        return {**SERVER_ENV, **SERVER_FOR.get(self.name, {})}

    def env(self) -> dict[str, str]:
        """The environment its server runs with (the CLI checks use it too)."""
        return bs.server_env(self.url, self.data_dir, self.extra_env)


@contextlib.contextmanager
def serving(db: Db, path: str) -> Iterator[Site]:
    with bs.server(db.url, db.data_dir, db.extra_env) as base:
        token = bs.login(base)
        world = bs.setup_world(base, token, max(CLIENTS))
        warm_up(base, token, world, path)
        yield Site(path, base, token, world, db)


# ---------------------------------------------------------------------------------------------
# Raw SQL, set-based


@dataclass(frozen=True)
class Plan:
    """What one raw client sells: its customer, items and the stock rows that move."""

    customer: str
    site: str
    depot: str
    items: list[str]
    names: list[str]
    sources: list[int]
    targets: list[int]
    stock: dict[int, tuple[str, str]]  # stock row id → (item, location), ids as strings
    device: str
    owner: str  # the bench user's id


class RawBatch(bs.Raw):
    """bench_sales' Raw, set-based: `batch()` records and confirms n sales in one transaction."""

    def __init__(self, connect: Callable[[], Any], postgres: bool, audit_key: str) -> None:
        super().__init__(connect, postgres)
        self.audit_key = audit_key.encode()
        if postgres:
            from psycopg.types.json import Jsonb

            self.jsonb = Jsonb

    def db_id(self, value: uuid.UUID) -> Any:
        return value if self.postgres else value.hex

    def db_time(self, at: datetime) -> Any:
        # SQLite: naive UTC text, as Django stores it.
        return at if self.postgres else at.strftime("%Y-%m-%d %H:%M:%S.%f")

    def db_json(self, value: Any) -> Any:
        return self.jsonb(value) if self.postgres else json.dumps(value)

    def insert(self, conn: Any, table: str, rows: list[list[Any]]) -> None:
        """Multi-row INSERT into COLUMNS[table], split below both databases' parameter limits;
        on PostgreSQL 10 rows or more go by COPY, the fastest bulk load (and what
        quartermaster.core.rows does: the baseline gets the same tool)."""
        columns = COLUMNS[table].split()
        row = "(" + ",".join([self.p] * len(columns)) + ")"
        quoted = ",".join(f'"{c}"' for c in columns)
        if self.postgres and len(rows) >= 10:
            with (
                conn.cursor() as cursor,
                cursor.copy(f"COPY {table} ({quoted}) FROM STDIN") as copy,
            ):
                for values in rows:
                    copy.write_row(values)
            return
        head = f"INSERT INTO {table} ({quoted}) VALUES "
        per = max(1, 30000 // len(columns))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            conn.execute(head + ",".join([row] * len(chunk)), [v for r in chunk for v in r])

    def block(self, conn: Any, series: str, n: int) -> int:
        """Take n numbers of `series` in one statement; returns the last."""
        p = self.p
        return int(
            conn.execute(
                f"INSERT INTO core_numberseries (name, last_value) VALUES ({p}, {p}) "
                "ON CONFLICT (name) DO UPDATE SET last_value = core_numberseries.last_value + "
                f"EXCLUDED.last_value RETURNING last_value",
                [series, n],
            ).fetchone()[0]
        )

    def plan(
        self, world: dict[str, Any], client: int, hot: bool, device: str, username: str
    ) -> Plan:
        conn = self.connect()
        try:
            items = bs.lines_for(world, client, hot)
            customer = world["customers"][client]
            depot, site = world["depot"], customer["site"]
            sources = self.stock_ids(conn, items, [depot, depot])
            targets = self.stock_ids(conn, items, [site, site])
            assert len(sources) == 3 and len(targets) == 3, "the warm-up opens the stock rows"
            every = sources + targets
            marks = ",".join([self.p] * len(every))
            stock = {
                row[0]: (str(uuid.UUID(str(row[1]))), str(uuid.UUID(str(row[2]))))
                for row in conn.execute(
                    f"SELECT id, item_id, location_id FROM inventory_stock WHERE id IN ({marks})",
                    every,
                ).fetchall()
            }
            owner = conn.execute(
                f"SELECT id FROM identity_user WHERE username = {self.p}", [username]
            ).fetchone()[0]
        finally:
            conn.close()
        names = [f"item {world['items'].index(item)}" for item in items]  # setup_world's names
        return Plan(
            customer["id"],
            site,
            depot,
            items,
            names,
            sources,
            targets,
            stock,
            device,
            str(uuid.UUID(str(owner))),
        )

    def once(self, plan: Plan, full: bool) -> None:
        conn = self.connect()
        try:
            self.batch(conn, plan, OPS, full)
        finally:
            conn.close()

    def batch(self, conn: Any, plan: Plan, n: int, full: bool) -> None:
        try:
            self._batch(conn, plan, n, full)
        except BaseException:
            conn.rollback()
            raise

    def _batch(self, conn: Any, plan: Plan, n: int, full: bool) -> None:
        p = self.p
        at = datetime.now(UTC)
        now = self.db_time(at)
        client_ts = at.isoformat(timespec="milliseconds")
        if not self.postgres:
            conn.execute("BEGIN IMMEDIATE")
        op_ids = [str(uuid.uuid4()) for _ in range(n)]
        if full:  # claim the op ids (PostgreSQL: advisory locks) and look them up, all at once
            if self.postgres:
                locks = [
                    int.from_bytes(
                        hashlib.sha256(f"{plan.owner}|op|{key}".encode()).digest()[:8],
                        "big",
                        signed=True,
                    )
                    for key in op_ids
                ]
                claimed = conn.execute(
                    "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k",
                    [locks],
                ).fetchone()[0]
                assert claimed
            marks = ",".join([p] * n)
            seen = conn.execute(
                f'SELECT "key" FROM core_idempotencyrecord WHERE owner_id = {p} AND scope = {p} '
                f'AND "key" IN ({marks})',
                [self.ident(plan.owner), "op", *op_ids],
            ).fetchall()
            assert not seen
        sales = [uuid.uuid4() for _ in range(n)]
        movements = [uuid.uuid4() for _ in range(n)]
        invoices = [uuid.uuid4() for _ in range(n)]
        customer, depot, site = (self.ident(x) for x in (plan.customer, plan.depot, plan.site))
        items = [self.ident(item) for item in plan.items]
        last = self.block(conn, "TRX", n)
        trx = [f"TRX-{v:06d}" for v in range(last - n + 1, last + 1)]
        self.insert(
            conn,
            "sales_saletransaction",
            [
                [
                    self.db_id(s),
                    number,
                    "confirmed",
                    "",
                    "",
                    "bench",
                    now,
                    now,
                    2,
                    customer,
                    depot,
                    self.db_id(m),
                ]
                for s, number, m in zip(sales, trx, movements, strict=True)
            ],
        )
        serials = self.db_json([])
        self.insert(
            conn,
            "sales_saleline",
            [
                [k, 1, 1250, serials, item, self.db_id(s)]
                for s in sales
                for k, item in enumerate(items)
            ],
        )
        # Every stock row of the batch, locked in one statement in id order, then one guarded
        # UPDATE for all of them: the row count proves none would go below zero.
        every = sorted(plan.sources + plan.targets)
        marks = ",".join([p] * len(every))
        lock = " FOR UPDATE" if self.postgres else ""
        qty0 = dict(
            conn.execute(
                f"SELECT id, qty FROM inventory_stock WHERE id IN ({marks}) ORDER BY id{lock}",
                every,
            ).fetchall()
        )
        delta = {row: (-n if row in plan.sources else n) for row in every}
        case = "CASE id " + " ".join([f"WHEN {p} THEN {p}"] * len(every)) + " END"
        case_params = [v for row in every for v in (row, delta[row])]
        updated = conn.execute(
            f"UPDATE inventory_stock SET qty = qty + {case} WHERE id IN ({marks}) "
            f"AND qty + {case} >= 0",
            [*case_params, *every, *case_params],
        ).rowcount
        if updated != len(every):
            raise RuntimeError("insufficient stock")
        self.insert(
            conn,
            "inventory_movement",
            [
                [self.db_id(m), "sale", "", f"sale:{s}", "", "bench", now]
                for s, m in zip(sales, movements, strict=True)
            ],
        )
        self.insert(
            conn,
            "inventory_movementline",
            [
                [k, 1, serials, depot, item, self.db_id(m), site]
                for m in movements
                for k, item in enumerate(items)
            ],
        )
        last = self.block(conn, "INV", n)
        inv = [f"INV-{v:06d}" for v in range(last - n + 1, last + 1)]
        self.insert(
            conn,
            "sales_invoice",
            [
                [self.db_id(i), number, 3750, 675, 0, 4425, now, customer, self.db_id(s)]
                for i, number, s in zip(invoices, inv, sales, strict=True)
            ],
        )
        self.insert(
            conn,
            "sales_invoiceline",
            [
                [k, "goods", name, 1, 1250, 1250, 1800, 225, 1475, self.db_id(i), item]
                for i in invoices
                for k, (item, name) in enumerate(zip(items, plan.names, strict=True))
            ],
        )
        if full:
            self._bookkeeping(
                conn, plan, at, client_ts, op_ids, sales, trx, movements, invoices, inv, qty0
            )
        conn.commit()

    def _views(
        self, plan: Plan, iso: str, sale: str, number: str, movement: str, invoice: str, inv: str
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """The sale, movement and invoice as the pipeline's views (sales/inventory selectors)."""
        invoice_view = {
            "id": invoice,
            "number": inv,
            "transaction": sale,
            "customer": plan.customer,
            "lines": [
                {
                    "line": k,
                    "kind": "goods",
                    "item": item,
                    "description": name,
                    "qty": 1,
                    "unit_price": money(1250),
                    "net": money(1250),
                    "tax_rate_bp": 1800,
                    "tax": money(225),
                    "total": money(1475),
                }
                for k, (item, name) in enumerate(zip(plan.items, plan.names, strict=True))
            ],
            "subtotal": money(3750),
            "tax": money(675),
            "deposit": money(0),
            "total": money(4425),
            "created_at": iso,
        }
        movement_view = {
            "id": movement,
            "kind": "sale",
            "reason": "",
            "reference": f"sale:{sale}",
            "reverses": None,
            "client_temp_id": None,
            "actor": "bench",
            "created_at": iso,
            "lines": [
                {
                    "line": k,
                    "item": item,
                    "from_location": plan.depot,
                    "to_location": plan.site,
                    "qty": 1,
                    "serials": [],
                }
                for k, item in enumerate(plan.items)
            ],
        }
        sale_view = {
            "id": sale,
            "number": number,
            "status": "confirmed",
            "customer": plan.customer,
            "location": plan.depot,
            "lines": [
                {"line": k, "item": item, "qty": 1, "unit_price": money(1250), "serials": []}
                for k, item in enumerate(plan.items)
            ],
            "invoice": invoice_view,
            "credit_note": None,
            "movement": movement,
            "reversal": None,
            "void_reason": None,
            "client_temp_id": None,
            "created_by": "bench",
            "created_at": iso,
            "confirmed_at": iso,
            "voided_at": None,
            "version": 2,
        }
        return sale_view, movement_view, invoice_view

    def _bookkeeping(
        self,
        conn: Any,
        plan: Plan,
        at: datetime,
        client_ts: str,
        op_ids: list[str],
        sales: list[uuid.UUID],
        trx: list[str],
        movements: list[uuid.UUID],
        invoices: list[uuid.UUID],
        inv: list[str],
        qty0: dict[int, int],
    ) -> None:
        """Op records, audit entries, feed rows, chain head and device: the pipeline's rest."""
        p, iso, now = self.p, at.isoformat(), self.db_time(at)
        stock_rows = sorted(plan.stock)
        changes: list[tuple[str, str, Any, Any, int | None, str]] = []
        records = []
        for k in range(len(op_ids)):
            sale, movement, invoice = str(sales[k]), str(movements[k]), str(invoices[k])
            sale_view, movement_view, invoice_view = self._views(
                plan, iso, sale, trx[k], movement, invoice, inv[k]
            )
            records.append(
                [
                    self.ident(plan.owner),
                    "op",
                    op_ids[k],
                    OP_FINGERPRINT,
                    201,
                    self.db_json(sale_view),
                    now,
                ]
            )
            changes.append(("sale", sale, None, sale_view, 2, plan.depot))
            changes.append(("movement", movement, None, movement_view, None, plan.depot))
            for row in stock_rows:
                item, location = plan.stock[row]
                sign = -1 if row in plan.sources else 1
                before = qty0[row] + sign * k
                changes.append(
                    (
                        "stock",
                        f"{item}:{location}",
                        {"item": item, "location": location, "qty": before},
                        {"item": item, "location": location, "qty": before + sign},
                        None,
                        location,
                    )
                )
            changes.append(("invoice", invoice, None, invoice_view, None, plan.depot))
        self.insert(conn, "core_idempotencyrecord", records)
        # Last before commit, as the pipeline does: the chain head, then audit and feed rows.
        lock = " FOR UPDATE" if self.postgres else ""
        seq, prev, feed = conn.execute(
            f"SELECT audit_seq, audit_hash, feed_seq FROM core_chainhead WHERE id = 1{lock}"
        ).fetchone()
        at_iso = at.isoformat(timespec="microseconds")
        audit, feed_rows = [], []
        for entity, entity_id, before, after, version, location in changes:
            seq += 1
            payload = {
                "seq": seq,
                "at": at_iso,
                "actor_id": plan.owner,
                "actor": "bench",
                "device": plan.device,
                "action": "sale.record",
                "entity_type": entity,
                "entity_id": entity_id,
                "before": before,
                "after": after,
                "client_ts": client_ts,
            }
            sealed = hmac.new(
                self.audit_key, prev.encode() + canonical(payload), hashlib.sha256
            ).hexdigest()
            after_db = self.db_json(after)  # the same document for the audit and the feed
            audit.append(
                [
                    seq,
                    now,
                    self.ident(plan.owner),
                    "bench",
                    plan.device,
                    "sale.record",
                    entity,
                    entity_id,
                    self.db_json(before) if before is not None else None,
                    after_db,
                    client_ts,
                    prev,
                    sealed,
                ]
            )
            prev = sealed
            feed += 1
            feed_rows.append(
                [
                    feed,
                    now,
                    entity,
                    entity_id,
                    "upsert",
                    version,
                    after_db,
                    self.ident(location),
                ]
            )
        self.insert(conn, "core_auditentry", audit)
        self.insert(conn, "core_feedentry", feed_rows)
        conn.execute(
            f"UPDATE core_chainhead SET audit_seq = {p}, audit_hash = {p}, feed_seq = {p} "
            "WHERE id = 1",
            [seq, prev, feed],
        )
        conn.execute(
            f"UPDATE sync_devicesyncstate SET last_seen = {p} WHERE device_id = {p}",
            [now, plan.device],
        )


def raw_for(db: Db) -> RawBatch:
    key = db.env()["QM_AUDIT_KEY"]
    if db.url:
        import psycopg

        url = db.url
        return RawBatch(lambda: psycopg.connect(url), True, key)
    return RawBatch(bs.sqlite_connector(db.sqlite_path), False, key)


def raw_cell(
    raw: RawBatch, plans: list[Plan], clients: int, duration_s: float, full: bool
) -> dict[str, Any]:
    def one(client: int, conn: Any) -> tuple[int, Counter[int], str]:
        try:
            raw.batch(conn, plans[client], OPS, full)
        except Exception as exc:
            return 500, Counter({500: OPS}), f"{type(exc).__name__}: {exc}"[:300]
        return 200, Counter({201: OPS}), ""

    return measured(clients, duration_s, one, lambda client: raw.connect())


# ---------------------------------------------------------------------------------------------
# Rows per op and consistency checks


def count_rows(db: Db) -> dict[str, int]:
    if db.url:
        import psycopg

        with psycopg.connect(db.url, autocommit=True) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                ).fetchall()
            ]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    conn = sqlite3.connect(db.sqlite_path, timeout=30)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
    finally:
        conn.close()


def rows_per_op(db: Db, ok_ops: int, run: Callable[[], None]) -> dict[str, float]:
    before = count_rows(db)
    run()
    after = count_rows(db)
    return {
        t: (after[t] - before.get(t, 0)) / ok_ops
        for t in sorted(after)
        if after[t] != before.get(t, 0)
    }


def pipeline_rows(site: Site) -> dict[str, float]:
    result: dict[str, Any] = {}

    def run() -> None:
        with http_client(site.base, site.token) as http:
            body = batch_body(site.world, 0, False, device_for(site.path, 0), OPS)
            result["status"], result["ops"], result["sample"] = post_batch(http, body)

    rows = rows_per_op(site.db, OPS, run)
    if set(result["ops"]) - {201}:
        say(f"rows-per-op batch on {site.path}: {dict(result['ops'])} {result['sample']}")
    return rows


def check(db: Db) -> dict[str, Any]:
    """`quartermaster audit verify` and `stock rebuild --check` with the server's environment."""
    out = {}
    for name, args in (
        ("audit verify", ["audit", "verify"]),
        ("stock rebuild --check", ["stock", "rebuild", "--check"]),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "quartermaster", *args],
            env=db.env(),
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        lines = (done.stdout + done.stderr).strip().splitlines()
        out[name] = {"rc": done.returncode, "output": lines[-1] if lines else ""}
    return out


# ---------------------------------------------------------------------------------------------
# One database


def pg_databases(server_url: str, names: list[str], create: bool) -> None:
    import psycopg

    with psycopg.connect(bench_items.with_dbname(server_url, "postgres"), autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if create:
                conn.execute(f'CREATE DATABASE "{name}"')


def bench_database(kind: str, pg_server: str | None, args: argparse.Namespace) -> dict[str, Any]:
    say(f"{kind}: setting up three databases and servers")
    with tempfile.TemporaryDirectory(prefix=f"qm-bench-sync-{kind}-") as work:
        names = {"bulk": "bulk", "per-op": "perop", "raw": "raw"}
        pg_names = [f"qm_bench_sync_{os.getpid()}_{n}" for n in names.values()]
        dbs = {}
        for (name, short), pg_name in zip(names.items(), pg_names, strict=True):
            data_dir = Path(work) / short
            data_dir.mkdir()
            url = bench_items.with_dbname(pg_server, pg_name) if pg_server else None
            dbs[name] = Db(kind, name, str(data_dir), url)
        if pg_server:
            pg_databases(pg_server, pg_names, create=True)
        try:
            return _bench(kind, dbs, args)
        finally:
            if pg_server:
                with contextlib.suppress(Exception):
                    pg_databases(pg_server, pg_names, create=False)


def _bench(kind: str, dbs: dict[str, Db], args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {"db": kind}
    if dbs["raw"].url:
        setup = bench_items.DbSetup("postgres", dbs["raw"].url or "", 2, {})
        info["version"] = bench_items.db_version(setup)
    else:
        info["version"] = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
    # The raw database: migrated and seeded through a server like the others, then served no more.
    with serving(dbs["raw"], "raw") as seeded:
        raw_world = seeded.world
    raw = raw_for(dbs["raw"])
    plans = {
        hot: [
            raw.plan(raw_world, c, hot, device_for("raw", c), "bench") for c in range(max(CLIENTS))
        ]
        for hot in (False, True)
    }
    tallies: dict[tuple[int, str, str], Tally] = {}
    with serving(dbs["bulk"], "bulk") as bulk, serving(dbs["per-op"], "per-op") as per_op:
        sites = {"bulk": bulk, "per-op": per_op}
        say(f"{kind}: counting rows per op (one {OPS}-op batch per path)")
        info["rows_per_op"] = {
            "bulk": pipeline_rows(bulk),
            "per-op": pipeline_rows(per_op),
            "raw-domain": rows_per_op(dbs["raw"], OPS, lambda: raw.once(plans[False][0], False)),
            "raw-full": rows_per_op(dbs["raw"], OPS, lambda: raw.once(plans[False][0], True)),
        }
        cells = [(clients, items) for clients in CLIENTS for items in ITEMS]
        for round_no in range(args.rounds):
            # Odd rounds run cells and paths in reverse: databases grow (the raw one fastest),
            # so a fixed order would favour whatever runs first.
            forward = round_no % 2 == 0
            order = PATHS if forward else PATHS[::-1]
            for clients, items in cells if forward else cells[::-1]:
                hot = items == "hot"
                for path in order:
                    if path in sites:
                        run = pipeline_cell(sites[path], clients, hot, args.duration)
                    else:
                        full = path == "raw-full"
                        run = raw_cell(raw, plans[hot], clients, args.duration, full)
                    tally = tallies.setdefault((clients, items, path), Tally())
                    tally.add(run)
                    ok = sum(n for s, n in run["op_statuses"].items() if 200 <= s < 300)
                    bad = {s: n for s, n in run["op_statuses"].items() if not 200 <= s < 300}
                    say(
                        f"{kind} round {round_no + 1}/{args.rounds} {clients} client(s) "
                        f"{items:8} {path:10} {ok / run['elapsed_s']:8.1f} ops/s "
                        f"({run['calls']} batches in {run['elapsed_s']:.1f} s)"
                        + (f" non-2xx ops {bad}" if bad else "")
                    )
    say(f"{kind}: servers stopped; checking the databases")
    info["checks"] = {name: check(db) for name, db in dbs.items()}
    info["cells"] = [
        {"clients": c, "items": i, "path": p, **tallies[(c, i, p)].as_dict()}
        for c in CLIENTS
        for i in ITEMS
        for p in PATHS
    ]
    return info


# ---------------------------------------------------------------------------------------------
# Output


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def render(facts: dict[str, Any], infos: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print()
    print(
        f"machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['ram_gib']} GiB, Linux "
        f"{facts['kernel']}; Python {facts['python']}, Django {facts['django']}, psycopg "
        f"{facts['psycopg']}, SQLite {facts['sqlite']}"
    )
    print(
        "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *facts["loadavg_at_start"], *facts["loadavg_at_end"]
        )
    )
    print(
        f"method: {args.rounds} round(s) x {args.duration:g} s per cell and path, {OPS} ops per "
        "batch, paths interleaved; ops/s counts 2xx op results only"
    )
    if not facts["sync_bulk_switch_in_src"]:
        print("NOTE: QM_SYNC_BULK does not occur in src/: bulk and per-op ran the same code")
    for info in infos:
        print()
        print(f"### {info['db']}: {info['version']}")
        print()
        print(
            "| path | clients | items | ops/s (rounds) | batches/s | p50 ms/batch | p99 ms/batch "
            "| non-2xx ops | failed batches |"
        )
        print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
        cells = {(r["clients"], r["items"], r["path"]): r for r in info["cells"]}
        for (clients, items, path), r in cells.items():
            rounds = r["ops_per_s_rounds"]
            spread = f" ({min(rounds):,.0f}-{max(rounds):,.0f})" if len(rounds) > 1 else ""
            print(
                f"| {path} | {clients} | {items} | {r['ops_per_s']:,.1f}{spread} "
                f"| {r['batches_per_s']} | {r['p50_ms']} | {r['p99_ms']} | {r['non_2xx_ops']} "
                f"| {r['failed_batches']} |"
            )
        print()
        print("| clients | items | bulk / raw-domain | bulk / raw-full | bulk / per-op |")
        print("|---:|---|---:|---:|---:|")
        for clients in CLIENTS:
            for items in ITEMS:
                ops = {p: cells[(clients, items, p)]["ops_per_s"] for p in PATHS}
                print(
                    f"| {clients} | {items} | {ratio(ops['bulk'], ops['raw-domain'])} "
                    f"| {ratio(ops['bulk'], ops['raw-full'])} "
                    f"| {ratio(ops['bulk'], ops['per-op'])} |"
                )
        print()
        print(f"rows inserted per op ({info['db']}, one {OPS}-op batch per path, 1 client):")
        print()
        print("| table | " + " | ".join(PATHS) + " |")
        print("|---|" + "---:|" * len(PATHS))
        tables = sorted({t for per in info["rows_per_op"].values() for t in per})
        for table in tables:
            values = [info["rows_per_op"][p].get(table, 0) for p in PATHS]
            print(f"| {table} | " + " | ".join(f"{v:g}" for v in values) + " |")
        print()
        for name, checks in info["checks"].items():
            text = "; ".join(f"{k}: {v['output']} (rc {v['rc']})" for k, v in checks.items())
            print(f"check {info['db']} {name} db: {text}")
        samples = [
            (r["path"], r["clients"], r["items"], s)
            for r in info["cells"]
            for s in r["error_samples"]
        ]
        for path, clients, items, sample in samples[:6]:
            print(f"error sample {info['db']} {path} {clients} {items}: {sample}")


def ensure_postgres() -> str:
    """The private test server's URL (scripts/ensure-postgres.sh starts it if needed)."""
    out = subprocess.run(
        [str(ROOT / "scripts" / "ensure-postgres.sh")],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--duration", type=float, help="seconds per cell and path, per round (default 5; quick 2)"
    )
    parser.add_argument(
        "--rounds", type=int, help="interleaved rounds over all cells (default 3; quick 1)"
    )
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s per cell and path")
    parser.add_argument(
        "--pg-url",
        help="PostgreSQL server URL (any database name: the bench creates and drops its own). "
        "Default: the private test server printed by scripts/ensure-postgres.sh",
    )
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="run one database only")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = bench_items.machine_facts()
    facts["sync_bulk_switch_in_src"] = any(
        "QM_SYNC_BULK" in path.read_text(errors="replace") for path in (ROOT / "src").rglob("*.py")
    )
    say(
        f"machine: nproc {facts['nproc']} ({facts['cpu']}), load average "
        f"{facts['loadavg_at_start'][0]:.2f}; {args.rounds} round(s) x {args.duration:g} s"
    )
    infos = []
    if args.only in (None, "sqlite"):
        infos.append(bench_database("sqlite", None, args))
    if args.only in (None, "postgres"):
        pg_server = args.pg_url or ensure_postgres()
        say(f"PostgreSQL server: {pg_server}")
        infos.append(bench_database("postgres", pg_server, args))
    facts["loadavg_at_end"] = os.getloadavg()
    render(facts, infos, args)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"facts": facts, "args": vars(args) | {"json": str(args.json)}, "results": infos},
                indent=2,
                default=str,
            )
        )
        say(f"figures written to {args.json}")
    failed = [
        (info["db"], name)
        for info in infos
        for name, checks in info["checks"].items()
        if any(v["rc"] for v in checks.values())
    ]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
