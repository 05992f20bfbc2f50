"""Media assets: a photo or signature uploaded straight to storage by a device, registered once
the server has checked its bytes. The row is kept after its bytes are collected (status
`expired`): the audit chain names it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class Status(models.TextChoices):
    # Asked for; the bytes may or may not be in storage yet.
    PENDING = "pending"
    # Confirmed: the bytes were checked; only these may be attached to an answer.
    READY = "ready"
    # Never confirmed before its upload target expired: its bytes were deleted.
    EXPIRED = "expired"


class MediaAsset(models.Model):
    # The device may mint the id (so a retried upload names the same asset, never a second one).
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    content_type = models.CharField(max_length=40)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="media"
    )
    device = models.CharField(max_length=200, blank=True, default="")
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The upload target stops working then; a pending asset past it is garbage.
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    collected_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "expires_at"], name="media_by_status_expiry")]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=Status.values), name="media_status_known"
            ),
            models.CheckConstraint(condition=Q(size__gte=1), name="media_size_positive"),
        ]

    @property
    def key(self) -> str:
        """Where the original bytes live in storage."""
        return f"media/{self.id}"

    @property
    def thumbnail_key(self) -> str:
        return f"media/{self.id}.thumb.jpg"
