"""Claiming Idempotency-Keys and sync op ids inside the command transaction.

The claim, the work and the stored response commit together, so a key can never point at work
that did not happen, nor work happen without its key. On PostgreSQL a transaction-scoped advisory
lock tells a concurrent duplicate that the first is still in flight (409); SQLite serialises write
transactions, so there the duplicate simply waits and then receives the replay.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import connection
from django.utils import timezone

from quartermaster.core.canonical import EncodeOnce
from quartermaster.core.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from quartermaster.core.models import IdempotencyRecord
from quartermaster.core.rows import insert_rows, new_row

MAX_KEY_LENGTH = 255
# Sync op ids: never expire, fingerprinted by op type (commands.key_fingerprint).
OP_SCOPE = "op"


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
    record = _lookup(owner_id, scope, key)
    if record is None:
        return None
    if record.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    return record


def claim_fresh(*, owner_id: UUID | None, scope: str, keys: list[str]) -> bool:
    """Claim many keys at once for work none of them has done yet, in two statements.

    True: every key is ours until commit and none holds a stored answer. False: some key is in
    flight elsewhere or already answered; the caller then claims them one by one (`claim`),
    which tells each case apart. The keys this call did lock stay locked until the transaction
    ends, so the caller must end it (roll it back) before retrying.
    """
    if not keys:
        return True
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT bool_and(pg_try_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k",
                [[_lock_id(owner_id, scope, key) for key in keys]],
            )
            (acquired,) = cursor.fetchone()
        if not acquired:
            return False
    return not IdempotencyRecord.objects.filter(
        owner_id=owner_id, scope=scope, key__in=keys
    ).exists()


@dataclass(frozen=True)
class Answer:
    """The final answer of a keyed request, to store under its key."""

    owner_id: UUID | None
    scope: str
    key: str
    fingerprint: str
    status: int
    body: Any


def store(
    *, owner_id: UUID | None, scope: str, key: str, fingerprint: str, status: int, body: Any
) -> None:
    store_answers([Answer(owner_id, scope, key, fingerprint, status, body)])


def store_answers(answers: Sequence[Answer], encode: EncodeOnce | None = None) -> None:
    """Store `answers` in one statement; `encode`: the memo the bodies' views are encoded with."""
    if not answers:
        return
    encode = encode or EncodeOnce()
    now = timezone.now()  # what auto_now_add would set
    insert_rows(
        IdempotencyRecord,
        [
            new_row(
                IdempotencyRecord,
                id=None,
                owner_id=answer.owner_id,
                scope=answer.scope,
                key=answer.key,
                fingerprint=answer.fingerprint,
                status=answer.status,
                body=encode(answer.body),
                created_at=now,
            )
            for answer in answers
        ],
    )


# Every keyed command looks its key up: plain SQL, no query compiler (same conversions as the ORM).
_OWNER = IdempotencyRecord._meta.get_field("owner_id")
_BODY = IdempotencyRecord._meta.get_field("body")
_LOOKUP = (
    "SELECT fingerprint, status, body FROM core_idempotencyrecord"
    ' WHERE owner_id {owner} AND scope = %s AND "key" = %s'
)
_LOOKUP_OWNER = _LOOKUP.format(owner="= %s")
_LOOKUP_NO_OWNER = _LOOKUP.format(owner="IS NULL")


def _lookup(owner_id: UUID | None, scope: str, key: str) -> IdempotencyRecord | None:
    if owner_id is None:
        sql, params = _LOOKUP_NO_OWNER, [scope, key]
    else:
        sql, params = _LOOKUP_OWNER, [_OWNER.get_db_prep_value(owner_id, connection), scope, key]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    return IdempotencyRecord(
        owner_id=owner_id,
        scope=scope,
        key=key,
        fingerprint=row[0],
        status=row[1],
        body=_BODY.from_db_value(row[2], _BODY.cached_col, connection),
    )
