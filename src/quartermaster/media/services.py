"""Command handlers for media, and the one step that runs outside a transaction: reading an
upload's bytes back from storage (`inspect_upload`), which confirm then registers.

    device ── POST /media/uploads {content_type, size, sha256} ──▶ server: a pending asset and a
           ◀── a short-lived signed upload target ───────────────  signed target (no bytes here)
    device ── bytes ──▶ storage (this server's disk, or an S3 bucket) — straight, resumable
    device ── POST /media/{id}/confirm ──▶ server reads the bytes back: presence, size,
           SHA-256, the real type from the bytes, dimensions (Pillow), a thumbnail; then the
           asset is `ready`, and only then may an answer name it.

Reading the bytes happens before the command's transaction (a 2 MB read from a bucket must not
hold the writer's lock); the command re-checks the row under its lock and records the facts.
A device may mint the asset's id itself, so a retry after a crash names the same asset.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from io import BytesIO
from typing import Any, ClassVar
from uuid import UUID

from django.conf import settings
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from quartermaster.core import policy
from quartermaster.core.commands import Command, execute
from quartermaster.core.errors import NotFound
from quartermaster.core.types import SYSTEM_ACTOR, Change, Context, Outcome, View
from quartermaster.identity.models import User
from quartermaster.media import invariants
from quartermaster.media.invariants import Declared, Inspected
from quartermaster.media.models import MediaAsset, Status
from quartermaster.media.selectors import (
    ENTITY,
    collected_keys,
    expired_uploads,
    leftover_expired,
    media_view,
)
from quartermaster.media.storage import CHUNK_BYTES, MediaStorage, media_storage

# Photos are decoded for their thumbnail only; Pillow's own bomb guard is set from ours.
Image.MAX_IMAGE_PIXELS = None


class RequestUpload(Command):
    """A pending asset and the time its upload target expires. Asked again for an asset of the
    same device user with the same bytes (a retry), it answers the same asset, unchanged."""

    name = "media.upload"
    syncable: ClassVar[bool] = False
    id: UUID | None = None
    content_type: str
    size: int
    sha256: str

    def validated(self) -> RequestUpload:
        declared = invariants.clean_declared(
            self.content_type, self.size, self.sha256, max_bytes=settings.MEDIA_MAX_BYTES
        )
        return self.model_copy(
            update={"content_type": declared.content_type, "sha256": declared.sha256}
        )

    def handle(self, ctx: Context) -> Outcome:
        if self.id is not None:
            wanted: UUID = self.id
            existing = MediaAsset.objects.select_for_update().filter(pk=wanted).first()
            if existing is not None:
                return self._again(ctx, existing)
        user = (
            None if ctx.actor.user_id is None else User.objects.filter(pk=ctx.actor.user_id).first()
        )
        if user is None:
            raise invariants.Invalid.field("id", "the system uploads no media")
        asset = MediaAsset.objects.create(
            **({"id": self.id} if self.id is not None else {}),
            content_type=self.content_type,
            size=self.size,
            sha256=self.sha256,
            uploaded_by=user,
            device=ctx.actor.device_id,
            expires_at=timezone.now() + timedelta(seconds=settings.MEDIA_UPLOAD_TTL_S),
        )
        view = media_view(asset)
        return Outcome(201, view, [Change(ENTITY, str(asset.id), None, view, publish=False)])

    def _again(self, ctx: Context, asset: MediaAsset) -> Outcome:
        same = asset.uploaded_by_id == ctx.actor.user_id and (
            asset.content_type,
            asset.size,
            asset.sha256,
        ) == (self.content_type, self.size, self.sha256)
        if not same:
            raise invariants.MediaExists("another upload has this id")
        if asset.status == Status.READY:
            raise invariants.MediaExists(
                "this upload is confirmed already", fields={"status": Status.READY}
            )
        if asset.status == Status.EXPIRED:
            raise invariants.UploadExpired("this upload expired; start a new one with a new id")
        before = media_view(asset)
        asset.expires_at = timezone.now() + timedelta(seconds=settings.MEDIA_UPLOAD_TTL_S)
        asset.save(update_fields=["expires_at"])
        view = media_view(asset)
        return Outcome(201, view, [Change(ENTITY, str(asset.id), before, view, publish=False)])


def declared_of(asset: MediaAsset) -> Declared:
    return Declared(content_type=asset.content_type, size=asset.size, sha256=asset.sha256)


def inspect_upload(asset: MediaAsset, storage: MediaStorage) -> Inspected:
    """Read the stored bytes back, streaming: presence, size, SHA-256, the real type, the
    dimensions; write the thumbnail. Raises the refusal confirm answers with."""
    stored = storage.size(asset.key)
    if stored is None:
        raise invariants.MediaMissing("no bytes were uploaded", fields={"content": "missing"})
    if stored != asset.size:
        raise (invariants.MediaMissing if stored < asset.size else invariants.MediaMismatch)(
            f"{stored} of {asset.size} bytes are in storage", fields={"size": str(stored)}
        )
    digest = hashlib.sha256()
    # Spooled: a copy Pillow can seek in, in memory only up to one chunk, on disk beyond it
    # (an S3 body reads forward only; a local file is read once this way too).
    with (
        tempfile.SpooledTemporaryFile(max_size=CHUNK_BYTES) as copy,
        closing(storage.open(asset.key)) as src,
    ):
        head = b""
        size = 0
        while chunk := src.read(CHUNK_BYTES):
            if len(head) < invariants.SNIFF_BYTES:
                head += chunk[: invariants.SNIFF_BYTES]
            digest.update(chunk)
            size += len(chunk)
            copy.write(chunk)
        kind = invariants.sniff(head)
        copy.seek(0)
        width, height = _thumbnail(asset, copy, kind, storage)
    found = Inspected(
        size=size, sha256=digest.hexdigest(), content_type=kind, width=width, height=height
    )
    invariants.check_matches(declared_of(asset), found)
    return found


def _thumbnail(
    asset: MediaAsset, source: object, kind: str, storage: MediaStorage
) -> tuple[int, int]:
    try:
        with Image.open(source) as image:  # type: ignore[arg-type]
            if image.format != invariants.PILLOW_FORMATS[kind]:
                raise invariants.MediaTypeRefused(
                    "the bytes do not decode as their type", fields={"content": kind}
                )
            width, height = image.size
            invariants.check_pixels(width, height, max_pixels=settings.MEDIA_MAX_PIXELS)
            edge = settings.MEDIA_THUMBNAIL_PX
            # JPEG decodes straight at 1/2…1/8 scale: a 12-megapixel photo never fully in memory.
            image.draft("RGB", (edge * 2, edge * 2))
            image.thumbnail((edge, edge), reducing_gap=2.0)
            thumbnail = image.convert("RGB")
    # What Pillow's decoders raise for bytes that are not the image they claim to be (libheif's,
    # through pillow-heif, adds EOFError and RuntimeError): a refusal, never a 500.
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        RuntimeError,
    ) as error:
        raise invariants.MediaTypeRefused(
            f"the image does not decode: {type(error).__name__}", fields={"content": kind}
        ) from error
    out = BytesIO()
    thumbnail.save(out, "JPEG", quality=80, optimize=True)
    storage.save(asset.thumbnail_key, out.getvalue())
    return width, height


class ConfirmUpload(Command):
    """Register what `inspect_upload` found: the asset becomes `ready`. Confirming a ready asset
    again answers it unchanged (a device that died before hearing the answer asks again)."""

    name = "media.confirm"
    syncable: ClassVar[bool] = False
    id: UUID
    size: int
    sha256: str
    content_type: str
    width: int
    height: int

    def handle(self, ctx: Context) -> Outcome:
        asset = MediaAsset.objects.select_for_update().filter(pk=self.id).first()
        if asset is None:
            raise NotFound()
        policy.authorize(ctx.actor, self.name, owner_id=asset.uploaded_by_id)
        if asset.status == Status.READY:
            return Outcome(200, media_view(asset))
        if asset.status == Status.EXPIRED:
            raise invariants.UploadExpired("this upload expired before it was confirmed")
        invariants.check_matches(
            declared_of(asset),
            Inspected(self.size, self.sha256, self.content_type, self.width, self.height),
        )
        before = media_view(asset)
        asset.status = Status.READY
        asset.width, asset.height = self.width, self.height
        asset.confirmed_at = timezone.now()
        asset.save(update_fields=["status", "width", "height", "confirmed_at"])
        view = media_view(asset)
        return Outcome(200, view, [Change(ENTITY, str(asset.id), before, view, publish=False)])


@dataclass(frozen=True)
class CollectedUploads(View):
    """`media.collect`'s answer: the assets it marked expired (each sealed by its own change)."""

    ids: tuple[str, ...]

    def to_wire(self) -> dict[str, Any]:
        return {"collected": list(self.ids)}


