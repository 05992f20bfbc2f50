"""Reads of notifications: the back office's list (newest first) and the lookups of the worker
and of providers' status reports. Notifications belong to no location: admins and managers
read them all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import Q

from quartermaster.core.pagination import Keyset, Page, PageRequest, time_key, uuid_key
from quartermaster.core.types import View
from quartermaster.notifications.models import Notification

NOTIFICATION_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")), descending=True)


@dataclass(frozen=True)
class NotificationView(View):
    """A message to a person and how its delivery stands (never its params: what it says is
    rendered at send time). Chain format 1: it began as the wire body of the time and stays as
    it is; the API may rename its fields in `to_wire`, never here."""

    id: UUID
    channel: str
    template: str
    language: str
    recipient: str
    status: str
    attempts: int
    last_error: str
    dedupe_key: str
    provider_message_id: str
    fallback_of_id: UUID | None
    created_at: datetime
    updated_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "channel": self.channel,
            "template": self.template,
            "language": self.language,
            "recipient": self.recipient,
            "status": self.status,
            "attempts": self.attempts,
            "last_error": self.last_error or None,
            "dedupe_key": self.dedupe_key,
            "provider_message_id": self.provider_message_id or None,
            "fallback_of": str(self.fallback_of_id) if self.fallback_of_id else None,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def notification_view(notification: Notification) -> NotificationView:
    return NotificationView(
        id=notification.id,
        channel=notification.channel,
        template=notification.template,
        language=notification.language,
        recipient=notification.recipient,
        status=notification.status,
        attempts=notification.attempts,
        last_error=notification.last_error,
        dedupe_key=notification.dedupe_key,
        provider_message_id=notification.provider_message_id,
        fallback_of_id=notification.fallback_of_id,
        created_at=notification.created_at,
        updated_at=notification.updated_at,
    )


def get_notification(notification_id: UUID) -> Notification | None:
    return Notification.objects.filter(pk=notification_id).first()


def list_notifications(
    *, page: PageRequest, status: str | None = None, recipient: str | None = None
) -> Page[Notification]:
    query = Notification.objects.all()
    if status is not None:
        query = query.filter(status=status)
    if recipient is not None:
        query = query.filter(recipient=recipient)
    return NOTIFICATION_ORDER.page(query, page)


def find_reported(reference: str, dedupe_key: str) -> Notification | None:
    """The notification a provider reports on: by its id for the message, or by the key we
    sent with it (a report may arrive before the worker recorded the provider's id)."""
    if not reference and not dedupe_key:
        return None
    match = Q(pk__in=[])
    if reference:
        match |= Q(provider_message_id=reference)
    if dedupe_key:
        match |= Q(dedupe_key=dedupe_key)
    return Notification.objects.filter(match).order_by("created_at").first()


def by_dedupe_key(dedupe_key: str) -> Notification | None:
    return Notification.objects.filter(dedupe_key=dedupe_key).first()
