"""Reads of media assets, and their views (the wire body, the audited snapshot)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from quartermaster.core.types import View
from quartermaster.media.models import MediaAsset, Status

ENTITY = "media"


def get_media(media_id: UUID) -> MediaAsset | None:
    return MediaAsset.objects.filter(pk=media_id).first()


def _utc(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class MediaView(View):
    """A media asset: what was declared, what confirm found, who uploaded it."""

    id: UUID
    status: str
    content_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    uploaded_by: UUID
    device: str
    expires_at: datetime
    confirmed_at: datetime | None

    def to_wire(self) -> dict[str, Any]:
        """The command's answer (the adapters show a part of it, with signed URLs)."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "status": self.status,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "width": self.width,
            "height": self.height,
            "uploaded_by": str(self.uploaded_by),
            "device": self.device,
            "expires_at": _utc(self.expires_at),
            "confirmed_at": _utc(self.confirmed_at) if self.confirmed_at else None,
        }


def media_view(asset: MediaAsset) -> MediaView:
    return MediaView(
        id=asset.id,
        status=asset.status,
        content_type=asset.content_type,
        size=asset.size,
        sha256=asset.sha256,
        width=asset.width,
        height=asset.height,
        uploaded_by=asset.uploaded_by_id,
        device=asset.device,
        expires_at=asset.expires_at,
        confirmed_at=asset.confirmed_at,
    )


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
