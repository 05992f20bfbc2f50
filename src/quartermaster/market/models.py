"""Flower types, market settings (each change a new version row, never rewritten), farmers and
rate postings (every posting kept; the one in force on a date is computed, never stored)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from quartermaster.market.invariants import BASIS_POINTS, FlowerUnit, Language


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