class CollectUploads(Command):
    """Uploads never confirmed, past their target's expiry, become `expired` (the rows stay for
    the audit chain; their bytes are deleted after commit by the caller, `collect_garbage`)."""

    name = "media.collect"
    syncable: ClassVar[bool] = False
    ids: tuple[UUID, ...]
    now: datetime

    def handle(self, ctx: Context) -> Outcome:
        changes = []
        rows = MediaAsset.objects.select_for_update().filter(
            pk__in=self.ids, status=Status.PENDING, expires_at__lt=self.now
        )
        for asset in rows.order_by("pk"):
            before = media_view(asset)
            asset.status = Status.EXPIRED
            asset.collected_at = timezone.now()
            asset.save(update_fields=["status", "collected_at"])
            view = media_view(asset)
            changes.append(Change(ENTITY, str(asset.id), before, view, publish=False))
        return Outcome(200, CollectedUploads(tuple(c.entity_id for c in changes)), changes)


def collect_garbage(now: datetime, *, batch: int = 500) -> int:
    """Collect every upload never confirmed whose target expired before `now`: mark it
    `expired` (one command per batch), then delete its bytes once that committed. A crash
    between the two leaves bytes of expired assets; the next run deletes them too (deleting a
    missing object is fine). Returns how many were collected."""
    storage = media_storage()
    total = 0
    while ids := expired_uploads(now, limit=batch):
        response = execute(CollectUploads(ids=tuple(ids), now=now), Context(actor=SYSTEM_ACTOR))
        collected = response.body.get("collected", []) if response.status == 200 else []
        for key in collected_keys(UUID(media_id) for media_id in collected):
            storage.delete(key)
        total += len(collected)
        if len(collected) < len(ids):
            break  # the rest were confirmed meanwhile
    # Bytes a crash between commit and deletion left behind, in the last day's collections.
    for key in collected_keys(leftover_expired(now - timedelta(days=1))):
        storage.delete(key)
    return total
