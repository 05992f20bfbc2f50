"""Benchmark: the flower market's morning rush and month-end, beside set-based SQL, in one run.

Morning rush (issue 11, deliverable 9). For SQLite and PostgreSQL, 20 devices (and 1: the
batch time without queueing), client threads in this process, each its own staff login and
device id, post POST /api/v1/sync/batch of 50 `market.entry.create` ops ({"farmer", "flower",
"qty", "arrived_at", "client_temp_id"}, farmers and flowers spread over the market, every slot
priced so entries are `open`) against one `quartermaster serve` (2 uvicorn workers,
bench_sales.server). Beside it, interleaved in rounds (odd rounds in reverse order), the same 50
entries per batch as set-based SQL, one transaction per batch, one connection per client
thread, against a second database of the same schema (seeded by a server the same way):

  raw-domain  the ENT number block in one statement, 50 entries + 50 entry versions + 50
              notifications + 50 outbox rows (the farmer's "entry recorded" message), each table
              one multi-row INSERT (PostgreSQL: COPY, as bench_sync and core.rows do).
  raw-full    raw-domain plus the pipeline's bookkeeping, as bench_sync's raw-full: the op ids
              claimed (PostgreSQL advisory locks) and looked up, 50 op records, the chain head
              locked last, the audit and feed rows of every change (the entry, the notification)
              sealed with HMAC-SHA256 and chained in Python, the chain head and the device.

Figures: entries/s (2xx op results / measured seconds, summed over rounds, with the per-round
min-max), p50/p99 latency per 50-op batch. Target (issue 11): pipeline >= 1/4 of the set-based
rate and p99 < 1 s at 20 devices on PostgreSQL.

Month-end: per database, 100, 250 and 500 farmers x 30 market days x 3 entries (the 500-farmer
month is 45,000 entries) are written by set-based SQL (farmers, priced open entries and their
versions; each farmer-count its own month, one database), then one process
`quartermaster market settle --from --to` generates every farmer's draft settlement; its wall
time and peak RSS (GNU time's %M, /usr/bin/time) are reported. Memory should be flat
in the number of farmers (the command streams farmers, one transaction each). Afterwards
`quartermaster journal verify` and `audit verify` run on each database.

    .venv/bin/python bench/bench_market.py                 # 3 rounds x 5 s, ~15 minutes
    .venv/bin/python bench/bench_market.py --quick         # 1 round x 3 s, ~5 minutes
    .venv/bin/python bench/bench_market.py --only postgres --skip-month-end

PostgreSQL: the private durable bench server (`QM_PG_PORT=54330 QM_PG_DURABLE=1
scripts/ensure-postgres.sh`, started if it is not running: fsync on), or --pg-url. The bench
creates its databases there and drops them at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_items  # machine facts, database naming and version, the durable server
import bench_sales as bs  # server, login, load loop, SQLite connection
import bench_sync as sy  # tallies, batch posting, set-based inserts, row counts

ROOT = bs.ROOT
say = bs.say
MARKET = "/api/v1/market"
DEVICES = 20
OPS = 50  # ops per batch
PATHS = ("pipeline", "raw-domain", "raw-full")
PG_PORT = 54330
TZ = "Asia/Kolkata"
SLOTS = [
    {"code": "s1", "starts": "04:00", "ends": "06:00"},
    {"code": "s2", "starts": "06:00", "ends": "08:00"},
    {"code": "s3", "starts": "08:00", "ends": "10:00"},
]
FEES = [
    {
        "code": "market",
        "name": "Market fee",
        "name_ta": "சந்தை கட்டணம்",
        "kind": "percent_bp",
        "value": 100,
    },
    {"code": "labour", "name": "Labour", "name_ta": "கூலி", "kind": "per_unit", "value": "0.10"},
    {"code": "slip", "name": "Slip", "name_ta": "சீட்டு", "kind": "per_entry", "value": "2.00"},
]
FLOWERS = [  # code, English, Tamil, unit, rate in paise per unit
    ("jasmine", "Jasmine", "மல்லிகை", "kg", 48_000),
    ("rose", "Rose", "ரோஜா", "bundle", 6_000),
    ("marigold", "Marigold", "சாமந்தி", "kg", 7_500),
]
RUSH_FARMERS = 200
MONTH_END_FARMERS = (100, 250, 500)
DAYS, PER_DAY = 30, 3
SERVER_ENV = {"QM_API_REQUESTS_PER_USER": "0", "QM_API_REQUESTS_PER_IP": "0"}
TIME = "/usr/bin/time"  # GNU time (Debian package `time`): a child's own peak RSS
OP_FINGERPRINT = hashlib.sha256(b'["op","market.entry.create"]').hexdigest()

# The columns the raw paths write (the models' db columns), beside bench_sync's bookkeeping ones.
sy.COLUMNS.update(
    {
        "market_farmer": "id number name name_ta phone whatsapp language village version "
        "created_by created_at",
        "market_entry": "id seq number qty_base arrived_at market_day slot rate_minor gross_minor "
        "status void_reason version created_by created_by_id client_temp_id created_at "
        "farmer_id flower_id rate_posting_id",
        "market_entryversion": "entry_id version qty_base flower_id farmer_id",
        "notifications_notification": "id channel template language recipient params status "
        "attempts last_error dedupe_key provider_message_id fallback_recipient created_at "
        "updated_at",
        "core_outboxmessage": "id kind ref dedupe_key state attempts available_at lease_token "
        "last_error created_at updated_at",
    }
)


# ---------------------------------------------------------------------------------------------
# The market, set up over HTTP by the admin


@dataclass
class World:
    flowers: list[dict[str, Any]]  # {"id", "unit", "rate_minor", "postings": {slot: id}}
    farmers: list[dict[str, Any]]  # {"id", "number", "language", "whatsapp", "name"}
    day: date  # the market day the rush records (today in the market's time zone)
    devices: list[tuple[str, str]]  # (staff username, token)


def _ok(reply: httpx.Response) -> Any:
    if reply.status_code not in (200, 201):
        raise RuntimeError(f"{reply.request.method} {reply.request.url}: {reply.text[:300]}")
    return reply.json()


def create_clerks(env: dict[str, str], devices: int) -> list[str]:
    """Staff users over the CLI (`quartermaster createuser`, the server's environment)."""

    def one(n: int) -> str:
        username = f"clerk{n}"
        subprocess.run(
            [sys.executable, "-m", "quartermaster", "createuser", username, "--role", "staff"],
            env=env,
            input=bs.PASSWORD + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        return username

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(devices)))


