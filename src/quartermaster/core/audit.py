"""The keyed hash chain over audit entries: appending (inside the command transaction) and verifying.

hash(n) = HMAC-SHA256(audit_key, hash(n-1) ‖ canonical JSON of entry n). The key is configuration,
never stored in the database, so someone who can edit the table cannot re-seal the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from uuid import UUID

from django.conf import settings

from quartermaster.core.canonical import Encoded, canonical_json
from quartermaster.core.models import GENESIS_HASH, AuditEntry, ChainHead
from quartermaster.core.rows import insert_rows


def entry_payload(entry: AuditEntry) -> dict[str, Any]:
    """Exactly the fields the hash covers."""
    return {
        "seq": entry.seq,
        "at": _iso(entry.at),
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor": entry.actor,
        "device": entry.device,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "before": entry.before,
        "after": entry.after,
        "client_ts": entry.client_ts,
    }


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="microseconds")


def seal(prev_hash: str, payload: dict[str, Any], key: bytes | None = None) -> str:
    mac_key = key if key is not None else settings.AUDIT_KEY.encode()
    return hmac.new(
        mac_key, prev_hash.encode() + canonical_json(payload), hashlib.sha256
    ).hexdigest()


@dataclass(slots=True)
class NewEntry:
    """An entry being appended: AuditEntry's columns, `before`/`after` already encoded."""

    at: datetime
    actor_id: UUID | None
    actor: str
    device: str
    action: str
    entity_type: str
    entity_id: str
    before: Encoded | None
    after: Encoded | None
    client_ts: str
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


def append_entries(head: ChainHead, entries: Iterable[NewEntry]) -> list[NewEntry]:
    """Number and seal `entries` after `head` (locked by the caller), then insert them in bulk."""
    key = settings.AUDIT_KEY.encode()
    sealed = []
    for entry in entries:
        head.audit_seq += 1
        entry.seq = head.audit_seq
        entry.prev_hash = head.audit_hash
        entry.hash = hmac.new(
            key, entry.prev_hash.encode() + sealed_bytes(entry), hashlib.sha256
        ).hexdigest()
        head.audit_hash = entry.hash
        sealed.append(entry)
    insert_rows(AuditEntry, sealed)
    return sealed


def sealed_bytes(entry: NewEntry) -> bytes:
    """`canonical_json(entry_payload(entry))`, byte for byte (a test holds them equal), built
    around the texts `before` and `after` were encoded to instead of encoding them again; the
    parts one command's entries share are built once."""
    return "".join(
        (
            _who(entry.action, entry.actor, entry.actor_id),
            entry.after.text if entry.after is not None else "null",
            _when(entry.at),
            entry.before.text if entry.before is not None else "null",
            _where(entry.client_ts, entry.device),
            _text(entry.entity_id),
            _ENTITY_TYPE,
            _text(entry.entity_type),
            _SEQ,
            str(int(entry.seq)),
            "}",
        )
    ).encode()


_ENTITY_TYPE = ',"entity_type":'
_SEQ = ',"seq":'


@lru_cache(maxsize=256)
def _who(action: str, actor: str, actor_id: UUID | None) -> str:
    actor_text = _text(str(actor_id)) if actor_id else "null"
    return f'{{"action":{_text(action)},"actor":{_text(actor)},"actor_id":{actor_text},"after":'


@lru_cache(maxsize=64)
def _when(at: datetime) -> str:
    return f',"at":{_text(_iso(at))},"before":'


@lru_cache(maxsize=256)
def _where(client_ts: str, device: str) -> str:
    return f',"client_ts":{_text(client_ts)},"device":{_text(device)},"entity_id":'


def _text(value: str) -> str:
    """A JSON string as canonical_json writes it (ensure_ascii off): quoted as is unless it
    holds a quote, a backslash or a character that is not printable, which json escapes."""
    if value.isprintable() and '"' not in value and "\\" not in value:
        return '"' + value + '"'
    return json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    entries: int
    first_bad_seq: int | None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "entries": self.entries, "first_bad_seq": self.first_bad_seq}


def _entries_in_order(chunk_size: int = 2000) -> Iterator[AuditEntry]:
    return AuditEntry.objects.order_by("seq").iterator(chunk_size=chunk_size)


def verify_chain(progress: Any = None) -> VerifyReport:
    """Walk the whole chain; name the first entry that was edited, removed, inserted or reordered.

    A deleted tail is caught by comparing with the chain head, which every append updates.
    """
    key = settings.AUDIT_KEY.encode()
    expected_seq = 1
    prev_hash = GENESIS_HASH
    count = 0
    for entry in _entries_in_order():
        count += 1
        if entry.seq != expected_seq or entry.prev_hash != prev_hash:
            return VerifyReport(ok=False, entries=count, first_bad_seq=expected_seq)
        if not hmac.compare_digest(entry.hash, seal(prev_hash, entry_payload(entry), key)):
            return VerifyReport(ok=False, entries=count, first_bad_seq=entry.seq)
        prev_hash = entry.hash
        expected_seq += 1
        if progress is not None and count % 10000 == 0:
            progress(count)
    head = ChainHead.objects.filter(pk=1).first()
    head_seq = head.audit_seq if head else 0
    head_hash = head.audit_hash if head else GENESIS_HASH
    if head_seq != count or head_hash != prev_hash:
        return VerifyReport(ok=False, entries=count, first_bad_seq=min(head_seq, count) + 1)
    return VerifyReport(ok=True, entries=count, first_bad_seq=None)
