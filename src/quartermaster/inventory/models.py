"""Items, the locations stock sits at, and stock per (item, location)."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from quartermaster.inventory.invariants import LocationKind, Tracking


class Location(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=LocationKind.choices)
    # The location whose stock the simple items API reads and adjusts (`item.qty`).
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_location"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class Item(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    unit = models.CharField(max_length=20, default="pcs")
    price_minor = models.BigIntegerField(default=0)
    tracking = models.CharField(max_length=10, choices=Tracking.choices, default=Tracking.BULK)
    version = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="item_name_unique_live"
            ),
            models.CheckConstraint(condition=Q(price_minor__gte=0), name="item_price_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Stock(models.Model):
    """A projection of the movement ledger, changed only in the transaction that moves stock."""

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="stock")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock")
    qty = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "location"], name="stock_item_location_unique"),
            models.CheckConstraint(condition=Q(qty__gte=0), name="stock_qty_not_negative"),
        ]
