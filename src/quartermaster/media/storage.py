"""Where media bytes live: the local file system (served by this server through signed URLs)
or any S3-compatible store (django-storages + boto3; devices upload with a presigned POST and
download with presigned GETs). Chosen by configuration: QM_MEDIA_S3_BUCKET set → S3.

Every read streams in chunks: a file is never held whole in memory.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlencode

from django.conf import settings
from django.core.files.base import ContentFile
from django.utils.crypto import salted_hmac

from quartermaster.media import invariants

CHUNK_BYTES = 1 << 20


def signing_key() -> bytes:
    """The local storage's URL-signing key, derived from SECRET_KEY (never stored)."""
    return salted_hmac("quartermaster.media.urls", "key", algorithm="sha256").digest()


class Readable(Protocol):
    """An open stored object: read forward in chunks, then closed."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


class MediaStorage(Protocol):
    def upload_target(
        self, key: str, *, content_type: str, size: int, expires_at: datetime
    ) -> dict[str, Any]: ...

    def download_url(self, key: str, *, expires_s: int) -> str: ...

    def size(self, key: str) -> int | None: ...

    def open(self, key: str) -> Readable: ...

    def save(self, key: str, content: bytes) -> None: ...

    def delete(self, key: str) -> None: ...


class LocalStorage:
    """Files under QM_MEDIA_DIR; URLs point back at this server (`/api/v1/media/…/content`),
    signed with an HMAC of the action, the key and the expiry."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)

    def path(self, key: str) -> Path:
        return self.directory / key

    def signed_path(self, key: str, *, action: str, expires: int) -> str:
        media_id, _, variant = key.removeprefix("media/").partition(".")
        query = urlencode(
            {
                "variant": "thumbnail" if variant else "original",
                "expires": expires,
                "signature": invariants.signature(
                    signing_key(), action=action, object_key=key, expires=expires
                ),
            }
        )
        return f"/api/v1/media/{media_id}/content?{query}"

    def upload_target(
        self, key: str, *, content_type: str, size: int, expires_at: datetime
    ) -> dict[str, Any]:
        url = self.signed_path(key, action="put", expires=int(expires_at.timestamp()))
        return {
            "method": "PUT",
            "url": url,
            # A chunk at a time is fine (Content-Range: bytes a-b/size); HEAD says how many
            # bytes arrived (Upload-Offset), so a broken upload resumes where it stopped.
            "headers": {"Content-Type": content_type},
        }

    def download_url(self, key: str, *, expires_s: int) -> str:
        return self.signed_path(key, action="get", expires=int(time.time()) + expires_s)

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO:
        return self.path(key).open("rb")

    def save(self, key: str, content: bytes) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own: two confirms of one upload at once both write the same
        # thumbnail, and a shared name let the second rename find the first had taken it.
        temporary = target.with_name(f"{target.name}.{uuid.uuid4().hex}.part-save")
        temporary.write_bytes(content)
        os.replace(temporary, target)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def write_at(self, key: str, offset: int, chunks: Iterator[bytes], *, limit: int) -> int:
        """Write `chunks` from `offset` (at most up to `limit` bytes in all); the size after."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        current = target.stat().st_size if target.exists() else 0
        if offset > current:
            raise invariants.Invalid.field(
                "Content-Range", f"{current} bytes arrived so far: resume from there"
            )
        with target.open("r+b" if target.exists() else "wb") as handle:
            handle.seek(offset)
            position = offset
            for chunk in chunks:
                position += len(chunk)
                if position > limit:
                    raise invariants.PayloadTooLarge(f"the upload holds {limit} bytes")
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        return max(current, position)


@contextmanager
def _reachable() -> Iterator[None]:
    """A bucket that does not answer (or answers 5xx) is 503 `storage_unavailable`, not 500."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except BotoCoreError as error:
        raise invariants.StorageUnavailable() from error
    except ClientError as error:
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)
        if status >= 500 or status in (401, 403):
            raise invariants.StorageUnavailable() from error
        raise


