"""The HTTP edge of a served process: bodies over the limit and bodies that never arrive whole."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from tests.acceptance.test_served_api import login, start_quartermaster, stop

pytestmark = pytest.mark.slow


def test_an_oversized_body_is_413_and_a_truncated_one_runs_nothing(tmp_path: Path) -> None:
    process, base = start_quartermaster(
        tmp_path, ["demo", "--serve"], {"QM_MAX_BODY_BYTES": "4096"}
    )
    try:
        headers = login(base, "admin", "admin-demo-pass")
        before = httpx.get(f"{base}/api/v1/items?limit=500", headers=headers).json()["results"]

        too_big = httpx.post(
            f"{base}/api/v1/items", json={"name": "x" * 5000, "qty": 1}, headers=headers
        )
        body = json.dumps({"name": "half-sent", "qty": 1}).encode()
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port)) as raw:
            raw.sendall(
                b"POST /api/v1/items HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: {headers['Authorization']}\r\n".encode()
                + f"Content-Length: {len(body) + 50}\r\n\r\n".encode()
                + body
            )
        after = httpx.get(f"{base}/api/v1/items?limit=500", headers=headers).json()["results"]
    finally:
        stop(process)

    assert (too_big.status_code, too_big.json()["code"]) == (413, "payload_too_large")
    assert after == before
