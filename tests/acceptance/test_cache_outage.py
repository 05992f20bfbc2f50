"""A server whose shared cache (Redis) is down refuses requests with a retryable 503, never a
500 a device would keep retrying as a fault, and says so on /health."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.acceptance.test_served_api import free_port, start_quartermaster, stop

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_an_unreachable_cache_answers_503_unavailable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "QM_DATA_DIR": str(tmp_path),
        "QM_DATABASE_URL": "",
        "PYTHONPATH": str(ROOT / "src"),
    }
    subprocess.run(
        [sys.executable, "-m", "quartermaster", "demo"], env=env, check=True, capture_output=True
    )
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    server, url = start_quartermaster(tmp_path, ["serve"], {"QM_CACHE_URL": nobody_listens})
    try:
        login = httpx.post(
            f"{url}/api/v1/auth/login",
            json={"username": "admin", "password": "admin-demo-pass"},
            timeout=30,
        )
        health = httpx.get(f"{url}/health", timeout=30)
    finally:
        stop(server)

    assert login.status_code == 503, login.text
    assert login.json()["code"] == "unavailable"
    assert int(login.headers["Retry-After"]) >= 1
    assert health.status_code == 200
    assert health.json()["cache"] == "unavailable"
    assert health.json()["status"] == "degraded"
