"""Media tests: a fresh local media directory per test, and a real S3-compatible server on
127.0.0.1 (moto in server mode, one per session, on a free port) for the S3 storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from tests.acceptance.test_served_api import free_port


@pytest.fixture(autouse=True)
def media_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "media"
    with override_settings(MEDIA_DIR=str(directory), MEDIA_S3_BUCKET=""):
        yield directory


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class Bucket:
    client: Any  # boto3's S3 client of the server
    name: str


@pytest.fixture
def s3_bucket(s3_server: str, media_dir: Path) -> Iterator[Bucket]:
    """The media storage switched to a new bucket on the S3 server."""
    import boto3

    bucket = f"qm-media-{uuid.uuid4().hex[:12]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )
    client.create_bucket(Bucket=bucket)
    with override_settings(
        MEDIA_S3_BUCKET=bucket,
        MEDIA_S3_ENDPOINT_URL=s3_server,
        MEDIA_S3_ACCESS_KEY_ID="test",
        MEDIA_S3_SECRET_ACCESS_KEY="test",
    ):
        yield Bucket(client, bucket)
