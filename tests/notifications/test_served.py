"""Notifications over the wire, as deployed: a served Quartermaster (its own SQLite data dir),
the fake provider posting to it, and workers as processes.

- `quartermaster demo --serve` runs its own outbox worker: a farmer's WhatsApp "balance" is
  answered, then the fake provider posts signed status reports back (delivered, read); one
  signed with the wrong secret is refused 401 and changes nothing.
- A worker SIGKILLed while the provider holds its request leaves the message leased; the next
  worker sends it again after the lease, with the same dedupe key (at least once).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_served_api import login, start_quartermaster, stop
from tests.notifications.conftest import MURUGAN_WHATSAPP, NOTIFICATIONS, WEBHOOK
from tests.notifications.fake_provider import FakeProvider

pytestmark = pytest.mark.slow

FARMER = {
    "name": "Murugan",
    "name_ta": "முருகன்",
    "phone": "9876543210",
    "whatsapp": "9876543210",
    "language": "ta",
}


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    provider = FakeProvider().start()
    yield provider
    provider.stop()


def environment(fake: FakeProvider, data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **fake.environment(),
        "QM_OUTBOX_BACKOFF_SCALE": "0.01",
        "QM_OUTBOX_POLL_S": "0.1",
        "QM_DATA_DIR": str(data_dir),
        "QM_DATABASE_URL": "",
        "PYTHONPATH": str(Path(__file__).parents[2] / "src"),
        **extra,
    }


def quartermaster(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "quartermaster", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def listed(base: str, admin: dict[str, str]) -> list[dict[str, Any]]:
    reply = httpx.get(f"{base}{NOTIFICATIONS}", headers=admin, timeout=30)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["results"])


def test_the_demo_server_answers_a_farmer_and_hears_back_from_the_provider(
    tmp_path: Path, fake: FakeProvider
) -> None:
    env = environment(fake, tmp_path)
    server, base = start_quartermaster(tmp_path, ["demo", "--serve"], env)
    try:
        admin = login(base, "admin", "admin-demo-pass")
        farmer = httpx.post(f"{base}/api/v1/market/farmers", json=FARMER, headers=admin)
        assert farmer.status_code == 201, farmer.text

        asked = fake.post_inbound(f"{base}{WEBHOOK}", MURUGAN_WHATSAPP, "இருப்பு")
        fake.wait_for_requests(1)  # the demo's own worker sent the answer
        [send] = fake.of("whatsapp")
        message_id = _wait_until_recorded(base, admin)
        delivered = fake.post_status(f"{base}{WEBHOOK}", message_id, "delivered")
        forged = fake.post_status(f"{base}{WEBHOOK}", message_id, "failed", secret="guess")
        read = fake.post_status(f"{base}{WEBHOOK}", message_id, "read")
        late = fake.post_status(f"{base}{WEBHOOK}", message_id, "delivered")
        [notification] = listed(base, admin)
    finally:
        stop(server)

    assert asked.status_code == 200
    assert send.body["template"]["language"] == {"code": "ta"}
    assert delivered.status_code == read.status_code == late.status_code == 200
    assert (forged.status_code, forged.json()["code"]) == (401, "not_authenticated")
    assert (notification["status"], notification["attempts"]) == ("read", 1)
    assert fake.of("sms") == []  # the forged "failed" changed nothing


def _wait_until_recorded(base: str, admin: dict[str, str]) -> str:
    """The provider answered; the worker records its message id a moment later."""
    for _ in range(300):
        [notification] = listed(base, admin)
        if notification["provider_message_id"]:
            return str(notification["provider_message_id"])
        httpx.get(f"{base}/health", timeout=5)  # a round trip, not a sleep
    raise AssertionError("the send was never recorded")


def test_a_worker_killed_mid_send_leaves_the_message_to_the_next_after_its_lease(
    tmp_path: Path, fake: FakeProvider
) -> None:
    env = environment(fake, tmp_path, QM_OUTBOX_LEASE_S="2", QM_NOTIFY_TIMEOUT_S="1")
    subprocess.run(
        [sys.executable, "-m", "quartermaster", "demo"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    server, base = start_quartermaster(tmp_path, ["serve"], env)
    try:
        admin = login(base, "admin", "admin-demo-pass")
        httpx.post(f"{base}/api/v1/market/farmers", json=FARMER, headers=admin)
        fake.post_inbound(f"{base}{WEBHOOK}", MURUGAN_WHATSAPP, "balance")
        fake.hang()  # the provider holds the first request open

        first = quartermaster(["outbox", "work"], env)
        fake.wait_for_requests(1)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        [in_flight] = listed(base, admin)
        second = quartermaster(["outbox", "work", "--drain"], env)
        output, _ = second.communicate(timeout=60)
        fake.release.set()
        [sent] = listed(base, admin)
    finally:
        stop(server)

    assert first.returncode == -signal.SIGKILL
    assert (in_flight["status"], in_flight["attempts"]) == ("sending", 1)
    assert second.returncode == 0, output
    killed_send, resent = fake.of("whatsapp")
    assert killed_send.key == resent.key == sent["dedupe_key"]
    assert resent.answered == 200
    assert (sent["status"], sent["attempts"]) == ("sent", 2)
    assert "sent (attempt 2)" in output
