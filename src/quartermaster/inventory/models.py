"""Items, the locations stock sits at, stock per (item, location), the movement ledger and the
serialized assets (cylinders) that move by serial number."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from quartermaster.inventory.invariants import (
    AssetState,
    Condition,
    LocationKind,
    MovementKind,
    Tracking,
)


class Location(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=LocationKind.choices)
    # The location whose stock the simple items API reads and adjusts (`item.qty`).
    is_default = models.BooleanField(default=False)
    # Staff may receive stock from suppliers here; elsewhere a receipt is a manager's action.
    receives = models.BooleanField(default=False)
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
    # core.names.name_key(name): live items' names are unique in any case or width.
    name_key = models.CharField(max_length=800)
    unit = models.CharField(max_length=20, default="pcs")
    price_minor = models.BigIntegerField(default=0)
    tracking = models.CharField(max_length=10, choices=Tracking.choices, default=Tracking.BULK)
    # Sales tax in basis points (1800 = 18 %), applied per invoice line.
    tax_rate_bp = models.PositiveIntegerField(default=0)
    # Refundable deposit per serialized unit issued to a customer (cylinders), minor units.
    deposit_minor = models.BigIntegerField(default=0)
    # A cylinder-like item: its stock is held per condition (full, empty), set once at create.
    returnable = models.BooleanField(default=False)
    version = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["name"], condition=Q(deleted_at__isnull=True), name="item_name_unique_live"
            ),
            models.UniqueConstraint(
                fields=["name_key"],
                condition=Q(deleted_at__isnull=True),
                name="item_name_key_unique_live",
            ),
            models.CheckConstraint(condition=Q(price_minor__gte=0), name="item_price_not_negative"),
            models.CheckConstraint(
                condition=Q(deposit_minor__gte=0), name="item_deposit_not_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class Stock(models.Model):
    """A projection of the movement ledger, changed only in the transaction that moves stock."""

    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="stock")
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="stock")
    # "" for an item that is not returnable; full or empty for one that is.
    condition = models.CharField(
        max_length=10, choices=Condition.choices, default=Condition.NONE, blank=True
    )
    qty = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["item", "location", "condition"], name="stock_item_location_condition"
            ),
            models.CheckConstraint(condition=Q(qty__gte=0), name="stock_qty_not_negative"),
            models.CheckConstraint(
                condition=Q(condition__in=["", "full", "empty"]), name="stock_condition_known"
            ),
        ]


class Movement(models.Model):
    """One entry of the stock ledger: append-only, never edited. Corrections are new movements
    (`reverses` points at the movement a reversal undoes)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=20, choices=MovementKind.choices)
    reason = models.CharField(max_length=500, blank=True, default="")
    # What caused it outside inventory, e.g. "sale:<uuid>" (sales sits above inventory).
    reference = models.CharField(max_length=100, blank=True, default="")
    reverses = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversals"
    )
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    actor = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["reference"])]


class MovementLine(models.Model):
    movement = models.ForeignKey(Movement, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    from_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    to_location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    qty = models.BigIntegerField()
    serials = models.JSONField(default=list)
    # The condition the units leave in and the one they arrive in (an empty taken back from a
    # customer left as the full it was issued as); "" for an item that is not returnable.
    condition = models.CharField(max_length=10, blank=True, default="")
    to_condition = models.CharField(max_length=10, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["movement", "line_no"], name="movement_line_unique"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="movement_line_qty_positive"),
            models.CheckConstraint(
                condition=~Q(from_location=models.F("to_location")),
                name="movement_line_moves_somewhere",
            ),
        ]


class Asset(models.Model):
    """One serialized unit (a cylinder): where it is, full or empty, and who holds it.

    Exactly one row per (item, serial), so a serial is in one place at a time; its location only
    changes inside the movement that moves it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="assets")
    serial = models.CharField(max_length=100)
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="assets")
    state = models.CharField(max_length=10, choices=AssetState.choices, default=AssetState.FULL)
    # The customer holding it (a sales.Customer id; no FK: sales sits above inventory).
    customer_id = models.UUIDField(null=True, blank=True)
    # Deposit charged when it was issued to `customer_id`, refunded when it comes back.
    deposit_held_minor = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "serial"], name="asset_item_serial_unique"),
            models.CheckConstraint(
                condition=Q(deposit_held_minor__gte=0), name="asset_deposit_not_negative"
            ),
        ]
