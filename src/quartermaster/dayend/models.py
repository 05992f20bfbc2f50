"""Day-ends: one per own location (a truck) and local day, its count line by line, and what
closing it recorded (the loss and found movements, the journal entry of the money short).

Written only by the command handlers in services.py. A closed day-end is never changed again:
its day's records are locked, and what arrives later for that day is flagged for review."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from quartermaster.dayend.invariants import DayEndStatus


class DayEnd(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    location = models.ForeignKey("inventory.Location", on_delete=models.PROTECT, related_name="+")
    day = models.DateField()
    status = models.CharField(
        max_length=10, choices=DayEndStatus.choices, default=DayEndStatus.OPEN
    )
    # The users whose payments of the day make the money expected (the truck's drivers).
    drivers = models.JSONField(default=list)
    # When the books were read: stock expected is the ledger up to here.
    counted_at = models.DateTimeField()
    expected_cash_minor = models.BigIntegerField()
    expected_cheques_minor = models.BigIntegerField()
    cash_handed_in_minor = models.BigIntegerField()
    cheques_handed_in_minor = models.BigIntegerField()
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField()
    closed_by = models.CharField(max_length=150, blank=True, default="")
    closed_at = models.DateTimeField(null=True, blank=True)
    loss_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    found_movement = models.ForeignKey(
        "inventory.Movement", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    journal_entry = models.UUIDField(null=True, blank=True)
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            # One reconciliation per truck and day: a second count is refused, not merged.
            models.UniqueConstraint(fields=["location", "day"], name="dayend_once_per_day"),
            models.CheckConstraint(
                condition=Q(status=DayEndStatus.OPEN, closed_at__isnull=True)
                | Q(status=DayEndStatus.CLOSED, closed_at__isnull=False),
                name="dayend_closed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(cash_handed_in_minor__gte=0)
                & Q(cheques_handed_in_minor__gte=0)
                & Q(expected_cash_minor__gte=0)
                & Q(expected_cheques_minor__gte=0),
                name="dayend_money_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["day", "id"], name="dayend_order")]


class DayEndLine(models.Model):
    id = models.BigAutoField(primary_key=True)
    day_end = models.ForeignKey(DayEnd, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    item = models.ForeignKey("inventory.Item", on_delete=models.PROTECT, related_name="+")
    # "" when the item's stock has no condition.
    condition = models.CharField(max_length=10, blank=True, default="")
    expected_qty = models.BigIntegerField()
    counted_qty = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True, default="")
    # Serialized items: the units missing from the count (written off on approval).
    missing_serials = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["day_end", "line_no"], name="dayend_line_once"),
            models.CheckConstraint(
                condition=Q(expected_qty__gte=0) & Q(counted_qty__gte=0),
                name="dayend_line_not_negative",
            ),
        ]
