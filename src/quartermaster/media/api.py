"""HTTP adapters for media: ask for an upload target, confirm an upload, read an asset through
short-lived signed URLs; and, for the local storage only, the signed byte endpoint itself
(`/api/v1/media/{id}/content`: PUT a chunk with Content-Range, HEAD for how much arrived, GET
with Range), which takes the URL's signature instead of a bearer token, as a bucket does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt
from ninja import Router

from quartermaster.core import policy, ratelimit
from quartermaster.core.commands import execute
from quartermaster.core.errors import DomainError, Invalid, NotFound
from quartermaster.core.http import actor_of, context_for, error_json, json_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.media import invariants, services
from quartermaster.media.attachments import attached_to_readable_record
from quartermaster.media.models import MediaAsset, Status
from quartermaster.media.schemas import MediaOut, UploadIn, UploadOut, upload_out
from quartermaster.media.selectors import get_media, media_view
from quartermaster.media.storage import CHUNK_BYTES, LocalStorage, media_storage, signing_key

ERRORS = {
    400: ErrorOut,
    401: ErrorOut,
    403: ErrorOut,
    404: ErrorOut,
    409: ErrorOut,
    413: ErrorOut,
    422: ErrorOut,
    429: ErrorOut,
    503: ErrorOut,
}

router = Router(tags=["media"])


def _absolute(request: HttpRequest, url: str) -> str:
    return request.build_absolute_uri(url) if url.startswith("/") else url


def uploads_limit() -> ratelimit.Limit:
    return ratelimit.Limit("media-uploads", settings.MEDIA_UPLOADS_PER_MINUTE, 60)


@router.post("/uploads", response={201: UploadOut, **ERRORS})
def request_upload(request: HttpRequest, payload: UploadIn) -> HttpResponse:
    """A short-lived signed target the device sends the bytes to (this server's disk: PUT,
    resumable with Content-Range; an S3 bucket: a presigned POST). At most
    QM_MEDIA_UPLOADS_PER_MINUTE requests per device a minute (429 beyond)."""
    ctx = context_for(request)
    policy.authorize(ctx.actor, "media.upload")
    ratelimit.check(uploads_limit(), ctx.actor.device_id or f"user:{ctx.actor.user_id}")
    command = services.RequestUpload(
        id=payload.id, content_type=payload.content_type, size=payload.size, sha256=payload.sha256
    )
    response = execute(command, ctx)
    if response.status != 201:
        return to_http(response)
    view = response.body
    target = media_storage().upload_target(
        f"media/{view['id']}",
        content_type=view["content_type"],
        size=view["size"],
        expires_at=datetime.fromisoformat(view["expires_at"]),
    )
    target["url"] = _absolute(request, target["url"])
    headers = {"Idempotent-Replayed": "true"} if response.replayed else None
    return json_response(201, upload_out(view, target), headers)


def _asset(request: HttpRequest, media_id: UUID, action: str) -> MediaAsset:
    """The asset, if the caller may take `action` on it: inspectors their own uploads (and
    read those attached to a record they may read); managers, admins (and auditors, reading)
    everyone's."""
    actor = actor_of(request)
    policy.authorize(actor, action)
    asset = get_media(media_id)
    if asset is None:
        raise NotFound()
    try:
        policy.authorize(actor, action, owner_id=asset.uploaded_by_id)
    except NotFound:
        if action != "media.read" or not attached_to_readable_record(actor, asset.id):
            raise
    return asset


def _readable_view(request: HttpRequest, asset: MediaAsset) -> dict[str, Any]:
    """The asset with signed download URLs of its bytes and thumbnail (ready ones only)."""
    view = media_view(asset)
    body: dict[str, Any] = {
        "id": str(view.id),
        "status": view.status,
        "content_type": view.content_type,
        "size": view.size,
        "width": view.width,
        "height": view.height,
    }
    if asset.status == Status.READY:
        storage = media_storage()
        ttl = settings.MEDIA_URL_TTL_S
        body["url"] = _absolute(request, storage.download_url(asset.key, expires_s=ttl))
        body["thumbnail_url"] = _absolute(
            request, storage.download_url(asset.thumbnail_key, expires_s=ttl)
        )
        expiry = datetime.fromtimestamp(int(time.time()) + ttl, UTC)
        body["urls_expire_at"] = expiry.isoformat().replace("+00:00", "Z")
    return body


@router.post("/{uuid:media_id}/confirm", response={200: MediaOut, **ERRORS})
def confirm_upload(request: HttpRequest, media_id: UUID) -> HttpResponse:
    """Check the stored bytes (presence, size, SHA-256, the real type, dimensions), make the
    thumbnail and register the asset. Missing or mismatching bytes → 400 (`media_missing`,
    `media_mismatch`, `media_type_refused`: SVG, anything not JPEG/PNG/WebP/HEIC). Confirming
    again answers the same."""
    ctx = context_for(request)
    asset = _asset(request, media_id, "media.confirm")
    if asset.status == Status.PENDING:
        found = services.inspect_upload(asset, media_storage())
        command = services.ConfirmUpload(
            id=asset.id,
            size=found.size,
            sha256=found.sha256,
            content_type=found.content_type,
            width=found.width,
            height=found.height,
        )
        response = execute(command, ctx)
        if response.status != 200:
            return to_http(response)
        asset.refresh_from_db()
    elif asset.status == Status.EXPIRED:
        raise invariants.UploadExpired("this upload expired before it was confirmed")
    return json_response(200, _readable_view(request, asset))


