"""Reads of the shared tables: audit entries, security events."""

from __future__ import annotations

from typing import Any

from quartermaster.core.audit import entry_payload
from quartermaster.core.models import AuditEntry, SecurityEvent
from quartermaster.core.pagination import Keyset, Page, PageRequest, int_key

AUDIT_ORDER = Keyset(fields=(int_key("seq"),))


def list_audit_entries(
    *,
    page: PageRequest,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
) -> Page[AuditEntry]:
    """The chain in the order it was sealed."""
    query = AuditEntry.objects.all()
    if entity_type:
        query = query.filter(entity_type=entity_type)
    if entity_id:
        query = query.filter(entity_id=entity_id)
    if actor:
        query = query.filter(actor=actor)
    return AUDIT_ORDER.page(query, page)


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    """The sealed fields exactly as hashed, plus the seal itself, so a reader can re-verify."""
    return {**entry_payload(entry), "hash": entry.hash, "prev_hash": entry.prev_hash}


# Newest first: the events worth a look lead.
SECURITY_EVENT_ORDER = Keyset(fields=(int_key("id"),), descending=True)


def list_security_events(
    *, page: PageRequest, kind: str | None = None, actor: str | None = None
) -> Page[SecurityEvent]:
    query = SecurityEvent.objects.all()
    if kind:
        query = query.filter(kind=kind)
    if actor:
        query = query.filter(actor=actor)
    return SECURITY_EVENT_ORDER.page(query, page)


def security_event_view(event: SecurityEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": event.at.isoformat(),
        "kind": event.kind,
        "actor": event.actor,
        "actor_id": str(event.actor_id) if event.actor_id else None,
        "device": event.device,
        "address": event.address,
        "subject": event.subject,
        "reason": event.reason,
    }
