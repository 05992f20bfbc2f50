"""Back office for the market: read-only (every change goes through a command)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.market.models import Farmer, Flower, MarketSettings, RatePosting


@admin.register(Flower)
class FlowerAdmin(ReadOnlyAdmin):
    read_action = "market.flower.read"
    list_display = ("code", "name", "name_ta", "unit")
    search_fields = ("code", "name", "name_ta")
    ordering = ("code",)


@admin.register(Farmer)
class FarmerAdmin(ReadOnlyAdmin):
    read_action = "market.farmer.read"
    list_display = ("number", "name", "name_ta", "phone", "village", "version")
    search_fields = ("number", "name", "name_ta", "phone")
    ordering = ("number",)


@admin.register(MarketSettings)
class MarketSettingsAdmin(ReadOnlyAdmin):
    read_action = "market.settings.read"
    list_display = ("version", "timezone", "commission_bp", "created_by", "created_at")
    ordering = ("-version",)


@admin.register(RatePosting)
class RatePostingAdmin(ReadOnlyAdmin):
    read_action = "market.rate.read"
    list_display = ("number", "flower", "date", "slot", "rate_minor", "posted_by")
    ordering = ("-number",)
