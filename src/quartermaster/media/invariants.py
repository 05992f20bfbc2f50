"""Pure rules of media: what an upload may declare, what its bytes really are (read from their
first bytes, never from a name or a header), signed URLs, and HTTP ranges. No database, no I/O.

Accepted: JPEG, PNG and WebP, what every phone and every PDF engine here shows, and HEIC
(iPhones' default; `image/heif` is taken as the same), decoded through libheif (pillow-heif)
for its dimensions and its JPEG thumbnail, which is what documents show. SVG is refused always:
it is a script carrier, not a photo.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from quartermaster.core.errors import Conflict, DomainError, Invalid

JPEG, PNG, WEBP, HEIC = "image/jpeg", "image/png", "image/webp", "image/heic"
ACCEPTED = (JPEG, PNG, WEBP, HEIC)
# Other names devices declare an accepted type by: a HEIF photo from a phone is HEVC-coded,
# as HEIC is (the container's major brand, heic or mif1, varies by maker).
ALIASES = {"image/heif": HEIC}
# Pillow's format name of each accepted type: the decoder must agree with the magic bytes.
PILLOW_FORMATS = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", HEIC: "HEIF"}
HEIC_BRANDS = frozenset(
    {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
)
# Enough of the head of a file to tell every type above apart.
SNIFF_BYTES = 32
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_CONTENT_TYPE_LENGTH = 100


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class MediaMissing(Invalid):
    """Confirm found no bytes (or not all of them) at the upload target."""

    code = "media_missing"


class MediaMismatch(Invalid):
    """The stored bytes are not what the upload declared (size, checksum or type)."""

    code = "media_mismatch"


class MediaTypeRefused(Invalid):
    """The bytes are of a type the server does not keep (SVG, anything not an image), or do
    not decode as the type their first bytes name."""

    code = "media_type_refused"


class StorageUnavailable(DomainError):
    """The media storage (a bucket) did not answer: nothing was registered; retry shortly."""

    status = 503
    code = "storage_unavailable"

    def __init__(self, retry_after_s: int = 5) -> None:
        super().__init__("the media storage is not reachable: retry shortly")
        self.retry_after_s = retry_after_s


class MediaExists(Conflict):
    code = "media_exists"


class UploadExpired(Conflict):
    code = "upload_expired"


@dataclass(frozen=True)
class Declared:
    """What a device says it will upload."""

    content_type: str
    size: int
    sha256: str


def clean_declared(content_type: str, size: int, sha256: str, *, max_bytes: int) -> Declared:
    kind = content_type.strip().lower().split(";")[0].strip()
    kind = ALIASES.get(kind, kind)
    if kind not in ACCEPTED:
        raise Invalid.field("content_type", f"not an accepted image type ({', '.join(ACCEPTED)})")
    if isinstance(size, bool) or size < 1:
        raise Invalid.field("size", "at least 1 byte")
    if size > max_bytes:
        raise PayloadTooLarge(
            f"a file may hold at most {max_bytes} bytes", fields={"size": f"at most {max_bytes}"}
        )
    digest = sha256.strip().lower()
    if not SHA256_HEX.match(digest):
        raise Invalid.field("sha256", "64 hexadecimal digits (SHA-256 of the bytes)")
    return Declared(content_type=kind, size=size, sha256=digest)


def sniff(head: bytes) -> str:
    """The type of a file from its first bytes, or `MediaTypeRefused`."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp" and head[8:12] in HEIC_BRANDS:
        return HEIC
    text = head.lstrip().lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype")):
        raise MediaTypeRefused("SVG and other markup are refused", fields={"content": "markup"})
    raise MediaTypeRefused(
        "the bytes are not a JPEG, PNG, WebP or HEIC image", fields={"content": "unknown"}
    )


@dataclass(frozen=True)
class Inspected:
    """What confirm found in storage: the facts the asset is registered with."""

    size: int
    sha256: str
    content_type: str
    width: int
    height: int


def check_matches(declared: Declared, found: Inspected) -> None:
    """The stored bytes must be exactly what was declared."""
    problems = {}
    if found.size != declared.size:
        problems["size"] = f"declared {declared.size} bytes, stored {found.size}"
    if found.sha256 != declared.sha256:
        problems["sha256"] = "the stored bytes have another SHA-256"
    if found.content_type != declared.content_type:
        problems["content_type"] = (
            f"declared {declared.content_type}, the bytes are {found.content_type}"
        )
    if problems:
        raise MediaMismatch("the uploaded bytes do not match the upload", fields=problems)


def check_pixels(width: int, height: int, *, max_pixels: int) -> None:
    if width < 1 or height < 1:
        raise MediaTypeRefused("the image has no pixels", fields={"content": "empty"})
    if width * height > max_pixels:
        raise MediaTypeRefused(
            f"at most {max_pixels} pixels ({width}x{height} sent)",
            fields={"content": "too many pixels"},
        )


# -- signed URLs (local storage): HMAC of what the URL grants, until when --


def signature(key: bytes, *, action: str, object_key: str, expires: int) -> str:
    message = f"{action}\n{object_key}\n{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def signature_valid(
    key: bytes, *, action: str, object_key: str, expires: int, given: str, now: int
) -> bool:
    if expires < now:
        return False
    wanted = signature(key, action=action, object_key=object_key, expires=expires)
    return hmac.compare_digest(wanted, given)


# -- ranges --

_RANGE = re.compile(r"^bytes=(\d{0,18})-(\d{0,18})$")
_CONTENT_RANGE = re.compile(r"^bytes (\d{1,18})-(\d{1,18})/(\d{1,18})$")


class RangeNotSatisfiable(DomainError):
    status = 416
    code = "range_not_satisfiable"


def parse_range(header: str, total: int) -> tuple[int, int] | None:
    """`Range: bytes=a-b` (one range; `a-`, `-n` too) → (first, last) inclusive; None for no
    header or a form we do not serve (the whole file then, as RFC 9110 allows)."""
    match = _RANGE.match(header.strip())
    if not header or match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable("an empty suffix range")
        return max(0, total - length), total - 1
    start = int(first)
    end = min(int(last), total - 1) if last else total - 1
    if start >= total or start > end:
        raise RangeNotSatisfiable(f"the file holds {total} bytes")
    return start, end


def parse_content_range(header: str, *, declared_size: int) -> tuple[int, int]:
    """`Content-Range: bytes a-b/total` of an upload chunk → (a, b) inclusive."""
    match = _CONTENT_RANGE.match(header.strip())
    if match is None:
        raise Invalid.field("Content-Range", "bytes FIRST-LAST/TOTAL")
    first, last, total = (int(part) for part in match.groups())
    if total != declared_size:
        raise Invalid.field("Content-Range", f"the upload holds {declared_size} bytes")
    if first > last or last >= total:
        raise Invalid.field("Content-Range", "FIRST <= LAST < TOTAL")
    return first, last