class S3Storage:
    """An S3-compatible bucket through django-storages (boto3 underneath). Failures to reach it
    answer 503 `storage_unavailable` (botocore retries twice first)."""

    def __init__(self) -> None:
        from botocore.config import Config
        from storages.backends.s3 import S3Storage as Backend

        self.backend = Backend(
            bucket_name=settings.MEDIA_S3_BUCKET,
            endpoint_url=settings.MEDIA_S3_ENDPOINT_URL or None,
            region_name=settings.MEDIA_S3_REGION,
            access_key=settings.MEDIA_S3_ACCESS_KEY_ID or None,
            secret_key=settings.MEDIA_S3_SECRET_ACCESS_KEY or None,
            addressing_style="path",
            signature_version="s3v4",
            querystring_auth=True,
            file_overwrite=True,
            default_acl=None,
            client_config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 2, "mode": "standard"},
                signature_version="s3v4",
                s3={"addressing_style": "path"},
            ),
        )

    @property
    def client(self) -> Any:
        return self.backend.connection.meta.client

    def upload_target(
        self, key: str, *, content_type: str, size: int, expires_at: datetime
    ) -> dict[str, Any]:
        expires_in = max(1, int(expires_at.timestamp() - time.time()))
        post = self.client.generate_presigned_post(
            self.backend.bucket_name,
            key,
            Fields={"Content-Type": content_type},
            Conditions=[{"Content-Type": content_type}, ["content-length-range", size, size]],
            ExpiresIn=expires_in,
        )
        return {"method": "POST", "url": post["url"], "fields": post["fields"]}

    def download_url(self, key: str, *, expires_s: int) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.backend.bucket_name, "Key": key},
                ExpiresIn=expires_s,
            )
        )

    def size(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        with _reachable():
            try:
                head = self.client.head_object(Bucket=self.backend.bucket_name, Key=key)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return int(head["ContentLength"])

    def open(self, key: str) -> Readable:
        # The object's body as a stream (botocore's StreamingBody): read in chunks, never whole.
        with _reachable():
            body = self.client.get_object(Bucket=self.backend.bucket_name, Key=key)["Body"]
        return _Stream(body)

    def save(self, key: str, content: bytes) -> None:
        with _reachable():
            self.backend.save(key, ContentFile(content))

    def delete(self, key: str) -> None:
        with _reachable():
            self.backend.delete(key)


class _Stream:
    """A read-only, forward-only file over a streaming body (enough for hashing and Pillow,
    which is given a buffered reader of it)."""

    def __init__(self, body: Any) -> None:
        self.body = body

    def read(self, size: int = -1) -> bytes:
        with _reachable():
            return bytes(self.body.read(None if size < 0 else size))

    def close(self) -> None:
        self.body.close()


def media_storage() -> MediaStorage:
    """The configured storage (S3 when a bucket is named), built once per configuration."""
    if settings.MEDIA_S3_BUCKET:
        return _s3(
            settings.MEDIA_S3_BUCKET,
            settings.MEDIA_S3_ENDPOINT_URL,
            settings.MEDIA_S3_REGION,
            settings.MEDIA_S3_ACCESS_KEY_ID,
            settings.MEDIA_S3_SECRET_ACCESS_KEY,
        )
    return _local(settings.MEDIA_DIR)


@lru_cache(maxsize=4)
def _local(directory: str) -> LocalStorage:
    return LocalStorage(directory)


@lru_cache(maxsize=4)
def _s3(*configuration: str) -> S3Storage:
    """One client per configuration (boto3 clients are thread-safe and costly to build)."""
    return S3Storage()


def read_small(key: str, *, limit: int = 1 << 20) -> bytes | None:
    """A small stored object (a thumbnail) whole, or None when it is missing or too large."""
    storage = media_storage()
    size = storage.size(key)
    if size is None or size > limit:
        return None
    handle = storage.open(key)
    try:
        return handle.read(limit + 1)
    finally:
        handle.close()
