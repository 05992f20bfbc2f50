"""Connections that follow the primary of a pg_auto_failover group.

The database URL lists every node (`postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write`)
and libpq connects to whichever is the primary. When none is (a failover is under way, or this
machine is cut off from the primary), a connection to a standby is made instead, so the process
still serves reads; a write through it fails with "read-only transaction", which the HTTP edge
answers 503 `not_primary` (core.failover). Such a connection is given back after
`STANDBY_RECHECK_S`, so the pool looks for a primary again soon after one appears; every
connection is checked before it is lent (Django's CONN_HEALTH_CHECKS), so a dead one from
before the failover is replaced instead of failing a request.

Psycopg only: the settings module names these before Django is set up.
"""

from __future__ import annotations

import time
from typing import Any, Self

import psycopg

STANDBY_RECHECK_S = 2.0


class FollowPrimaryConnection(psycopg.Connection[Any]):
    """A psycopg connection to the primary, else (for reads) to any node that answers."""

    # When a connection that reached only a standby was made (monotonic s); None: a primary.
    standby_since: float | None = None

    @classmethod
    def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
        try:
            return super().connect(conninfo, **kwargs)
        except psycopg.OperationalError:
            if kwargs.get("target_session_attrs") != "read-write":
                raise
        connection = super().connect(conninfo, **{**kwargs, "target_session_attrs": "any"})
        if connection.info.parameter_status("in_hot_standby") == "on":
            connection.standby_since = time.monotonic()
        return connection


def give_back_standby(connection: psycopg.Connection[Any]) -> None:
    """The pool's reset, as a connection comes back: a standby connection kept past
    `STANDBY_RECHECK_S` is refused (raising makes the pool close it and open a fresh one,
    which looks for the primary first)."""
    since = getattr(connection, "standby_since", None)
    if since is not None and time.monotonic() - since > STANDBY_RECHECK_S:
        raise psycopg.OperationalError("a standby connection: look for the primary again")
