"""Security events (core.models.SecurityEvent): written apart from any command's transaction.

Only refusals write here, so a request that succeeds never pays for it; a failure to write one
is logged and never turns the refusal into a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from django.db import DatabaseError
from django.utils import timezone

from quartermaster.core.models import SecurityEvent

logger = logging.getLogger(__name__)

LOGIN_FAILED = "login_failed"
LOGIN_LOCKED = "login_locked"
PERMISSION_DENIED = "permission_denied"
SYNC_OP_REJECTED = "sync_op_rejected"


@dataclass(frozen=True)
class Event:
    kind: str
    reason: str
    actor: str = ""
    actor_id: UUID | None = None
    device: str = ""
    address: str = ""
    subject: str = ""


def _clip(text: str, length: int) -> str:
    return text[:length]


def record(events: Sequence[Event]) -> None:
    """Store `events` in one statement."""
    if not events:
        return
    now = timezone.now()
    rows = [
        SecurityEvent(
            at=now,
            kind=event.kind,
            actor_id=event.actor_id,
            actor=_clip(event.actor, 150),
            device=_clip(event.device, 200),
            address=_clip(event.address, 100),
            subject=_clip(event.subject, 300),
            reason=_clip(event.reason, 500),
        )
        for event in events
    ]
    try:
        SecurityEvent.objects.bulk_create(rows)
    except DatabaseError:
        logger.exception("could not record %d security events", len(rows))
