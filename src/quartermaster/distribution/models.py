"""Loads: stock on its way between two own locations, dispatched at once and received later."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from quartermaster.distribution.invariants import Approval, LoadStatus, RefillStatus


class Load(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    from_location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="loads_out"
    )
    to_location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="loads_in"
    )
    status = models.CharField(
        max_length=20, choices=LoadStatus.choices, default=LoadStatus.IN_TRANSIT
    )
    approval = models.CharField(
        max_length=20, choices=Approval.choices, default=Approval.NOT_NEEDED
    )
    dispatched_at = models.DateTimeField()
    dispatched_by = models.CharField(max_length=150)
    dispatch_movement = models.ForeignKey(
        "inventory.Movement", on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.CharField(max_length=150, blank=True, default="")
    receipt_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    loss_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The value of what went missing at list price, in minor units (0 until received).
    shortage_minor = models.BigIntegerField(default=0)
    approved_by = models.CharField(max_length=150, blank=True, default="")
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["status", "dispatched_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(from_location=models.F("to_location")), name="load_two_places"
            ),
        ]


class LoadLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    load = models.ForeignKey(Load, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    item = models.ForeignKey("inventory.Item", on_delete=models.PROTECT, related_name="+")
    qty = models.BigIntegerField()
    serials = models.JSONField(default=list)
    # A returnable item's condition as loaded (full unless said otherwise); "" for others.
    condition = models.CharField(max_length=10, blank=True, default="")
    received_qty = models.BigIntegerField(null=True, blank=True)
    received_serials = models.JSONField(default=list)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["load", "line_no"], name="load_line_once"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="load_line_qty_positive"),
            models.CheckConstraint(
                condition=Q(received_qty__isnull=True)
                | (Q(received_qty__gte=0) & Q(received_qty__lte=models.F("qty"))),
                name="load_line_received_within_dispatched",
            ),
        ]


class Refill(models.Model):
    """Empties sent from a depot to the filling plant, and the fulls received back against them
    (the supplier exchange). Sent: the empties sit at the plant (a counted location) until
    received; what does not come back is a loss with its reason."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    # Where the empties leave from and the fulls come back to.
    location = models.ForeignKey(
        "inventory.Location", on_delete=models.PROTECT, related_name="refills"
    )
    status = models.CharField(
        max_length=20, choices=RefillStatus.choices, default=RefillStatus.SENT
    )
    sent_at = models.DateTimeField()
    sent_by = models.CharField(max_length=150)
    send_movement = models.ForeignKey(
        "inventory.Movement", on_delete=models.PROTECT, related_name="+"
    )
    received_at = models.DateTimeField(null=True, blank=True)
    received_by = models.CharField(max_length=150, blank=True, default="")
    receipt_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    loss_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [models.Index(fields=["status", "sent_at"])]


class RefillLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    refill = models.ForeignKey(Refill, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    item = models.ForeignKey("inventory.Item", on_delete=models.PROTECT, related_name="+")
    qty = models.BigIntegerField()
    serials = models.JSONField(default=list)
    received_qty = models.BigIntegerField(null=True, blank=True)
    received_serials = models.JSONField(default=list)
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["refill", "line_no"], name="refill_line_once"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="refill_line_qty_positive"),
            models.CheckConstraint(
                condition=Q(received_qty__isnull=True)
                | (Q(received_qty__gte=0) & Q(received_qty__lte=models.F("qty"))),
                name="refill_line_received_within_sent",
            ),
        ]
