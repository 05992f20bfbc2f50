"""Telling a database failover apart from a fault of the server.

A request that meets a failover mid-way (its connection dropped, the primary shut down, no
read-write server reachable yet) answers 503 `failover`; one that tried to write through a
standby answers 503 `not_primary`. Both carry Retry-After and are retryable by the contract.
Every other database error stays a 500: this never hides a bug behind "retry later".
"""

from __future__ import annotations

from django.db import Error as DjangoDatabaseError
from django.db import InterfaceError as DjangoInterfaceError

from quartermaster.core.errors import DomainError, Failover, NotPrimary

# SQLSTATEs of a server going away: class 08 (connection exception) and the shutdowns.
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})


def database_refusal(error: BaseException | None) -> DomainError | None:
    """The 503 that `error` stands for, or None when it is not a failover's."""
    if error is None or not isinstance(error, DjangoDatabaseError):
        return None
    cause = error.__cause__
    if cause is None:
        # Django's own "connection already closed" after the link broke.
        return Failover() if isinstance(error, DjangoInterfaceError) else None
    try:
        import psycopg
        import psycopg_pool
    except ImportError:  # SQLite only: no failover to tell apart
        return None
    if isinstance(cause, psycopg.errors.ReadOnlySqlTransaction):
        return NotPrimary()
    if isinstance(cause, psycopg_pool.PoolTimeout):
        return Failover()
    if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError):
        state = cause.sqlstate
        if state is None or state.startswith("08") or state in _GONE_STATES:
            return Failover()
    return None