def set_up_market(base: str, token: str, farmers: int, clerks: list[str]) -> World:
    """Settings, flowers, a rate for every slot from long ago, farmers, the clerks' logins."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
        settings = {"timezone": TZ, "slots": SLOTS, "commission_bp": 800, "fees": FEES}
        _ok(http.put(f"{MARKET}/settings", json=settings))
        flowers = []
        for code, name, name_ta, unit, rate in FLOWERS:
            body = {"code": code, "name": name, "name_ta": name_ta, "unit": unit}
            flower = _ok(http.post(f"{MARKET}/flowers", json=body))
            postings = {}
            for slot in SLOTS:
                rate_body = {
                    "flower": flower["id"],
                    "date": "2020-01-01",
                    "slot": slot["code"],
                    "rate": f"{rate / 100:.2f}",
                }
                postings[slot["code"]] = _ok(http.post(f"{MARKET}/rates", json=rate_body))["id"]
            flowers.append({"id": flower["id"], "unit": unit, "rate": rate, "postings": postings})
        people = []
        for n in range(farmers):
            language = "ta" if n % 2 else "en"
            body = {
                "name": f"Farmer {n}",
                "name_ta": f"விவசாயி {n}",
                "phone": f"+9190000{n:05d}",
                "whatsapp": f"+9190000{n:05d}",
                "language": language,
                "village": "Thovalai",
            }
            farmer = _ok(http.post(f"{MARKET}/farmers", json=body))
            people.append(farmer)
        logins = []
        for username in clerks:
            reply = httpx.post(
                f"{base}/api/v1/auth/login", json={"username": username, "password": bs.PASSWORD}
            )
            logins.append((username, str(_ok(reply)["access"])))
    day = datetime.now(ZoneInfo(TZ)).date()
    return World(flowers, people, day, logins)


def arrival(day: date, n: int) -> str:
    """A time of the market day's rush (04:00-09:59 local), spread over the three slots."""
    minute = 4 * 60 + (n * 7) % 360
    return f"{day.isoformat()}T{minute // 60:02d}:{minute % 60:02d}:00+05:30"


def entry_payload(world: World, rng: random.Random, n: int) -> dict[str, Any]:
    flower = world.flowers[n % len(world.flowers)]
    qty: Any = (
        f"{rng.randint(500, 20000) / 1000:.3f}" if flower["unit"] == "kg" else rng.randint(1, 40)
    )
    return {
        "farmer": world.farmers[rng.randrange(len(world.farmers))]["id"],
        "flower": flower["id"],
        "qty": qty,
        "arrived_at": arrival(world.day, n),
        "client_temp_id": f"t-{uuid.uuid4().hex[:12]}",
    }


# ---------------------------------------------------------------------------------------------
# The morning rush as set-based SQL


@dataclass(frozen=True)
class Clerk:
    username: str
    owner: str  # the clerk's user id
    device: str


def device_for(path: str, client: int) -> str:
    return f"bench-{path}-{client}"


