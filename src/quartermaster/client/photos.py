"""Photos taken offline, and their upload when the device is online.

Recording (`record_photo`) copies the file into the device's outbox folder (fsynced, then
renamed into place) and mints the photo's media id, so the op that attaches the photo can name
it at once, offline. Before a sync pushes ops, `PhotoUploader` sends every photo not yet
confirmed, in three steps the server speaks (API.md "Inspections and media"):

    1. POST /media/uploads {content_type, size, sha256, id}  → a signed target
    2. the bytes straight to it: this server's disk (PUT in chunks with Content-Range, resumed
       from HEAD's Upload-Offset) or an S3 bucket (the presigned POST)
    3. POST /media/{id}/confirm → ready; the outbox copy is deleted

A kill anywhere in between loses nothing and duplicates nothing: the media id is the device's,
so asking again names the same asset (409 `media_exists` once it is confirmed: confirm again,
which answers the same); the copy stays until the server said `ready`.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from quartermaster.client.session import RetryLater, Session, error_text, retry_after_of
from quartermaster.client.store import DeviceStore, OutboxError, Photo

UPLOADS_PATH = "/api/v1/media/uploads"
CHUNK_BYTES = 1 << 20
PENDING, UPLOADED, READY, REFUSED = "pending", "uploaded", "ready", "refused"
TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def sniff(head: bytes) -> str | None:
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def record_photo(store: DeviceStore, source: str | Path) -> Photo:
    """Copy `source` into the outbox folder and keep it for upload; returns it with its media
    id (what a photo or signature answer names). On disk when this returns."""
    source = Path(source)
    with source.open("rb") as handle:
        content_type = sniff(handle.read(32))
    if content_type is None:
        raise OutboxError(f"{source} is not a JPEG, PNG or WebP image")
    media_id = str(uuid.uuid4())
    folder = store.outbox_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{media_id}{_suffix(content_type)}"
    partial = folder / f"{name}.part"
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, partial.open("wb") as dst:
        while chunk := src.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    os.replace(partial, folder / name)
    _fsync_dir(folder)
    photo = Photo(media_id, name, content_type, size, digest.hexdigest())
    store.add_photo(photo)
    return photo


def _suffix(content_type: str) -> str:
    return {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}[content_type]


def _fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class PhotoUploader:
    """Sends the outbox's photos. `upload_all` raises RetryLater (nothing lost) when the
    network or the server fails; a photo the server refuses for good is marked `refused`."""

    def __init__(self, store: DeviceStore, session: Session) -> None:
        self.store = store
        self.session = session

    def upload_all(self) -> tuple[int, int]:
        """(confirmed, refused) photos this round."""
        confirmed = refused = 0
        for photo in self.store.photos(states=(PENDING, UPLOADED)):
            state = self.upload(photo)
            confirmed += state == READY
            refused += state == REFUSED
        return confirmed, refused

    def upload(self, photo: Photo) -> str:
        if photo.state == PENDING:
            photo, target = self._ask(photo)
            if target is None:  # refused, or the server has it confirmed already
                photo = self._current(photo.media_id)
                if photo.state == REFUSED:
                    return REFUSED
            else:
                self._send(photo, target)
                self.store.set_photo_state(photo.media_id, UPLOADED)
        return self._confirm(photo)

    def _current(self, media_id: str) -> Photo:
        [photo] = [p for p in self.store.photos() if p.media_id == media_id]
        return photo

    def _ask(self, photo: Photo) -> tuple[Photo, dict[str, Any] | None]:
        body = {
            "id": photo.media_id,
            "content_type": photo.content_type,
            "size": photo.size,
            "sha256": photo.sha256,
        }
        response = self.session.request("POST", UPLOADS_PATH, json=body)
        answer = _json(response)
        if response.status_code == 201:
            return photo, dict(answer["upload"])
        code = answer.get("code")
        if response.status_code == 409 and code == "media_exists":
            return photo, None  # confirmed before a kill: confirm answers it again
        if response.status_code == 409 and code == "upload_expired":
            # The server spent this id; the photo goes again under a new one (ops follow).
            new_id = self.store.remint_photo(photo.media_id)
            return self._ask(self._current(new_id))
        self._refuse_or_retry(photo, response)
        return photo, None

    def _refuse_or_retry(self, photo: Photo, response: httpx.Response) -> None:
        status = response.status_code
        if status == 429 or status >= 500 or status in (401, 408):
            self.store.set_photo_state(photo.media_id, photo.state, error=error_text(response))
            raise RetryLater(
                f"photo {photo.media_id}: {error_text(response)}",
                retry_after_s=retry_after_of(response),
            )
        self.store.set_photo_state(
            photo.media_id, REFUSED, error=error_text(response), body=_json(response)
        )

    def _send(self, photo: Photo, target: dict[str, Any]) -> None:
        path = self.store.outbox_dir / photo.file
        try:
            if target.get("method") == "POST":
                with path.open("rb") as handle:
                    reply = self.session.http.post(
                        target["url"],
                        data=target.get("fields") or {},
                        files={"file": (photo.file, handle, photo.content_type)},
                    )
            else:
                reply = self._put_resumable(path, photo, target)
        except httpx.TransportError as error:
            raise RetryLater(f"photo {photo.media_id}: {type(error).__name__}") from error
        if reply.status_code >= 300:
            raise RetryLater(f"photo {photo.media_id}: storage said {reply.status_code}")

    def _put_resumable(self, path: Path, photo: Photo, target: dict[str, Any]) -> httpx.Response:
        """PUT the file in chunks from where the server's copy ends (HEAD: Upload-Offset)."""
        http, url = self.session.http, target["url"]
        head = http.head(url)
        offset = int(head.headers.get("Upload-Offset", "0")) if head.status_code == 200 else 0
        headers = dict(target.get("headers") or {})
        reply = head
        if offset >= photo.size:
            return head
        with path.open("rb") as handle:
            for first, chunk in _chunks(handle, offset):
                last = first + len(chunk) - 1
                reply = http.put(
                    url,
                    content=chunk,
                    headers={**headers, "Content-Range": f"bytes {first}-{last}/{photo.size}"},
                )
                if reply.status_code != 200:
                    return reply
        return reply

    def _confirm(self, photo: Photo) -> str:
        response = self.session.request("POST", f"/api/v1/media/{photo.media_id}/confirm")
        if response.status_code == 200:
            self.store.set_photo_state(photo.media_id, READY, body=_json(response))
            (self.store.outbox_dir / photo.file).unlink(missing_ok=True)
            return READY
        if _json(response).get("code") == "media_missing":
            # The bytes did not all arrive: send them again (resuming) next round.
            self.store.set_photo_state(photo.media_id, PENDING, error=error_text(response))
            raise RetryLater(f"photo {photo.media_id}: {error_text(response)}")
        self._refuse_or_retry(photo, response)
        return REFUSED


def _chunks(handle: BinaryIO, offset: int) -> Iterator[tuple[int, bytes]]:
    handle.seek(offset)
    position = offset
    while chunk := handle.read(CHUNK_BYTES):
        yield position, chunk
        position += len(chunk)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
