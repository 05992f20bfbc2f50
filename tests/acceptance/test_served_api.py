"""The README's first command, for real: `quartermaster demo --serve` on SQLite, driven over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_quartermaster(
    data_dir: Path, args: list[str], extra_env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m quartermaster ARGS --port P` on its own data dir; returns once /health answers.

    Output goes to a log file in the data dir (a pipe nobody reads would stall a chatty server).
    """
    port = free_port()
    env = {
        **os.environ,
        "QM_DATA_DIR": str(data_dir),
        "QM_DATABASE_URL": "",
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
        **(extra_env or {}),
    }
    log_path = data_dir / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "quartermaster", *args, "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    process.wait(timeout=20)
    pytest.fail(f"server did not start:\n{log_path.read_text()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, base = start_quartermaster(tmp_path_factory.mktemp("served"), ["demo", "--serve"])
    yield base
    stop(process)


def login(base: str, username: str, password: str) -> dict[str, str]:
    reply = httpx.post(
        f"{base}/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert reply.status_code == 200, reply.text
    return {"Authorization": f"Bearer {reply.json()['access']}"}


def test_demo_users_log_in_and_see_the_demo_items(server: str) -> None:
    headers = login(server, "admin", "admin-demo-pass")

    items = httpx.get(f"{server}/api/v1/items", headers=headers).json()["results"]
    me = httpx.get(f"{server}/api/v1/auth/me", headers=headers).json()

    assert len(items) >= 4
    assert me["role"] == "admin"


def test_a_staff_member_sells_a_unit_and_the_chain_verifies(server: str) -> None:
    admin = login(server, "admin", "admin-demo-pass")
    driver = login(server, "driver1", "driver1-demo-pass")
    item = httpx.post(
        f"{server}/api/v1/items", json={"name": "acceptance hose", "qty": 2}, headers=admin
    ).json()
    url = f"{server}/items/{item['id']}/qty"
    key = {**driver, "Idempotency-Key": "driver1-sale-1"}

    sold = httpx.patch(url, json={"delta": -1}, headers=key)
    retried = httpx.patch(url, json={"delta": -1}, headers=key)
    too_many = httpx.patch(url, json={"delta": -5}, headers=driver)
    forbidden = httpx.post(f"{server}/api/v1/items", json={"name": "x", "qty": 1}, headers=driver)

    assert sold.json()["qty"] == 1
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert too_many.status_code == 400
    assert forbidden.status_code == 403
    assert httpx.get(f"{server}/api/v1/items/{item['id']}", headers=admin).json()["qty"] == 1
    verify = httpx.get(f"{server}/api/v1/audit/verify", headers=admin).json()
    assert verify["ok"] is True and verify["first_bad_seq"] is None


def test_errors_are_json_over_the_wire(server: str) -> None:
    not_found = httpx.get(f"{server}/no/such/route")
    unauthenticated = httpx.get(f"{server}/api/v1/items")

    assert not_found.status_code == 404
    assert not_found.json() == {"error": "not_found", "code": "not_found"}
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == "not_authenticated"


def test_a_made_up_forwarded_header_does_not_dodge_the_per_address_limit(
    tmp_path: Path,
) -> None:
    # Served by uvicorn from loopback, as `serve` runs it: X-Forwarded-For is the client's
    # own claim unless QM_TRUSTED_PROXY_HOPS says a proxy wrote it.
    subprocess.run(
        [sys.executable, "-m", "quartermaster", "migrate"],
        env={
            **os.environ,
            "QM_DATA_DIR": str(tmp_path),
            "QM_DATABASE_URL": "",
            "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
        },
        check=True,
        capture_output=True,
    )
    process, base = start_quartermaster(
        tmp_path, ["serve"], extra_env={"QM_LOGIN_FAILURES_PER_IP": "3"}
    )
    try:
        statuses = [
            httpx.post(
                f"{base}/api/v1/auth/login",
                json={"username": f"guess{n}", "password": "wrong password"},
                headers={"X-Forwarded-For": f"198.51.100.{n}"},
            ).status_code
            for n in range(4)
        ]
    finally:
        stop(process)

    assert statuses == [401, 401, 401, 429]