class RawEntries(sy.RawBatch):
    """n `market.entry.create` as set-based SQL in one transaction (see the module docstring)."""

    def __init__(self, connect: Any, postgres: bool, audit_key: str, world: World) -> None:
        super().__init__(connect, postgres, audit_key)
        self.world = world
        self.flowers = {f["id"]: f for f in world.flowers}
        self.farmers = {f["id"]: f for f in world.farmers}
        self.names = {code: (name, name_ta) for code, name, name_ta, _, _ in FLOWERS}

    def clerks(self, path: str) -> list[Clerk]:
        conn = self.connect()
        try:
            found = []
            for n, (username, _) in enumerate(self.world.devices):
                owner = conn.execute(
                    f"SELECT id FROM identity_user WHERE username = {self.p}", [username]
                ).fetchone()[0]
                found.append(Clerk(username, str(uuid.UUID(str(owner))), device_for(path, n)))
            return found
        finally:
            conn.close()

    def entries(self, conn: Any, clerk: Clerk, payloads: list[dict[str, Any]], full: bool) -> None:
        try:
            self._entries(conn, clerk, payloads, full)
        except BaseException:
            conn.rollback()
            raise

    def _entries(self, conn: Any, clerk: Clerk, payloads: list[dict[str, Any]], full: bool) -> None:
        at = datetime.now(UTC)
        now, iso = self.db_time(at), at.isoformat()
        client_ts = at.isoformat(timespec="milliseconds")
        if not self.postgres:
            conn.execute("BEGIN IMMEDIATE")
        op_ids = [str(uuid.uuid4()) for _ in payloads]
        if full:
            self._claim(conn, clerk, op_ids)
        n = len(payloads)
        last = self.block(conn, "ENT", n)
        entries, versions, notes, outbox, views, note_views = [], [], [], [], [], []
        for k, payload in enumerate(payloads):
            seq = last - n + 1 + k
            entry = self._entry(payload, seq, clerk)
            entry_id = entry["id"]
            flower, farmer = self.flowers[payload["flower"]], self.farmers[payload["farmer"]]
            arrived = datetime.fromisoformat(payload["arrived_at"]).astimezone(UTC)
            entries.append(
                [
                    self.db_id(uuid.UUID(entry_id)),
                    seq,
                    entry["number"],
                    entry["qty_base"],
                    self.db_time(arrived),
                    self.world.day,
                    entry["slot"],
                    flower["rate"],
                    entry["gross_minor"],
                    "open",
                    "",
                    1,
                    clerk.username,
                    self.ident(clerk.owner),
                    payload["client_temp_id"],
                    now,
                    self.ident(farmer["id"]),
                    self.ident(flower["id"]),
                    self.ident(flower["postings"][entry["slot"]]),
                ]
            )
            versions.append(
                [
                    self.db_id(uuid.UUID(entry_id)),
                    1,
                    entry["qty_base"],
                    self.ident(flower["id"]),
                    self.ident(farmer["id"]),
                ]
            )
            note_id = uuid.uuid4()
            dedupe = f"market.entry.recorded:{entry_id}"
            language = farmer["language"]
            name, name_ta = self.names[self._code(flower)]
            params = {
                "name": farmer.get("name_ta") if language == "ta" else farmer["name"],
                "number": entry["number"],
                "flower": name_ta if language == "ta" else name,
                "qty": f"{payload['qty']} {flower['unit']}",
                "amount": f"Rs {entry['gross_minor'] / 100:.2f}",
            }
            recipient = farmer["whatsapp"].lstrip("+")
            notes.append(
                [
                    self.db_id(note_id),
                    "console",
                    "market_entry_recorded",
                    language,
                    recipient,
                    self.db_json(params),
                    "queued",
                    0,
                    "",
                    dedupe,
                    "",
                    "",
                    now,
                    now,
                ]
            )
            outbox.append(
                [
                    self.db_id(uuid.uuid4()),
                    "notification",
                    str(note_id),
                    dedupe,
                    "pending",
                    0,
                    now,
                    "",
                    "",
                    now,
                    now,
                ]
            )
            views.append(entry["view"])
            note_views.append(_note_view(note_id, language, recipient, dedupe, iso))
        for table, rows in (
            ("market_entry", entries),
            ("market_entryversion", versions),
            ("notifications_notification", notes),
            ("core_outboxmessage", outbox),
        ):
            self.insert(conn, table, rows)
        if full:
            self._bookkeeping_entries(conn, clerk, at, client_ts, op_ids, views, note_views)
        conn.commit()

    def _code(self, flower: dict[str, Any]) -> str:
        return FLOWERS[self.world.flowers.index(flower)][0]

    def _entry(self, payload: dict[str, Any], seq: int, clerk: Clerk) -> dict[str, Any]:
        flower = self.flowers[payload["flower"]]
        unit = flower["unit"]
        if unit == "kg":
            kg, grams = str(payload["qty"]).split(".")
            qty_base = int(kg) * 1000 + int(grams)
            gross = (qty_base * flower["rate"] * 2 + 1000) // 2000  # half-up
        else:
            qty_base = int(payload["qty"])
            gross = qty_base * flower["rate"]
        local = datetime.fromisoformat(payload["arrived_at"])
        slot = [s["code"] for s in SLOTS if s["starts"] <= local.strftime("%H:%M")][-1]
        entry_id = str(uuid.uuid4())
        number = f"ENT-{seq:06d}"
        view = {
            "id": entry_id,
            "number": number,
            "farmer": payload["farmer"],
            "flower": payload["flower"],
            "unit": unit,
            "qty": payload["qty"],
            "arrived_at": local.astimezone(UTC).isoformat(),
            "market_day": self.world.day.isoformat(),
            "slot": slot,
            "rate": f"{flower['rate'] / 100:.2f}",
            "gross": f"{gross / 100:.2f}",
            "status": "open",
            "settlement": None,
            "void_reason": None,
            "version": 1,
            "created_by": clerk.username,
            "client_temp_id": payload["client_temp_id"],
        }
        return {
            "id": entry_id,
            "number": number,
            "qty_base": qty_base,
            "gross_minor": gross,
            "slot": slot,
            "view": view,
        }

    def _claim(self, conn: Any, clerk: Clerk, op_ids: list[str]) -> None:
        """The op ids claimed (PostgreSQL: advisory locks, as core.idempotency) and looked up."""
        p = self.p
        if self.postgres:
            locks = [
                int.from_bytes(
                    hashlib.sha256(f"{clerk.owner}|op|{key}".encode()).digest()[:8],
                    "big",
                    signed=True,
                )
                for key in op_ids
            ]
            conn.execute(
                "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k",
                [locks],
            ).fetchone()
        marks = ",".join([p] * len(op_ids))
        seen = conn.execute(
            f'SELECT "key" FROM core_idempotencyrecord WHERE owner_id = {p} AND scope = {p} '
            f'AND "key" IN ({marks})',
            [self.ident(clerk.owner), "op", *op_ids],
        ).fetchall()
        assert not seen

    def _bookkeeping_entries(
        self,
        conn: Any,
        clerk: Clerk,
        at: datetime,
        client_ts: str,
        op_ids: list[str],
        views: list[dict[str, Any]],
        note_views: list[dict[str, Any]],
    ) -> None:
        """Op records; the chain head locked last; audit (entry, notification) and feed (entry)
        rows sealed and chained; the chain head and the device's last_seen."""
        p, now = self.p, self.db_time(at)
        owner = self.ident(clerk.owner)
        records = [
            [owner, "op", key, OP_FINGERPRINT, 201, self.db_json(view), now]
            for key, view in zip(op_ids, views, strict=True)
        ]
        self.insert(conn, "core_idempotencyrecord", records)
        lock = " FOR UPDATE" if self.postgres else ""
        seq, prev, feed = conn.execute(
            f"SELECT audit_seq, audit_hash, feed_seq FROM core_chainhead WHERE id = 1{lock}"
        ).fetchone()
        at_iso = at.isoformat(timespec="microseconds")
        audit, feed_rows = [], []
        for view, note in zip(views, note_views, strict=True):
            for entity, after in (("market.entry", view), ("notification", note)):
                seq += 1
                payload = {
                    "seq": seq,
                    "at": at_iso,
                    "actor_id": clerk.owner,
                    "actor": clerk.username,
                    "device": clerk.device,
                    "action": "market.entry.create",
                    "entity_type": entity,
                    "entity_id": after["id"],
                    "before": None,
                    "after": after,
                    "client_ts": client_ts,
                }
                sealed = hmac.new(
                    self.audit_key, prev.encode() + sy.canonical(payload), hashlib.sha256
                ).hexdigest()
                after_db = self.db_json(after)
                audit.append(
                    [
                        seq,
                        now,
                        owner,
                        clerk.username,
                        clerk.device,
                        "market.entry.create",
                        entity,
                        after["id"],
                        None,
                        after_db,
                        client_ts,
                        prev,
                        sealed,
                    ]
                )
                prev = sealed
                if entity == "market.entry":
                    feed += 1
                    feed_rows.append([feed, now, entity, after["id"], "upsert", 1, after_db, None])
        self.insert(conn, "core_auditentry", audit)
        self.insert(conn, "core_feedentry", feed_rows)
        conn.execute(
            f"UPDATE core_chainhead SET audit_seq = {p}, audit_hash = {p}, feed_seq = {p} "
            "WHERE id = 1",
            [seq, prev, feed],
        )
        conn.execute(
            f"UPDATE sync_devicesyncstate SET last_seen = {p} WHERE device_id = {p}",
            [now, clerk.device],
        )


