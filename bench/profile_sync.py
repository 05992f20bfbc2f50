"""Where a sync batch's time goes: 100-sale batches through the whole stack in one process.

Drives `POST /api/v1/sync/batch` through Django's test client (middleware, auth, ninja, the
pipeline; no socket, no uvicorn) against a fresh database, times the phases of the bulk path
with wrappers, and prints ms per batch for each; `--profile` adds a cProfile listing. It is the
tool behind "What made the difference" in bench/RESULTS.md; `bench_sync.py` is the benchmark.

    PYTHONPATH=src .venv/bin/python bench/profile_sync.py                      # SQLite, temp dir
    PYTHONPATH=src .venv/bin/python bench/profile_sync.py --db-url postgresql://qm@127.0.0.1:54329/qm_profile
    QM_SYNC_BULK=0 PYTHONPATH=src .venv/bin/python bench/profile_sync.py --batches 3   # per-op

A PostgreSQL database given by --db-url is dropped and created again first.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import json
import os
import pstats
import tempfile
import time
import uuid
from collections import Counter
from typing import Any

PASSWORD = "profile-password-0123456789"
TIMINGS: Counter[str] = Counter()
LABELS: list[str] = []  # in the order they were wrapped: outer phases first


def timed(owner: Any, name: str, label: str | None = None) -> None:
    """Replace owner.name with a wrapper adding its wall time to TIMINGS[label or name]."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            TIMINGS[label or name] += time.perf_counter() - started

    LABELS.append(label or name)
    setattr(owner, name, wrapper)


def recreate_postgres(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(db_url: str | None) -> None:
    os.environ.setdefault("QM_DATA_DIR", tempfile.mkdtemp(prefix="qm-profile-"))
    os.environ.setdefault("QM_SECRET_KEY", "profile-secret-key-0123456789abcdef")
    os.environ.setdefault("QM_AUDIT_KEY", "profile-audit-key-0123456789abcdef")
    os.environ.setdefault("QM_ACCESS_TOKEN_TTL_S", "36000")
    os.environ.setdefault("QM_API_REQUESTS_PER_USER", "0")
    os.environ.setdefault("QM_API_REQUESTS_PER_IP", "0")
    os.environ.setdefault("QM_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "quartermaster.settings"
    if db_url:
        os.environ["QM_DATABASE_URL"] = db_url
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def instrument() -> None:
    """Wrap the phases of the bulk path (module attributes, so callers see the wrappers)."""
    from quartermaster.core import audit, commands, idempotency
    from quartermaster.sales import recording
    from quartermaster.sync import api, plan, units

    timed(api, "apply_batch", "sync batch (service)")
    timed(units, "run_bulk", "bulk run, commit included")
    timed(units, "execute_many", "execute_many")
    timed(recording, "record_sales", "  record_sales")
    timed(recording, "_write", "    write sales (rows, views)")
    timed(recording, "write_movements", "      write movements")
    timed(commands, "record_changes_many", "  audit chain + feed")
    timed(audit, "append_entries", "    seal + insert audit entries")
    timed(idempotency, "claim_fresh", "  claim op ids")
    timed(idempotency, "store_answers", "  store answers")
    timed(plan, "parse_bulk_run", "parse ops into commands")
    timed(api, "json_response", "JSON response")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--db-url", help="PostgreSQL URL (recreated); default: SQLite in a temp dir"
    )
    parser.add_argument("--batches", type=int, default=10, help="timed batches (default 10)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile listing")
    args = parser.parse_args()
    if args.db_url:
        recreate_postgres(args.db_url)
    setup_django(args.db_url)

    from django.db import connection
    from django.test import Client

    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.identity.services import CreateUser

    execute(
        CreateUser(username="bench", password=PASSWORD, role="admin"), Context(actor=SYSTEM_ACTOR)
    )
    client = Client()
    login = {"username": "bench", "password": PASSWORD}
    token = json.loads(
        client.post("/api/v1/auth/login", login, content_type="application/json").content
    )
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token['access']}"}

    def post(path: str, body: Any) -> Any:
        reply = client.post(path, json.dumps(body), content_type="application/json", **headers)
        assert reply.status_code in (200, 201, 207), (reply.status_code, reply.content[:300])
        return json.loads(reply.content)

    items = [
        post(
            "/api/v1/items",
            {"name": f"item {n}", "qty": 10**9, "price": "12.50", "tax_rate_bp": 1800},
        )["id"]
        for n in range(3)
    ]
    customer = post("/api/v1/customers", {"name": "customer"})["id"]
    depot = json.loads(client.get("/api/v1/locations?kind=depot", **headers).content)["results"][0][
        "id"
    ]

    def batch() -> dict[str, Any]:
        line = [{"item": item, "qty": 1} for item in items]
        payload = {"customer": customer, "location": depot, "lines": line, "confirm": True}
        ops = [
            {
                "op_id": str(uuid.uuid4()),
                "type": "sale.record",
                "payload": payload,
                "client_ts": "2026-12-01T05:00:00Z",
            }
            for _ in range(100)
        ]
        return {"device_id": "profile-device", "ops": ops}

    post("/api/v1/sync/batch", batch())  # warm-up
    instrument()
    bodies = [batch() for _ in range(args.batches)]
    profiler = cProfile.Profile() if args.profile else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    for body in bodies:
        results = post("/api/v1/sync/batch", body)["results"]
        assert all(result["status"] == 201 for result in results), results[0]
    if profiler:
        profiler.disable()
    elapsed = time.perf_counter() - started
    mode = "bulk" if os.environ.get("QM_SYNC_BULK", "1") != "0" else "per-op"
    print(
        f"{connection.vendor}, {mode}: {args.batches * 100 / elapsed:,.0f} ops/s, "
        f"{elapsed / args.batches * 1000:.1f} ms per 100-op batch"
    )
    for label in LABELS:
        seconds = TIMINGS[label]
        print(f"  {label:34s} {seconds / args.batches * 1000:7.1f} ms/batch")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
