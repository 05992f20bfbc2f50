"""Claiming Idempotency-Keys and sync op ids inside the command transaction.

The claim, the work and the stored response commit together, so a key can never point at work
that did not happen, nor work happen without its key. On PostgreSQL a transaction-scoped advisory
lock tells a concurrent duplicate that the first is still in flight (409); SQLite serialises write
transactions, so there the duplicate simply waits and then receives the replay.
"""

from __future__ import annotations

import hashlib
from typing import Any
from uuid import UUID

from django.db import connection

from quartermaster.core.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from quartermaster.core.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


def _lock_id(owner_id: UUID | None, scope: str, key: str) -> int:
    digest = hashlib.sha256(f"{owner_id}|{scope}|{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def claim(
    *, owner_id: UUID | None, scope: str, key: str, fingerprint: str
) -> IdempotencyRecord | None:
    """Return the stored record to replay, or None if the caller should do the work now.

    Raises IdempotencyKeyInFlight or IdempotencyKeyReused.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_lock_id(owner_id, scope, key)])
            (acquired,) = cursor.fetchone()
        if not acquired:
            raise IdempotencyKeyInFlight()
    record = IdempotencyRecord.objects.filter(owner_id=owner_id, scope=scope, key=key).first()
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record


def store(
    *, owner_id: UUID | None, scope: str, key: str, fingerprint: str, status: int, body: Any
) -> None:
    IdempotencyRecord.objects.create(
        owner_id=owner_id, scope=scope, key=key, fingerprint=fingerprint, status=status, body=body
    )
