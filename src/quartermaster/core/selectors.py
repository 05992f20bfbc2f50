"""Reads of the shared tables: audit entries."""

from __future__ import annotations

from typing import Any

from quartermaster.core.models import AuditEntry


def list_audit_entries(
    *,
    after_seq: int,
    limit: int,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
) -> list[AuditEntry]:
    query = AuditEntry.objects.filter(seq__gt=after_seq)
    if entity_type:
        query = query.filter(entity_type=entity_type)
    if entity_id:
        query = query.filter(entity_id=entity_id)
    if actor:
        query = query.filter(actor=actor)
    return list(query.order_by("seq")[:limit])


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "device": entry.device,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "before": entry.before,
        "after": entry.after,
        "client_ts": entry.client_ts,
        "hash": entry.hash,
        "prev_hash": entry.prev_hash,
    }
