"""What-if experiments: Quartermaster with a recommended change applied from outside, to measure
the gain before anyone edits identity/, inventory/ or settings. Never used in production.

QM_BENCH_WHATIF is a comma-separated list of:
  pool      PostgreSQL: Django's psycopg connection pool (OPTIONS pool, CONN_MAX_AGE 0) instead of
            a new connection per request (ASGI runs each request's sync code in a new thread)
  location  inventory: the default location looked up once per process, not 2x per request
  actor     identity: the acting user and their locations in one query instead of two
"""

from __future__ import annotations

import os
from typing import Any


def experiments() -> set[str]:
    return {w.strip() for w in os.environ.get("QM_BENCH_WHATIF", "").split(",") if w.strip()}


def apply_pool(databases: dict[str, Any]) -> None:
    """Django 5.1+ psycopg pool on PostgreSQL (needs psycopg-pool); SQLite is left as it is."""
    default = databases["default"]
    if "pool" in experiments() and default["ENGINE"].endswith("postgresql"):
        default["CONN_MAX_AGE"] = 0  # Django refuses persistent connections with a pool
        default["OPTIONS"] = {**default.get("OPTIONS", {}), "pool": {"min_size": 2, "max_size": 8}}