def _note_view(note_id: uuid.UUID, language: str, recipient: str, dedupe: str, iso: str) -> Any:
    return {
        "id": str(note_id),
        "channel": "console",
        "template": "market_entry_recorded",
        "language": language,
        "recipient": recipient,
        "status": "queued",
        "attempts": 0,
        "last_error": None,
        "dedupe_key": dedupe,
        "provider_message_id": None,
        "fallback_of": None,
        "created_at": iso,
        "updated_at": iso,
    }


# ---------------------------------------------------------------------------------------------
# The morning rush: pipeline and raw paths, interleaved


@dataclass
class Kind:
    """One database kind's rush set-up: the pipeline's server and the raw database."""

    kind: str
    pipeline: sy.Db
    raw: sy.Db
    version: str = ""


def ops_body(world: World, rng: random.Random, device: str, n: int) -> dict[str, Any]:
    ts = datetime.now(UTC).isoformat(timespec="milliseconds")
    ops = [
        {
            "op_id": str(uuid.uuid4()),
            "type": "market.entry.create",
            "payload": entry_payload(world, rng, k),
            "client_ts": ts,
        }
        for k in range(n)
    ]
    return {"device_id": device, "ops": ops}


@contextlib.contextmanager
def market_server(db: sy.Db, path: str) -> Iterator[tuple[str, World]]:
    """Serve `db` (migrated, an admin `bench`), set the market up, warm every clerk's device."""
    with bs.server(db.url, db.data_dir, db.extra_env, role="admin") as base:
        token = bs.login(base)
        clerks = create_clerks(db.env(), DEVICES)
        world = set_up_market(base, token, RUSH_FARMERS, clerks)

        def warm(client: int) -> None:
            rng = random.Random(client)
            with sy.http_client(base, world.devices[client][1]) as http:
                body = ops_body(world, rng, device_for(path, client), 5)
                status, statuses, sample = sy.post_batch(http, body)
            if set(statuses) - {201}:
                raise RuntimeError(f"warm-up batch on {path} failed: {status} {sample}")

        with ThreadPoolExecutor(4) as pool:
            list(pool.map(warm, range(DEVICES)))
        yield base, world


