"""Back office for day-ends: read-only (day-ends change only through their commands)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.dayend.models import DayEnd


@admin.register(DayEnd)
class DayEndAdmin(ReadOnlyAdmin):
    read_action = "day_end.read"
    list_display = ("number", "location", "day", "status", "created_by", "closed_by")
    list_filter = ("status",)
    search_fields = ("number",)
    ordering = ("-day",)
