"""Liveness, database reachability and the database role, for load balancers, devices and the
operator (`GET /health`)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import DatabaseError, connection

from quartermaster.cluster.monitor import current_epoch

PRIMARY = "primary"
STANDBY = "standby"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Health:
    database: str  # "ok" | "unavailable"
    role: str  # PRIMARY | STANDBY | UNKNOWN: what this process's database connection reaches
    epoch: int | None  # the cluster epoch this process knows of (cluster.monitor); None: none

    def body(self) -> dict[str, object]:
        return {
            "status": "ok" if self.database == "ok" else "degraded",
            "database": self.database,
            "role": self.role,
            "epoch": self.epoch,
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
        return Health(database="unavailable", role=UNKNOWN, epoch=current_epoch())
    return Health(database="ok", role=role, epoch=current_epoch())


def database_status() -> str:
    return check().database