Batch = Callable[[int, Any], tuple[int, Counter[int], str]]
Drive = Callable[[int, Batch, Callable[[int], Any]], dict[str, Any]]


def bursts(clients: int, count: int, one: Batch, make: Callable[[int], Any]) -> dict[str, Any]:
    """`count` bursts: every client sends one batch at the same instant (the market's network
    comes back and every tablet flushes its outbox), and the next burst starts once all are
    answered. Latency is each batch's, from the burst's start. Same figures as sy.measured."""
    latencies: list[float] = []
    ops: Counter[int] = Counter()
    statuses: Counter[int] = Counter()
    gate = threading.Barrier(clients + 1)
    lock = threading.Lock()

    def client_loop(client: int) -> None:
        handle = make(client)  # in its thread: an SQLite connection stays in the one it was made
        try:
            for _ in range(count):
                gate.wait()
                started = time.perf_counter()
                status, op_statuses, _ = one(client, handle)
                with lock:
                    latencies.append(time.perf_counter() - started)
                    ops.update(op_statuses)
                    statuses[status] += 1
                gate.wait()
        finally:
            with contextlib.suppress(Exception):
                handle.close()

    threads = [threading.Thread(target=client_loop, args=(c,)) for c in range(clients)]
    for thread in threads:
        thread.start()
    elapsed = 0.0
    for _ in range(count):
        gate.wait()  # the burst starts
        started = time.perf_counter()
        gate.wait()  # every batch of it answered
        elapsed += time.perf_counter() - started
    for thread in threads:
        thread.join()
    return {
        "elapsed_s": round(elapsed, 3),
        "calls": len(latencies),
        "latencies": latencies,
        "op_statuses": ops,
        "batch_statuses": statuses,
        "samples": [],
    }


def driver(args: argparse.Namespace) -> Drive:
    """Closed loop for `--duration` s (the default), or `--bursts` N bursts."""
    if args.bursts:
        return lambda clients, one, make: bursts(clients, args.bursts, one, make)
    return lambda clients, one, make: sy.measured(clients, args.duration, one, make)


def pipeline_cell(base: str, world: World, clients: int, drive: Drive) -> dict[str, Any]:
    rngs = [random.Random(1000 + c) for c in range(clients)]

    def one(client: int, http: httpx.Client) -> tuple[int, Counter[int], str]:
        body = ops_body(world, rngs[client], device_for("pipeline", client), OPS)
        return sy.post_batch(http, body)

    return drive(clients, one, lambda c: sy.http_client(base, world.devices[c][1]))


def raw_cell(
    raw: RawEntries, clerks: list[Clerk], clients: int, drive: Drive, full: bool
) -> dict[str, Any]:
    rngs = [random.Random(2000 + c) for c in range(clients)]

    def one(client: int, conn: Any) -> tuple[int, Counter[int], str]:
        payloads = [entry_payload(raw.world, rngs[client], k) for k in range(OPS)]
        try:
            raw.entries(conn, clerks[client], payloads, full)
        except Exception as exc:
            return 500, Counter({500: OPS}), f"{type(exc).__name__}: {exc}"[:300]
        return 200, Counter({201: OPS}), ""

    return drive(clients, one, lambda client: raw.connect())


def raw_for(db: sy.Db, world: World) -> RawEntries:
    key = db.env()["QM_AUDIT_KEY"]
    if db.url:
        import psycopg

        url = db.url
        return RawEntries(lambda: psycopg.connect(url), True, key, world)
    return RawEntries(bs.sqlite_connector(db.sqlite_path), False, key, world)


def seed_raw(kind: Kind) -> RawEntries:
    """The raw database: migrated and set up through a short-lived server, then served no more."""
    say(f"{kind.kind}: seeding the raw database through a short-lived server")
    with market_server(kind.raw, "raw") as (_, raw_world):
        pass
    return raw_for(kind.raw, raw_world)


