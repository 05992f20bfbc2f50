"""Telling a database failover apart from a fault of the server.

A request that meets a failover mid-way (its connection dropped, the primary shut down, no
read-write server reachable yet) answers 503 `failover`; one that tried to write through a
standby answers 503 `not_primary`. Both carry Retry-After and are retryable by the contract.
When the shared cache (Redis) is unreachable the answer is 503 `unavailable`, retryable too.
Every other error stays a 500: this never hides a bug behind "retry later".
"""

from __future__ import annotations

from django.db import Error as DjangoDatabaseError
from django.db import InterfaceError as DjangoInterfaceError

from quartermaster.core.errors import DomainError, Failover, NotPrimary, SharedStateUnavailable

# SQLSTATEs of a server going away: class 08 (connection exception) and the shutdowns.
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})


def retryable_refusal(error: BaseException | None) -> DomainError | None:
    """The 503 that `error` stands for, or None when it is a fault of the server."""
    if error is None:
        return None
    if not isinstance(error, DjangoDatabaseError):
        return _shared_state_refusal(error)
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


def _shared_state_refusal(error: BaseException) -> DomainError | None:
    try:
        import redis.exceptions
    except ImportError:  # no Redis client installed: nothing shared to lose
        return None
    from limits.errors import StorageError

    if isinstance(error, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return SharedStateUnavailable()
    if isinstance(error, StorageError):  # the `limits` library's wrapper of the same
        return SharedStateUnavailable()
    return None
