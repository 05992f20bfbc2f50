"""Which database errors are a failover's (503, retryable) and which stay a 500 (pure)."""

from __future__ import annotations

import psycopg
import psycopg_pool
from django.db import IntegrityError, InterfaceError, OperationalError

from quartermaster.core.errors import Failover, NotPrimary
from quartermaster.core.failover import retryable_refusal


def wrapped(django_class: type[Exception], cause: Exception) -> Exception:
    error = django_class(str(cause))
    error.__cause__ = cause
    return error


def test_a_write_through_a_standby_is_not_primary() -> None:
    cause = psycopg.errors.ReadOnlySqlTransaction(
        "cannot execute INSERT in a read-only transaction"
    )

    refusal = retryable_refusal(wrapped(OperationalError, cause))

    assert isinstance(refusal, NotPrimary)
    assert refusal.status == 503 and refusal.retry_after_s > 0


def test_a_lost_connection_a_shutdown_and_an_empty_pool_are_a_failover() -> None:
    for cause in (
        psycopg.OperationalError("server closed the connection unexpectedly"),
        psycopg.errors.AdminShutdown("terminating connection due to administrator command"),
        psycopg_pool.PoolTimeout("couldn't get a connection after 10.00 sec"),
    ):
        assert isinstance(retryable_refusal(wrapped(OperationalError, cause)), Failover), cause
    assert isinstance(retryable_refusal(InterfaceError("connection already closed")), Failover)


def test_other_database_errors_stay_faults() -> None:
    assert retryable_refusal(wrapped(IntegrityError, psycopg.errors.UniqueViolation("dup"))) is None
    assert retryable_refusal(wrapped(OperationalError, psycopg.errors.QueryCanceled("x"))) is None
    assert retryable_refusal(OperationalError("database is locked")) is None  # SQLite
    assert retryable_refusal(ValueError("not a database error")) is None
