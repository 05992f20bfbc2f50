"""Pokes cross server processes through the Redis channel layer: a client connected to one
process hears of a commit made through another."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.acceptance.test_served_api import login, start_quartermaster, stop
from tests.conftest import redis_base_url

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("setting", ["QM_CHANNEL_LAYER_URL", "QM_CACHE_URL"])
def test_a_commit_on_one_process_pokes_a_client_of_another(tmp_path: Path, setting: str) -> None:
    """Named on its own, or through the cache's Redis (one URL shares all a process must)."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    layer = {setting: f"{redis_base_url().rstrip('/')}/{14 - worker}"}
    env = {
        **os.environ,
        "QM_DATA_DIR": str(tmp_path),
        "QM_DATABASE_URL": "",
        "PYTHONPATH": str(ROOT / "src"),
    }
    subprocess.run(
        [sys.executable, "-m", "quartermaster", "demo"], env=env, check=True, capture_output=True
    )
    first, first_url = start_quartermaster(tmp_path, ["serve"], layer)
    second, second_url = start_quartermaster(tmp_path, ["serve"], layer)
    try:
        headers = login(second_url, "admin", "admin-demo-pass")
        token = headers["Authorization"].removeprefix("Bearer ")
        with connect(
            first_url.replace("http://", "ws://") + f"/ws/changes?token={token}"
        ) as socket:
            # Idle longer than the layer's 5 s blocking pop: the socket stays open (redis-py 8's
            # default 5 s read timeout used to close every idle one).
            with pytest.raises(TimeoutError):
                socket.recv(timeout=7)
            created = httpx.post(
                f"{second_url}/api/v1/items", json={"name": "via redis", "qty": 1}, headers=headers
            )
            message = json.loads(socket.recv(timeout=10))
    finally:
        stop(first)
        stop(second)

    assert created.status_code == 201
    assert message["type"] == "poke"
    assert message["seq"] > 0
