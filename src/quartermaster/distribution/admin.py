"""Back office for loads: read-only (loads change only through their commands)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.distribution.models import Load


@admin.register(Load)
class LoadAdmin(ReadOnlyAdmin):
    read_action = "load.read"
    list_display = ("number", "status", "approval", "from_location", "to_location", "dispatched_at")
    list_filter = ("status", "approval")
    search_fields = ("number",)
    ordering = ("-dispatched_at",)
