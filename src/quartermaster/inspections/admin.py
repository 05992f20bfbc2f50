"""Back office for inspections: read-only (every change goes through a command)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.inspections.models import Inspection, InspectionVersion, TemplateVersion


@admin.register(TemplateVersion)
class TemplateVersionAdmin(ReadOnlyAdmin):
    read_action = "inspection.template.read"
    list_display = ("template", "version", "name", "published_at", "published_by")
    search_fields = ("name",)
    ordering = ("template", "-version")


@admin.register(Inspection)
class InspectionAdmin(ReadOnlyAdmin):
    read_action = "inspection.read"
    list_display = ("id", "template", "template_version", "location", "assignee", "status")
    list_filter = ("status",)
    ordering = ("-created_at",)


@admin.register(InspectionVersion)
class InspectionVersionAdmin(ReadOnlyAdmin):
    read_action = "inspection.read"
    list_display = ("inspection", "version", "action", "status", "actor", "device", "at")
    ordering = ("inspection", "version")
