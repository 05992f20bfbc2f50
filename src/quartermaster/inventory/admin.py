"""Back office for inventory: locations and items, read-only here.

Their commands (item.create/adjust/delete, and the location and movement commands inventory is
growing) are the way to change them; until a form here executes one, the admin only shows them.
Movements, like every ledger, will stay read-only.
"""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.inventory.models import Item, Location


@admin.register(Location)
class LocationAdmin(ReadOnlyAdmin):
    read_action = "location.read"
    list_display = ("name", "kind", "is_default", "created_at")
    list_filter = ("kind",)
    search_fields = ("name",)
    ordering = ("name",)


@admin.register(Item)
class ItemAdmin(ReadOnlyAdmin):
    read_action = "item.read"
    list_display = ("sku", "name", "unit", "price_minor", "tracking", "version", "deleted_at")
    list_filter = ("tracking",)
    search_fields = ("sku", "name")
    ordering = ("name",)
