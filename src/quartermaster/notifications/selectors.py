"""Reads of notifications: the back office's list (newest first) and the lookups of the worker
and of providers' status reports. Notifications belong to no location: admins and managers
read them all."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import Q

from quartermaster.core.pagination import Keyset, Page, PageRequest, time_key, uuid_key
from quartermaster.notifications.models import Notification

NOTIFICATION_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")), descending=True)


def notification_view(notification: Notification) -> dict[str, Any]:
    return {
        "id": str(notification.id),
        "channel": notification.channel,
        "template": notification.template,
        "language": notification.language,
        "recipient": notification.recipient,
        "status": notification.status,
        "attempts": notification.attempts,
        "last_error": notification.last_error or None,
        "dedupe_key": notification.dedupe_key,
        "provider_message_id": notification.provider_message_id or None,
        "fallback_of": str(notification.fallback_of_id) if notification.fallback_of_id else None,
        "created_at": notification.created_at.isoformat(),
        "updated_at": notification.updated_at.isoformat(),
    }


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
