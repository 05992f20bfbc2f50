"""The same media flow against a real S3-compatible server on 127.0.0.1 (moto in server mode):
the device posts the bytes to a presigned POST, the server checks them through boto3, and the
downloads are presigned GETs. No call is mocked."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from quartermaster.cli import main as cli_main
from quartermaster.media.models import MediaAsset
from tests.conftest import Api
from tests.media.conftest import Bucket
from tests.media.helpers import MEDIA, UPLOADS, declare, image_bytes

SVG = b'<svg xmlns="http://www.w3.org/2000/svg"/>'


def post_to_bucket(target: dict[str, Any], content: bytes, content_type: str) -> httpx.Response:
    assert target["method"] == "POST"
    return httpx.post(
        target["url"],
        data=target["fields"],
        files={"file": ("photo", content, content_type)},
        timeout=30,
    )


def test_a_photo_goes_to_the_bucket_by_presigned_post_and_is_confirmed(
    staff: Api, s3_bucket: Bucket, media_dir: Path
) -> None:
    content = image_bytes("JPEG", (800, 600), noise=True)

    asked = staff.post(UPLOADS, declare(content))
    posted = post_to_bucket(asked.body["upload"], content, "image/jpeg")
    confirmed = staff.post(f"{MEDIA}/{asked.body['id']}/confirm")
    read = staff.get(f"{MEDIA}/{asked.body['id']}")
    original = httpx.get(read.body["url"], timeout=30)
    part = httpx.get(read.body["url"], headers={"Range": "bytes=0-99"}, timeout=30)
    thumbnail = httpx.get(read.body["thumbnail_url"], timeout=30)

    assert asked.status == 201, asked.body
    assert asked.body["upload"]["url"].startswith("http://127.0.0.1:")
    assert posted.status_code in (200, 201, 204), posted.text
    assert confirmed.status == 200, confirmed.body
    assert (confirmed.body["width"], confirmed.body["height"]) == (800, 600)
    assert "X-Amz-Signature" in read.body["url"] and "X-Amz-Expires=300" in read.body["url"]
    assert original.status_code == 200 and original.content == content
    assert part.status_code == 206 and part.content == content[:100]
    with Image.open(BytesIO(thumbnail.content)) as image:
        assert image.size == (320, 240)
    bucket = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name)
    assert sorted(entry["Key"] for entry in bucket["Contents"]) == [
        f"media/{asked.body['id']}",
        f"media/{asked.body['id']}.thumb.jpg",
    ]
    assert not media_dir.exists()  # nothing went to the local disk


def test_the_bucket_bytes_are_checked_like_local_ones(staff: Api, s3_bucket: Bucket) -> None:
    png = image_bytes("PNG")
    missing = staff.post(UPLOADS, declare(png, "image/png"))
    markup = staff.post(UPLOADS, declare(SVG, "image/png"))
    post_to_bucket(markup.body["upload"], SVG, "image/png")

    nothing = staff.post(f"{MEDIA}/{missing.body['id']}/confirm")
    svg = staff.post(f"{MEDIA}/{markup.body['id']}/confirm")

    assert nothing.status == 400 and nothing.body["code"] == "media_missing"
    assert svg.status == 400 and svg.body["code"] == "media_type_refused"


def test_gc_deletes_expired_uploads_from_the_bucket(staff: Api, s3_bucket: Bucket) -> None:
    from django.test import override_settings

    content = image_bytes("PNG")
    with override_settings(MEDIA_UPLOAD_TTL_S=-1):
        asked = staff.post(UPLOADS, declare(content, "image/png"))
    key = f"media/{asked.body['id']}"
    s3_bucket.client.put_object(Bucket=s3_bucket.name, Key=key, Body=content)

    assert cli_main(["media", "gc"]) == 0

    assert MediaAsset.objects.get(pk=asked.body["id"]).status == "expired"
    listed = s3_bucket.client.list_objects_v2(Bucket=s3_bucket.name)
    assert listed.get("KeyCount", 0) == 0


def test_a_bucket_that_does_not_answer_is_503_retry_later_not_500(staff: Api) -> None:
    from django.test import override_settings

    from tests.acceptance.test_served_api import free_port

    content = image_bytes("PNG")
    nowhere = f"http://127.0.0.1:{free_port()}"
    with override_settings(
        MEDIA_S3_BUCKET="qm-nowhere",
        MEDIA_S3_ENDPOINT_URL=nowhere,
        MEDIA_S3_ACCESS_KEY_ID="test",
        MEDIA_S3_SECRET_ACCESS_KEY="test",
    ):
        asked = staff.post(UPLOADS, declare(content, "image/png"))
        confirmed = staff.post(f"{MEDIA}/{asked.body['id']}/confirm")

    assert asked.status == 201  # a presigned POST is signed here, without the bucket
    assert confirmed.status == 503 and confirmed.body["code"] == "storage_unavailable"
    assert int(confirmed.headers["retry-after"]) >= 1
    assert MediaAsset.objects.get(pk=asked.body["id"]).status == "pending"
