"""Back office for notifications: read-only (a retry goes through the API's command)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    read_action = "notification.read"
    list_display = ("created_at", "channel", "template", "language", "recipient", "status")
    list_filter = ("status", "channel")
    search_fields = ("recipient", "dedupe_key", "provider_message_id")
    ordering = ("-created_at",)
