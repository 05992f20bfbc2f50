"""What-if experiments: Quartermaster with a recommended change applied from outside, to measure
the gain before anyone edits identity/, inventory/ or settings. Never used in production.

QM_BENCH_WHATIF is a comma-separated list of:
  pool      PostgreSQL: Django's psycopg connection pool (OPTIONS pool, CONN_MAX_AGE 0) instead of
            a new connection per request (ASGI runs each request's sync code in a new thread)
  thread    every request's sync code in one long-lived thread per process (qm_whatif.asgi), so
            persistent connections work: CONN_MAX_AGE as configured on PostgreSQL, 60 on SQLite
  conn      the connection fix for the database at hand: `pool` on PostgreSQL, `thread` on SQLite
  location  inventory: the default location looked up once per process, not 2x per request
  actor     identity: the acting user and their locations in one query instead of two
"""

from __future__ import annotations

import os
from typing import Any


def experiments() -> set[str]:
    return {w.strip() for w in os.environ.get("QM_BENCH_WHATIF", "").split(",") if w.strip()}


def one_thread(engine: str) -> bool:
    """Whether qm_whatif.asgi runs every request's sync code in one thread per process."""
    found = experiments()
    return "thread" in found or ("conn" in found and not engine.endswith("postgresql"))


def apply_pool(databases: dict[str, Any]) -> None:
    """`pool` (or `conn` on PostgreSQL): Django 5.1+ psycopg pool (needs psycopg-pool).
    `thread` (or `conn` on SQLite): persistent connections (CONN_MAX_AGE 60) on SQLite too."""
    default = databases["default"]
    found = experiments()
    postgres = default["ENGINE"].endswith("postgresql")
    if postgres and ("pool" in found or "conn" in found):
        default["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        default["OPTIONS"] = {**default.get("OPTIONS", {}), "pool": {"min_size": 2, "max_size": 8}}
    if not postgres and one_thread(default["ENGINE"]):
        default["CONN_MAX_AGE"] = 60
