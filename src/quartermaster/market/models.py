"""Flower types, market settings (each change a new version row, never rewritten), farmers,
rate postings (every posting kept; the one in force on a date is computed, never stored), daily
entries with the quantity of each of their versions, advances and settlements."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from quartermaster.market.invariants import BASIS_POINTS, EntryStatus, FlowerUnit, Language


class Flower(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    code = models.CharField(max_length=30, unique=True)
    name = models.CharField(max_length=200)
    name_ta = models.CharField(max_length=200)
    unit = models.CharField(max_length=10, choices=FlowerUnit.choices)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)


class MarketSettings(models.Model):
    """One row per version of the market's settings; the highest version is in force."""

    version = models.BigIntegerField(primary_key=True)
    timezone = models.CharField(max_length=64)
    # [{"code", "starts", "ends"}], ordered and not overlapping (invariants.clean_slots).
    slots = models.JSONField()
    commission_bp = models.PositiveIntegerField()
    # [{"code", "name", "name_ta", "kind", "value"}]; value in basis points or paise.
    fees = models.JSONField(default=list)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_bp__lte=BASIS_POINTS), name="market_settings_commission_bp"
            ),
        ]


class Farmer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    name_ta = models.CharField(max_length=200, blank=True, default="")
    phone = models.CharField(max_length=16)
    whatsapp = models.CharField(max_length=16, blank=True, default="")
    language = models.CharField(max_length=2, choices=Language.choices)
    village = models.CharField(max_length=200, blank=True, default="")
    # None: the market's commission applies.
    commission_bp = models.PositiveIntegerField(null=True, blank=True)
    # The party user who signs in as this farmer (approves settlements, reads statements).
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="farmer",
    )
    version = models.BigIntegerField(default=1)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(commission_bp__isnull=True) | Q(commission_bp__lte=BASIS_POINTS),
                name="market_farmer_commission_bp",
            ),
        ]


class RatePosting(models.Model):
    """A rate per unit of a flower for a slot, from `date` on. Append-only: a new rate is a new
    posting; `number` (gap-free, in posting order) breaks ties between postings of one date."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    flower = models.ForeignKey(Flower, on_delete=models.PROTECT, related_name="rates")
    date = models.DateField()
    slot = models.CharField(max_length=30)
    rate_minor = models.BigIntegerField()
    posted_by = models.CharField(max_length=150)
    posted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["flower", "slot", "date"], name="market_rate_lookup")]
        constraints = [
            models.CheckConstraint(condition=Q(rate_minor__gt=0), name="market_rate_positive"),
        ]


class SettlementStatus(models.TextChoices):
    DRAFT = "draft"
    APPROVED = "approved"
    PAID = "paid"
    CANCELLED = "cancelled"


class Settlement(models.Model):
    """A farmer's settlement for a period: its figures are fixed when it is generated (the
    entries are locked to it), so approving or paying never recomputes them."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    farmer = models.ForeignKey(Farmer, on_delete=models.PROTECT, related_name="settlements")
    period_from = models.DateField()
    period_to = models.DateField()
    status = models.CharField(max_length=10, choices=SettlementStatus.choices)
    entry_count = models.PositiveIntegerField()
    gross_minor = models.BigIntegerField()
    commission_bp = models.PositiveIntegerField()
    commission_minor = models.BigIntegerField()
    # [{"code", "amount_minor"}], in the order of the market's fees when generated.
    fees = models.JSONField(default=list)
    advance_recovered_minor = models.BigIntegerField()
    net_minor = models.BigIntegerField()
    # Journal entries: recognised when generated, reversed when cancelled, the payment.
    posted_entry_id = models.UUIDField(null=True, blank=True)
    reversal_entry_id = models.UUIDField(null=True, blank=True)
    payment_entry_id = models.UUIDField(null=True, blank=True)
    payment_method = models.CharField(max_length=10, blank=True, default="")
    cancel_reason = models.CharField(max_length=500, blank=True, default="")
    version = models.BigIntegerField(default=1)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.CharField(max_length=150, blank=True, default="")
    approved_at = models.DateTimeField(null=True, blank=True)
    paid_by = models.CharField(max_length=150, blank=True, default="")
    paid_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.CharField(max_length=150, blank=True, default="")
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(period_from__lte=models.F("period_to")),
                name="market_settlement_period",
            ),
            models.CheckConstraint(
                condition=Q(gross_minor__gte=0, advance_recovered_minor__gte=0),
                name="market_settlement_amounts",
            ),
        ]


class Entry(models.Model):
    """One delivery of a farmer's flowers. `qty_base` is in the flower's base unit (grams for
    kg, else a count); `rate_minor` and `gross_minor` are None while the slot has no rate."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # The place of `number` (ENT-000042 is 42) in the series: lists order by it.
    seq = models.BigIntegerField(unique=True)
    number = models.CharField(max_length=20, unique=True)
    farmer = models.ForeignKey(Farmer, on_delete=models.PROTECT, related_name="entries")
    flower = models.ForeignKey(Flower, on_delete=models.PROTECT, related_name="entries")
    qty_base = models.BigIntegerField()
    arrived_at = models.DateTimeField()
    market_day = models.DateField()
    slot = models.CharField(max_length=30)
    rate_minor = models.BigIntegerField(null=True, blank=True)
    gross_minor = models.BigIntegerField(null=True, blank=True)
    rate_posting = models.ForeignKey(
        RatePosting, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    status = models.CharField(max_length=15, choices=EntryStatus.choices)
    settlement = models.ForeignKey(
        Settlement, null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    void_reason = models.CharField(max_length=500, blank=True, default="")
    version = models.BigIntegerField(default=1)
    created_by = models.CharField(max_length=150)
    created_by_id = models.UUIDField(null=True, blank=True)
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["farmer", "status", "market_day"], name="market_entry_farmer"),
            models.Index(fields=["market_day", "slot"], name="market_entry_day"),
            models.Index(
                fields=["flower", "slot", "market_day"],
                name="market_entry_awaiting",
                condition=Q(status="awaiting_rate"),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(qty_base__gt=0), name="market_entry_qty_positive"),
            models.CheckConstraint(
                condition=Q(rate_minor__isnull=True, gross_minor__isnull=True)
                | Q(rate_minor__gt=0, gross_minor__gte=0),
                name="market_entry_rate_and_gross",
            ),
            models.CheckConstraint(
                condition=Q(status="settled", settlement__isnull=False)
                | (~Q(status="settled") & Q(settlement__isnull=True)),
                name="market_entry_settled_has_settlement",
            ),
        ]


class EntryVersion(models.Model):
    """What an entry held at each of its versions (append-only). An offline quantity edit
    names the version it was made on; the quantity then is what its delta is taken from."""

    entry = models.ForeignKey(Entry, on_delete=models.PROTECT, related_name="versions")
    version = models.BigIntegerField()
    qty_base = models.BigIntegerField()
    flower_id = models.UUIDField()
    farmer_id = models.UUIDField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["entry", "version"], name="market_entry_version"),
        ]


class Advance(models.Model):
    """Cash given to a farmer ahead of their flowers; recovered by settlements. What is still
    outstanding is the balance of the farmer's advances account in the journal."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    farmer = models.ForeignKey(Farmer, on_delete=models.PROTECT, related_name="advances")
    amount_minor = models.BigIntegerField()
    method = models.CharField(max_length=10)
    note = models.CharField(max_length=500, blank=True, default="")
    journal_entry_id = models.UUIDField()
    created_by = models.CharField(max_length=150)
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="market_advance_positive"),
        ]