@router.get("/{uuid:media_id}", response={200: MediaOut, **ERRORS})
def retrieve_media(request: HttpRequest, media_id: UUID) -> HttpResponse:
    """The asset with short-lived signed URLs (QM_MEDIA_URL_TTL_S) of its bytes and thumbnail."""
    return json_response(200, _readable_view(request, _asset(request, media_id, "media.read")))


# -- the local storage's signed byte endpoint (a plain Django view: raw bytes, no JSON) --


def _signed(request: HttpRequest, key: str, action: str) -> bool:
    try:
        expires = int(request.GET.get("expires", ""))
    except ValueError:
        return False
    return invariants.signature_valid(
        signing_key(),
        action=action,
        object_key=key,
        expires=expires,
        given=request.GET.get("signature", ""),
        now=int(time.time()),
    )


@csrf_exempt
def media_content(request: HttpRequest, media_id: UUID) -> HttpResponseBase:
    """PUT (an upload URL), HEAD and GET (a download URL, or HEAD of an upload URL: how many
    bytes arrived, in `Upload-Offset`)."""
    storage = media_storage()
    if not isinstance(storage, LocalStorage):
        raise_json = NotFound("media are served by the configured bucket")
        return error_json(raise_json)
    variant = request.GET.get("variant", "original")
    key = f"media/{media_id}" + (".thumb.jpg" if variant == "thumbnail" else "")
    try:
        if request.method == "PUT" and variant == "original" and _signed(request, key, "put"):
            return _receive(request, storage, media_id, key)
        if request.method == "HEAD" and _signed(request, key, "put"):
            return _offset(storage, key)
        if request.method in ("GET", "HEAD") and _signed(request, key, "get"):
            return _serve(request, storage, key, variant)
    except DomainError as error:
        return error_json(error)
    if request.method not in ("GET", "HEAD", "PUT"):
        response = error_json(DomainError("method not allowed"))
        response.status_code = 405
        response["Allow"] = "GET, HEAD, PUT"
        return response
    return error_json(_Forbidden("the URL's signature is wrong or expired: ask for a new one"))


class _Forbidden(DomainError):
    status = 403
    code = "signature_invalid"


def _offset(storage: LocalStorage, key: str) -> HttpResponse:
    response = HttpResponse(status=200)
    response["Upload-Offset"] = str(storage.size(key) or 0)
    response["Cache-Control"] = "no-store"
    return response


def _receive(request: HttpRequest, storage: LocalStorage, media_id: UUID, key: str) -> HttpResponse:
    asset = get_media(media_id)
    if asset is None:
        raise NotFound()
    if asset.status != Status.PENDING:
        raise invariants.MediaExists(f"this upload is {asset.status}: its bytes are fixed")
    length = _content_length(request)
    header = request.headers.get("Content-Range")
    if header:
        first, last = invariants.parse_content_range(header, declared_size=asset.size)
        if length != last - first + 1:
            raise Invalid.field("Content-Range", "the chunk's length differs from Content-Length")
    else:
        first = 0
        if length > asset.size:
            raise invariants.PayloadTooLarge(f"the upload holds {asset.size} bytes")
        storage.delete(key)  # a whole upload again: start over
    received = storage.write_at(key, first, _chunks(request, length), limit=asset.size)
    response = json_response(200, {"id": str(media_id), "received": received, "size": asset.size})
    response["Upload-Offset"] = str(received)
    return response


def _content_length(request: HttpRequest) -> int:
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError as error:
        raise Invalid.field("Content-Length", "an integer") from error
    if length < 0:
        raise Invalid.field("Content-Length", "an integer")
    return length


def _chunks(request: HttpRequest, length: int) -> Iterator[bytes]:
    left = length
    while left > 0:
        chunk = request.read(min(CHUNK_BYTES, left))
        if not chunk:
            return
        left -= len(chunk)
        yield chunk


def _serve(request: HttpRequest, storage: LocalStorage, key: str, variant: str) -> HttpResponseBase:
    total = storage.size(key)
    if total is None:
        raise NotFound()
    content_type = "image/jpeg"
    if variant != "thumbnail":
        asset = get_media(UUID(key.removeprefix("media/")))
        content_type = asset.content_type if asset is not None else "application/octet-stream"
    wanted = invariants.parse_range(request.headers.get("Range", ""), total)
    first, last = wanted if wanted is not None else (0, total - 1)
    body = b"" if request.method == "HEAD" else _file_slice(storage, key, first, last)
    response = StreamingHttpResponse(body, status=206 if wanted else 200, content_type=content_type)
    response["Content-Length"] = str(last - first + 1)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, max-age=60"
    if wanted:
        response["Content-Range"] = f"bytes {first}-{last}/{total}"
    return response


def _file_slice(storage: LocalStorage, key: str, first: int, last: int) -> Iterator[bytes]:
    with storage.open(key) as handle:
        handle.seek(first)
        left = last - first + 1
        while left > 0:
            chunk = handle.read(min(CHUNK_BYTES, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk
