"""Reads of media assets, and their views (the wire body, the audited snapshot)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from quartermaster.media.models import MediaAsset, Status

ENTITY = "media"


def get_media(media_id: UUID) -> MediaAsset | None:
    return MediaAsset.objects.filter(pk=media_id).first()


def media_view(asset: MediaAsset) -> dict[str, Any]:
    return {
        "id": str(asset.id),
        "status": asset.status,
        "content_type": asset.content_type,
        "size": asset.size,
        "sha256": asset.sha256,
        "width": asset.width,
        "height": asset.height,
        "uploaded_by": str(asset.uploaded_by_id),
        "device": asset.device,
        "expires_at": asset.expires_at.isoformat().replace("+00:00", "Z"),
        "confirmed_at": (
            asset.confirmed_at.isoformat().replace("+00:00", "Z") if asset.confirmed_at else None
        ),
    }


def media_by_ids(ids: Iterable[UUID]) -> dict[UUID, MediaAsset]:
    wanted = set(ids)
    if not wanted:
        return {}
    return {asset.id: asset for asset in MediaAsset.objects.filter(pk__in=wanted)}


def ready_media(ids: Iterable[UUID]) -> dict[UUID, MediaAsset]:
    """The confirmed assets among `ids` (what may be attached to an answer)."""
    return {k: v for k, v in media_by_ids(ids).items() if v.status == Status.READY}


def expired_uploads(now: datetime, *, limit: int) -> list[UUID]:
    """Pending assets whose upload target expired: garbage once collected."""
    rows = (
        MediaAsset.objects.filter(status=Status.PENDING, expires_at__lt=now)
        .order_by("expires_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    return list(rows)


def collected_keys(ids: Iterable[UUID]) -> list[str]:
    """The storage keys of assets whose bytes must go."""
    keys: list[str] = []
    for asset_id in ids:
        keys.extend((f"media/{asset_id}", f"media/{asset_id}.thumb.jpg"))
    return keys


def leftover_expired(since: datetime, *, limit: int = 200) -> list[UUID]:
    """Assets collected since `since` (a crash may have left their bytes): deleted again,
    harmlessly."""
    rows = (
        MediaAsset.objects.filter(status=Status.EXPIRED, collected_at__gte=since)
        .order_by("-collected_at")
        .values_list("id", flat=True)[:limit]
    )
    return list(rows)
