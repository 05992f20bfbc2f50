"""Back office for media: read-only (every change goes through a command)."""

from __future__ import annotations

from django.contrib import admin

from quartermaster.core.admin import ReadOnlyAdmin
from quartermaster.media.models import MediaAsset


@admin.register(MediaAsset)
class MediaAssetAdmin(ReadOnlyAdmin):
    read_action = "media.read"
    list_display = ("id", "status", "content_type", "size", "uploaded_by", "device", "created_at")
    list_filter = ("status", "content_type")
    ordering = ("-created_at",)
