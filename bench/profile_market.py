"""Where a market sync batch's time goes: 50 `market.entry.create` ops, one process, one thread.

Drives `POST /api/v1/sync/batch` through Django's test client (no socket, no uvicorn, no other
client) against a fresh database and prints ms per batch, ms and SQL statements per op, and the
transactions per batch; `--profile` adds a cProfile listing. The floor of the morning rush in
`bench_market.py`: a served batch cannot be faster than this, alone.

    PYTHONPATH=src .venv/bin/python bench/profile_market.py                  # SQLite, temp dir
    PYTHONPATH=src .venv/bin/python bench/profile_market.py \\
        --db-url postgresql://qm@127.0.0.1:54330/qm_profile_market           # recreated first
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent))
import profile_sync  # Django set-up in this process, database re-creation

OPS = 50
PASSWORD = profile_sync.PASSWORD


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db-url", help="PostgreSQL URL (recreated); default: SQLite")
    parser.add_argument("--batches", type=int, default=5, help="timed batches (default 5)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile listing")
    parser.add_argument(
        "--statements", action="store_true", help="also print ms per batch by statement"
    )
    args = parser.parse_args()
    if args.db_url:
        profile_sync.recreate_postgres(args.db_url)
    profile_sync.setup_django(args.db_url)

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.identity.services import CreateUser

    for name, role in (("admin", "admin"), ("clerk", "staff")):
        command = CreateUser(username=name, password=PASSWORD, role=role)
        execute(command, Context(actor=SYSTEM_ACTOR))
    client = Client()

    def token(name: str) -> str:
        body = {"username": name, "password": PASSWORD}
        reply = client.post("/api/v1/auth/login", body, content_type="application/json")
        return str(json.loads(reply.content)["access"])

    def post(path: str, body: Any, as_: str) -> Any:
        reply = client.post(
            path,
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {as_}",
        )
        assert reply.status_code in (200, 201, 207), (reply.status_code, reply.content[:300])
        return json.loads(reply.content)

    admin, clerk = token("admin"), token("clerk")
    flower = post(
        "/api/v1/market/flowers",
        {"code": "jasmine", "name": "Jasmine", "name_ta": "மல்லிகை", "unit": "kg"},
        admin,
    )["id"]
    for slot in ("s1", "s2", "s3"):
        rate = {"flower": flower, "date": "2020-01-01", "slot": slot, "rate": "480.00"}
        post("/api/v1/market/rates", rate, admin)
    farmers = [
        post(
            "/api/v1/market/farmers",
            {"name": f"F{n}", "phone": f"+91900000{n:04d}", "language": "ta"},
            admin,
        )["id"]
        for n in range(20)
    ]
    day = datetime.now(ZoneInfo("Asia/Kolkata")).date().isoformat()
    rng = random.Random(1)

    def batch() -> dict[str, Any]:
        ops = [
            {
                "op_id": str(uuid.uuid4()),
                "type": "market.entry.create",
                "payload": {
                    "farmer": rng.choice(farmers),
                    "flower": flower,
                    "qty": f"{rng.randint(500, 20000) / 1000:.3f}",
                    "arrived_at": f"{day}T05:{k % 60:02d}:00+05:30",
                },
                "client_ts": f"{day}T05:00:00+05:30",
            }
            for k in range(OPS)
        ]
        return {"device_id": "profile-device", "ops": ops}

    post("/api/v1/sync/batch", batch(), clerk)  # warm-up
    bodies = [batch() for _ in range(args.batches)]
    profiler = cProfile.Profile() if args.profile else None
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        for body in bodies:
            results = post("/api/v1/sync/batch", body, clerk)["results"]
            assert all(result["status"] == 201 for result in results), results[0]
        if profiler:
            profiler.disable()
        elapsed = time.perf_counter() - started
    ops = args.batches * OPS
    sql = [q["sql"].lstrip().split(" ", 1)[0].upper() for q in queries.captured_queries]
    commits = sum(1 for q in queries.captured_queries if q["sql"].strip().upper() == "COMMIT")
    print(
        f"{connection.vendor}: {ops / elapsed:,.0f} entries/s, {elapsed / args.batches * 1000:.1f}"
        f" ms per {OPS}-op batch, {elapsed / ops * 1000:.2f} ms and {len(sql) / ops:.1f} SQL"
        f" statements per entry ({', '.join(f'{k} {sql.count(k) / ops:.1f}' for k in sorted(set(sql)))})"
        + (f", {commits / args.batches:.0f} COMMITs per batch" if commits else "")
    )
    if args.statements:
        print_statements(queries.captured_queries, args.batches)
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def print_statements(captured: list[dict[str, Any]], batches: int) -> None:
    """The time the client waited for each kind of statement, per batch, slowest first."""
    spent: dict[str, float] = {}
    for query in captured:
        words = query["sql"].split()
        kind = " ".join(words[:4] if words[0].upper() != "SELECT" else words[:1] + words[-12:-9])
        spent[kind[:70]] = spent.get(kind[:70], 0.0) + float(query["time"])
    for kind, seconds in sorted(spent.items(), key=lambda item: -item[1])[:20]:
        print(f"  {seconds / batches * 1000:7.2f} ms  {kind}")


if __name__ == "__main__":
    main()
