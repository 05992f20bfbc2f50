"""Changes of the database primary, one row per epoch (the monitor's event id), written by the
one command that records them (`cluster.primary_changed`), so the audit chain holds each once."""

from __future__ import annotations

from django.db import models


class PrimaryChange(models.Model):
    # Unique: whichever process records a change first, the others find it recorded.
    epoch = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    old_node = models.CharField(max_length=300, blank=True, default="")
    new_node = models.CharField(max_length=300)
    reason = models.CharField(max_length=20)
    description = models.CharField(max_length=1000, blank=True, default="")
    recorded_at = models.DateTimeField()
