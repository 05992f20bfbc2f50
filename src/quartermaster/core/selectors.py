"""Reads of the shared tables: audit entries."""

from __future__ import annotations

from typing import Any

from quartermaster.core.audit import entry_payload
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
    """The sealed fields exactly as hashed, plus the seal itself, so a reader can re-verify."""
    return {**entry_payload(entry), "hash": entry.hash, "prev_hash": entry.prev_hash}
