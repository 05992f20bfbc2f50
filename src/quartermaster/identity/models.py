"""Users with one role each, and the refresh-token families that make up their sessions."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin"
    MANAGER = "manager"
    STAFF = "staff"
    AUDITOR = "auditor"
    PARTY = "party"


class User(AbstractUser):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.STAFF)
    # Referenced by label, not imported: inventory sits above identity in the layering.
    locations = models.ManyToManyField(
        "inventory.Location", blank=True, related_name="assigned_users"
    )


class RefreshToken(models.Model):
    """One issued refresh token. Rotation spends it; presenting a spent one revokes its family."""

    jti = models.UUIDField(primary_key=True)
    family = models.UUIDField(db_index=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="refresh_tokens")
    device_id = models.CharField(max_length=200, blank=True, default="")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    spent_at = models.DateTimeField(null=True)
    revoked_at = models.DateTimeField(null=True)


class Device(models.Model):
    """A phone, till or laptop, named by the id it sends (`device_id`), and owned by the user who
    first logged in on it or first synced from it: nobody else logs in or syncs as it.

    Ids are one device case-insensitively (`key`): `Truck-07` and `truck-07` are one device, kept
    under the spelling first seen. Revoking a device stops every access and refresh token that
    carries its id, at once: the bearer check refuses a revoked device on each request. A revoked
    device stays revoked, and no login or sync in any spelling of its id is accepted again.
    """

    device_id = models.CharField(max_length=200, primary_key=True)
    # invariants.device_key(device_id): NFKC, case-folded.
    key = models.CharField(max_length=800, unique=True)
    user = models.ForeignKey(User, on_delete=models.PROTECT, related_name="devices")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.device_id
