"""Liveness, database reachability and the database role, for load balancers, devices and the
operator (`GET /health`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import caches
from django.db import DatabaseError, connection

from quartermaster.cluster.monitor import current_epoch
from quartermaster.core import ratelimit
from quartermaster.core.failover import retryable_refusal

PRIMARY = "primary"
STANDBY = "standby"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Health:
    database: str  # "ok" | "unavailable"
    role: str  # PRIMARY | STANDBY | UNKNOWN: what this process's database connection reaches
    epoch: int | None  # the cluster epoch this process knows of (cluster.monitor); None: none
    # "ok" | "unavailable" for the cache every process shares (Redis); "local" when this
    # process keeps its own (the embedded single-process server).
    cache: str = "local"

    def body(self) -> dict[str, object]:
        healthy = self.database == "ok" and self.cache != "unavailable"
        return {
            "status": "ok" if healthy else "degraded",
            "database": self.database,
            "role": self.role,
            "epoch": self.epoch,
            "cache": self.cache,
        }


def check() -> Health:
    """One query: reachable, and a primary (writes go through) or a standby (reads only). The
    embedded SQLite database is always its own primary."""
    try:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_is_in_recovery()")
                (in_recovery,) = cursor.fetchone()
                role = STANDBY if in_recovery else PRIMARY
            else:
                cursor.execute("SELECT 1")
                cursor.fetchone()
                role = PRIMARY
    except DatabaseError:
        return Health("unavailable", UNKNOWN, current_epoch(), cache_status())
    return Health("ok", role, current_epoch(), cache_status())


def cache_status() -> str:
    """One round trip to the shared cache when there is one: without it every API request is
    refused (503 `unavailable`), so the operator must see it here."""
    if not ratelimit.is_shared():
        return "local"
    try:
        caches["default"].get("qm:health")
    except Exception as error:  # only the link failing is "unavailable"; the rest is a bug
        if retryable_refusal(error) is None:
            raise
        return "unavailable"
    return "ok"


def database_status() -> str:
    return check().database
