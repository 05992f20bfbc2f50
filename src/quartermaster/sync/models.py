"""Sync state kept per device: who owns its op stream, which device_seq values it delivered, and
the permanent ids behind its client temp ids (kept forever: a device may refer to one days later).

Two models describe a device, split by owner: identity owns the device (`identity.Device`:
registered at login, last seen, revoked), sync owns the state of its op stream
(`DeviceSyncState`: bound to the first user who synced from it, delivered device_seq ranges,
temp ids).

Op results themselves live in core's idempotency table (scope "op", never expired)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class DeviceSyncState(models.Model):
    """The sync stream of one device id, bound to the first user who synced from it (op ids,
    temp ids and sequence numbers are that user's; another user gets 403 for this device id).
    The device itself (login, revocation) is `identity.Device`."""

    device_id = models.CharField(max_length=200, primary_key=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Delivered device_seq values as sorted, disjoint [first, last] ranges: one range per gap + 1.
    seen_seq_ranges = models.JSONField(default=list)
    last_seen = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.device_id


class TempId(models.Model):
    """client_temp_id → permanent id; `permanent_id` is null when the creating op was rejected for
    good (ops naming it then fail 424 naming `op_id`) until another op creates it."""

    device = models.ForeignKey(DeviceSyncState, on_delete=models.PROTECT, related_name="temp_ids")
    temp_id = models.CharField(max_length=100)
    op_id = models.CharField(max_length=255)
    permanent_id = models.CharField(max_length=100, null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "temp_id"], name="temp_id_unique_per_device")
        ]
        indexes = [models.Index(fields=["device", "op_id"])]

    def __str__(self) -> str:
        return f"{self.device_id}:{self.temp_id} → {self.permanent_id}"
