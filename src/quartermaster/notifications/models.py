"""Notifications: one row per message to one person on one channel, with its delivery status.

Written only by the command handlers in services.py; the outbox (core) queues their delivery.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from quartermaster.notifications.invariants import Channel, Status


class Notification(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    template = models.CharField(max_length=50)
    language = models.CharField(max_length=2)
    # A phone number in E.164 digits for whatsapp and sms; a name for console.
    recipient = models.CharField(max_length=100)
    # The template's parameters by name (strings): what the message says.
    params = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True, default="")
    # Whoever produced it names it: producing it again is a no-op; sent to providers too.
    dedupe_key = models.CharField(max_length=200, unique=True)
    provider_message_id = models.CharField(max_length=200, blank=True, default="")
    # The number to try by SMS if WhatsApp fails for good ("": no fallback).
    fallback_recipient = models.CharField(max_length=100, blank=True, default="")
    fallback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="fallbacks"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in Status]),
                name="notification_status",
            ),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="notification_order"),
            models.Index(fields=["provider_message_id"], name="notification_provider_id"),
            models.Index(fields=["recipient", "created_at"], name="notification_recipient"),
        ]

    def __str__(self) -> str:
        return f"{self.template} to {self.recipient} by {self.channel} ({self.status})"
