"""Building images and uploading them through the public interface (local storage)."""

from __future__ import annotations

import hashlib
import random
from io import BytesIO
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from tests.conftest import Api, Reply

UPLOADS = "/api/v1/media/uploads"
MEDIA = "/api/v1/media"


def image_bytes(fmt: str = "JPEG", size: tuple[int, int] = (64, 48), noise: bool = False) -> bytes:
    """A small real image; `noise` makes it incompressible (a photo-sized file from few pixels)."""
    image = Image.new("RGB", size, (200, 80, 40))
    if noise:
        image = Image.frombytes("RGB", size, _pseudo_random(size[0] * size[1] * 3))
    out = BytesIO()
    image.save(out, fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return out.getvalue()


def heic_bytes(size: tuple[int, int] = (64, 48)) -> bytes:
    """A real HEIC photo, as an iPhone sends by default, encoded by pillow-heif (libheif and
    its HEVC encoder come inside its wheel)."""
    import pillow_heif

    out = BytesIO()
    pillow_heif.from_pillow(Image.new("RGB", size, (200, 80, 40))).save(out, quality=80)
    return out.getvalue()


def _pseudo_random(length: int) -> bytes:
    return random.Random(length).randbytes(length)


def declare(content: bytes, content_type: str = "image/jpeg", **extra: Any) -> dict[str, Any]:
    return {
        "content_type": content_type,
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        **extra,
    }


def local_path(url: str) -> str:
    """A local upload/download URL as the test client requests it (path and query)."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def put_bytes(api: Api, url: str, content: bytes, headers: dict[str, str] | None = None) -> Any:
    return api.client.generic(
        "PUT",
        local_path(url),
        data=content,
        content_type="image/jpeg",
        headers=headers or {},
    )


def upload(api: Api, content: bytes, content_type: str = "image/jpeg", **extra: Any) -> Reply:
    """Ask for a target and put the bytes there (local storage); the request's reply."""
    asked = api.post(UPLOADS, declare(content, content_type, **extra))
    assert asked.status == 201, asked.body
    sent = put_bytes(api, asked.body["upload"]["url"], content)
    assert sent.status_code == 200, sent.content
    return asked


def confirmed_media(api: Api, content: bytes | None = None) -> str:
    content = content or image_bytes("PNG")
    asked = upload(api, content, "image/png" if content.startswith(b"\x89PNG") else "image/jpeg")
    confirmed = api.post(f"{MEDIA}/{asked.body['id']}/confirm")
    assert confirmed.status == 200, confirmed.body
    return str(asked.body["id"])