def rush(kind: Kind, raw: RawEntries, args: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {"db": kind.kind, "version": kind.version}
    clerks = raw.clerks("raw")
    tallies: dict[tuple[int, str], sy.Tally] = {}
    say(f"{kind.kind}: serving the pipeline")
    with market_server(kind.pipeline, "pipeline") as (base, world):
        info["rows_per_op"] = rows_per_op(kind, base, world, raw, clerks)
        for round_no in range(args.rounds):
            forward = round_no % 2 == 0
            for clients in args.devices if forward else args.devices[::-1]:
                for path in PATHS if forward else PATHS[::-1]:
                    if path == "pipeline":
                        run = pipeline_cell(base, world, clients, driver(args))
                    else:
                        full = path == "raw-full"
                        run = raw_cell(raw, clerks, clients, driver(args), full)
                    tally = tallies.setdefault((clients, path), sy.Tally())
                    tally.add(run)
                    ok = sum(n for s, n in run["op_statuses"].items() if 200 <= s < 300)
                    bad = {s: n for s, n in run["op_statuses"].items() if not 200 <= s < 300}
                    lat = sorted(run["latencies"])
                    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0
                    say(
                        f"{kind.kind} round {round_no + 1}/{args.rounds} {clients:2} device(s) "
                        f"{path:10} {ok / run['elapsed_s']:8.1f} entries/s, p99 {p99:6.0f} ms "
                        f"({run['calls']} batches in {run['elapsed_s']:.1f} s)"
                        + (f" non-2xx ops {bad}" if bad else "")
                    )
    info["cells"] = [
        {"clients": c, "path": p, **tallies[(c, p)].as_dict()} for c in args.devices for p in PATHS
    ]
    return info


def rows_per_op(
    kind: Kind, base: str, world: World, raw: RawEntries, clerks: list[Clerk]
) -> dict[str, dict[str, float]]:
    """One 50-op batch per path alone, the rows of every table counted before and after."""

    def pipeline() -> None:
        with sy.http_client(base, world.devices[0][1]) as http:
            body = ops_body(world, random.Random(7), device_for("pipeline", 0), OPS)
            sy.post_batch(http, body)

    def raw_path(full: bool) -> None:
        conn = raw.connect()
        try:
            payloads = [entry_payload(raw.world, random.Random(7), k) for k in range(OPS)]
            raw.entries(conn, clerks[0], payloads, full)
        finally:
            conn.close()

    return {
        "pipeline": sy.rows_per_op(kind.pipeline, OPS, pipeline),
        "raw-domain": sy.rows_per_op(kind.raw, OPS, lambda: raw_path(False)),
        "raw-full": sy.rows_per_op(kind.raw, OPS, lambda: raw_path(True)),
    }


# ---------------------------------------------------------------------------------------------
# Month-end: settlements of every farmer in one `quartermaster market settle`


def month_of(index: int) -> tuple[date, date]:
    """Each farmer count its own past month (days 1-30), so runs never share entries."""
    first = date(2026, 6 + index, 1)
    return first, first + timedelta(days=DAYS - 1)


def seed_month(raw: RawEntries, farmers: int, first: date) -> float:
    """`farmers` new farmers x DAYS days x PER_DAY priced open entries (+ their versions), set
    based, one transaction; returns the seconds it took."""
    started = time.perf_counter()
    conn = raw.connect()
    try:
        if not raw.postgres:
            conn.execute("BEGIN IMMEDIATE")
        now = raw.db_time(datetime.now(UTC))
        last = raw.block(conn, "FMR", farmers)
        people = []
        for k in range(farmers):
            number = last - farmers + 1 + k
            people.append(
                [
                    raw.db_id(uuid.uuid4()),
                    f"FMR-{number:06d}",
                    f"Farmer {number}",
                    f"விவசாயி {number}",
                    f"+9191{number:08d}",
                    f"+9191{number:08d}",
                    "ta" if number % 2 else "en",
                    "Thovalai",
                    1,
                    "bench",
                    now,
                ]
            )
        raw.insert(conn, "market_farmer", people)
        n = farmers * DAYS * PER_DAY
        seq = raw.block(conn, "ENT", n) - n
        rng = random.Random(farmers)
        zone = ZoneInfo(TZ)
        entries, versions = [], []
        for farmer in people:
            for day in range(DAYS):
                market_day = first + timedelta(days=day)
                for k in range(PER_DAY):
                    seq += 1
                    flower = raw.world.flowers[k % len(raw.world.flowers)]
                    slot = SLOTS[k % len(SLOTS)]
                    hour, minute = (int(x) for x in slot["starts"].split(":"))
                    local = datetime(
                        market_day.year,
                        market_day.month,
                        market_day.day,
                        hour,
                        minute + 30,
                        tzinfo=zone,
                    )
                    arrived = local.astimezone(UTC)
                    qty = rng.randint(500, 20000) if flower["unit"] == "kg" else rng.randint(1, 40)
                    if flower["unit"] == "kg":
                        gross = (qty * flower["rate"] * 2 + 1000) // 2000
                    else:
                        gross = qty * flower["rate"]
                    entry_id = raw.db_id(uuid.uuid4())
                    entries.append(
                        [
                            entry_id,
                            seq,
                            f"ENT-{seq:06d}",
                            qty,
                            raw.db_time(arrived),
                            market_day,
                            slot["code"],
                            flower["rate"],
                            gross,
                            "open",
                            "",
                            1,
                            "bench",
                            None,
                            "",
                            now,
                            farmer[0],
                            raw.ident(flower["id"]),
                            raw.ident(flower["postings"][slot["code"]]),
                        ]
                    )
                    versions.append([entry_id, 1, qty, raw.ident(flower["id"]), farmer[0]])
        raw.insert(conn, "market_entry", entries)
        raw.insert(conn, "market_entryversion", versions)
        conn.commit()
    finally:
        conn.close()
    return time.perf_counter() - started


def settle(db: sy.Db, first: date, last: date) -> dict[str, Any]:
    """One `quartermaster market settle` process under GNU time: its wall time, CPU and own
    peak RSS. (Not os.wait4's ru_maxrss: Linux counts the memory the child inherited at fork,
    i.e. this bench process's RSS, into it; time(1) forks from a process of a few MiB.)"""
    command = [sys.executable, "-m", "quartermaster", "market", "settle"]
    command += ["--from", first.isoformat(), "--to", last.isoformat()]
    with tempfile.NamedTemporaryFile("r", suffix=".time") as measured:
        timed = [TIME, "-f", "%M %e %U %S", "-o", measured.name, *command]
        done = subprocess.run(
            timed, env=db.env(), cwd=ROOT, capture_output=True, text=True, check=False
        )
        max_rss_kib, wall, user, system = measured.read().split()[-4:]
    lines = (done.stdout + done.stderr).strip().splitlines()
    return {
        "rc": done.returncode,
        "wall_s": float(wall),
        "cpu_s": round(float(user) + float(system), 2),
        "max_rss_mib": round(int(max_rss_kib) / 1024, 1),
        "output": lines[-1] if lines else "",
    }


def month_end(
    kinds: list[Kind], raws: dict[str, RawEntries], counts: list[int]
) -> list[dict[str, Any]]:
    """Per farmer count (interleaved across databases): seed its month, settle it in one run.
    First an empty period: the command's fixed cost (Django, the database driver)."""
    results = []
    for kind in kinds:
        first, last = date(2026, 1, 1), date(2026, 1, DAYS)
        run = settle(kind.raw, first, last)
        say(f"{kind.kind} month-end 0 farmers: {run}")
        results.append({"db": kind.kind, "farmers": 0, "entries": 0, "seed_s": 0.0, **run})
    for index, farmers in enumerate(counts):
        first, last = month_of(index)
        for kind in kinds if index % 2 == 0 else kinds[::-1]:
            seeded = seed_month(raws[kind.kind], farmers, first)
            run = settle(kind.raw, first, last)
            entries = farmers * DAYS * PER_DAY
            say(
                f"{kind.kind} month-end {farmers} farmers, {entries} entries "
                f"(seeded in {seeded:.1f} s): {run}"
            )
            results.append(
                {
                    "db": kind.kind,
                    "farmers": farmers,
                    "entries": entries,
                    "seed_s": round(seeded, 1),
                    **run,
                }
            )
    return results


def checks(db: sy.Db) -> dict[str, Any]:
    out = {}
    for name, args in (
        ("audit verify", ["audit", "verify"]),
        ("journal verify", ["journal", "verify"]),
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
        # The verdict, not the reminder to sign a checkpoint that audit verify ends with.
        said = [line for line in lines if "checkpoint" not in line] or lines
        out[name] = {"rc": done.returncode, "output": said[-1] if said else ""}
    return out


# ---------------------------------------------------------------------------------------------
# Output and main


def render(
    facts: dict[str, Any],
    infos: list[dict[str, Any]],
    months: list[dict[str, Any]],
    args: argparse.Namespace,
) -> None:
    print()
    print(
        f"machine: nproc {facts['nproc']}, {facts['cpu']}, {facts['ram_gib']} GiB, Linux "
        f"{facts['kernel']}; Python {facts['python']}, Django {facts['django']}, psycopg "
        f"{facts['psycopg']}, SQLite {facts['sqlite']}; {facts['date']}"
    )
    print(
        "load average before: {:.2f} {:.2f} {:.2f}; after: {:.2f} {:.2f} {:.2f}".format(
            *facts["loadavg_at_start"], *facts["loadavg_at_end"]
        )
    )
    print(
        f"method: {args.rounds} round(s) x {args.duration:g} s per cell and path, {OPS} ops per "
        "batch, paths interleaved; entries/s counts 2xx op results only"
    )
    for info in infos:
        print()
        print(f"### morning rush, {info['db']}: {info['version']}")
        print()
        print("| path | devices | entries/s (rounds) | p50 ms/batch | p99 ms/batch | non-2xx ops |")
        print("|---|---:|---:|---:|---:|---:|")
        cells = {(r["clients"], r["path"]): r for r in info["cells"]}
        for (clients, path), r in cells.items():
            rounds = r["ops_per_s_rounds"]
            spread = f" ({min(rounds):,.0f}-{max(rounds):,.0f})" if len(rounds) > 1 else ""
            print(
                f"| {path} | {clients} | {r['ops_per_s']:,.1f}{spread} | {r['p50_ms']} "
                f"| {r['p99_ms']} | {r['non_2xx_ops']} |"
            )
        print()
        print("| devices | pipeline / raw-domain | pipeline / raw-full |")
        print("|---:|---:|---:|")
        for clients in args.devices:
            ops = {p: cells[(clients, p)]["ops_per_s"] for p in PATHS}
            print(
                f"| {clients} | {sy.ratio(ops['pipeline'], ops['raw-domain'])} "
                f"| {sy.ratio(ops['pipeline'], ops['raw-full'])} |"
            )
        print()
        print(f"rows inserted per entry ({info['db']}, one {OPS}-op batch per path):")
        print()
        print("| table | " + " | ".join(PATHS) + " |")
        print("|---|" + "---:|" * len(PATHS))
        tables = sorted({t for per in info["rows_per_op"].values() for t in per})
        for table in tables:
            values = [info["rows_per_op"][p].get(table, 0) for p in PATHS]
            print(f"| {table} | " + " | ".join(f"{v:g}" for v in values) + " |")
        for r in info["cells"]:
            for sample in r["error_samples"]:
                print(f"error sample {info['db']} {r['path']} {r['clients']}: {sample}")
    if months:
        print()
        print("### month-end: `quartermaster market settle --from --to`, one process")
        print()
        print("| db | farmers | entries | seed (SQL) s | wall s | CPU s | peak RSS MiB | output |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for m in months:
            print(
                f"| {m['db']} | {m['farmers']} | {m['entries']:,} | {m['seed_s']} | {m['wall_s']} "
                f"| {m['cpu_s']} | {m['max_rss_mib']} | {m['output']} (rc {m['rc']}) |"
            )
    for name, checked in facts.get("checks", {}).items():
        text = "; ".join(f"{k}: {v['output']} (rc {v['rc']})" for k, v in checked.items())
        print(f"check {name}: {text}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, help="seconds per cell and path (default 5)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3)")
    parser.add_argument("--quick", action="store_true", help="1 round of 3 s per cell and path")
    parser.add_argument(
        "--devices",
        default=f"1,{DEVICES}",
        help=f"comma-separated device counts (default 1,{DEVICES}; at most {DEVICES})",
    )
    parser.add_argument(
        "--bursts",
        type=int,
        default=0,
        help="instead of a closed loop for --duration s, N bursts per cell: every device sends "
        "one batch at the same instant, the next burst once all are answered (a rush's outage "
        "ending); p99 is then the time to drain one burst",
    )
    parser.add_argument("--pg-url", help="PostgreSQL server URL (default: the durable bench one)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="run one database only")
    parser.add_argument(
        "--farmers",
        default=",".join(map(str, MONTH_END_FARMERS)),
        help="comma-separated month-end farmer counts (default 100,250,500)",
    )
    parser.add_argument("--skip-rush", action="store_true")
    parser.add_argument("--skip-month-end", action="store_true")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    args.duration = args.duration or (3.0 if args.quick else 5.0)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.devices = [int(x) for x in args.devices.split(",")]
    args.farmers = [int(x) for x in args.farmers.split(",")]
    if not args.skip_month_end and not Path(TIME).exists():
        parser.error(f"month-end needs GNU time at {TIME} (apt-get install time)")
    if max(args.devices) > DEVICES:
        parser.error(f"at most {DEVICES} devices (one clerk login each)")
    return args


def make_kinds(work: Path, pg_server: str | None, only: str | None) -> list[Kind]:
    kinds = []
    for kind in ("sqlite", "postgres"):
        if only not in (None, kind):
            continue
        dbs = {}
        for name in ("pipeline", "raw"):
            data_dir = work / f"{kind}-{name}"
            data_dir.mkdir()
            url = None
            if kind == "postgres":
                assert pg_server
                url = bench_items.with_dbname(pg_server, f"qm_bench_market_{os.getpid()}_{name}")
            dbs[name] = sy.Db(kind, name, str(data_dir), url)
        if kind == "postgres":
            setup = bench_items.DbSetup("postgres", dbs["raw"].url or "", 2, {})
            version = ""
            sy.pg_databases(pg_server or "", [_name(db) for db in dbs.values()], create=True)
            version = bench_items.db_version(setup)
        else:
            version = f"SQLite {sqlite3.sqlite_version} (WAL, synchronous=NORMAL)"
        kinds.append(Kind(kind, dbs["pipeline"], dbs["raw"], version))
    return kinds


def _name(db: sy.Db) -> str:
    return (db.url or "").rsplit("/", 1)[-1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    facts = bench_items.machine_facts()
    say(
        f"machine: nproc {facts['nproc']} ({facts['cpu']}), load average "
        f"{facts['loadavg_at_start'][0]:.2f}; {args.rounds} round(s) x {args.duration:g} s"
    )
    pg_server = None
    if args.only != "sqlite":
        pg_server = args.pg_url or bench_items.ensure_postgres(PG_PORT)
        say(f"PostgreSQL server: {pg_server}")
    infos, months = [], []
    with tempfile.TemporaryDirectory(prefix="qm-bench-market-") as work:
        kinds = make_kinds(Path(work), pg_server, args.only)
        try:
            raws = {kind.kind: seed_raw(kind) for kind in kinds}
            if not args.skip_rush:
                infos = [rush(kind, raws[kind.kind], args) for kind in kinds]
            if not args.skip_month_end:
                months = month_end(kinds, raws, args.farmers)
            facts["checks"] = {
                f"{kind.kind} {db.name}": checks(db)
                for kind in kinds
                for db in (kind.pipeline, kind.raw)
            }
        finally:
            if pg_server:
                names = [
                    _name(db)
                    for kind in kinds
                    if kind.kind == "postgres"
                    for db in (kind.pipeline, kind.raw)
                ]
                with contextlib.suppress(Exception):
                    sy.pg_databases(pg_server, names, create=False)
    facts["loadavg_at_end"] = os.getloadavg()
    render(facts, infos, months, args)
    if args.json:
        payload = {"facts": facts, "args": vars(args) | {"json": str(args.json)}}
        args.json.write_text(
            json.dumps(payload | {"rush": infos, "month_end": months}, indent=2, default=str)
        )
        say(f"figures written to {args.json}")
    failed = [name for name, c in facts["checks"].items() if any(v["rc"] for v in c.values())]
    failed += [f"settle {m['db']} {m['farmers']}" for m in months if m["rc"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
