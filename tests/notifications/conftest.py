"""Fixtures for notifications: the fake provider (a real HTTP server on 127.0.0.1) with our
settings pointed at it, farmers, and the worker run as the CLI runs it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from quartermaster import cli
from tests.conftest import Api, Reply
from tests.notifications.fake_provider import FakeProvider

WEBHOOK = "/api/v1/notifications/webhooks/whatsapp"
NOTIFICATIONS = "/api/v1/notifications"
MURUGAN_WHATSAPP = "919876543210"
# Every wait of the worker is 1/100 of its real length: 10, 20, 40 … ms between attempts.
SCALE = 0.01


@pytest.fixture
def provider(settings: Any) -> Iterator[FakeProvider]:
    fake = FakeProvider().start()
    for name, value in fake.environment().items():
        setattr(settings, name.removeprefix("QM_"), value)
    settings.OUTBOX_BACKOFF_SCALE = SCALE
    settings.OUTBOX_LEASE_S = 5.0
    settings.OUTBOX_POLL_S = 0.05
    settings.NOTIFY_TIMEOUT_S = 2.0
    yield fake
    fake.stop()


def make_farmer(admin: Api, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Murugan",
        "name_ta": "முருகன்",
        "phone": "9876543210",
        "whatsapp": "+91 98765 43210".replace(" ", ""),
        "language": "ta",
        **fields,
    }
    reply = admin.post("/api/v1/market/farmers", body)
    assert reply.status == 201, reply.body
    return dict(reply.body)


def say(anon: Api, sender: str, text: str, message_id: str | None = None) -> Reply:
    """A WhatsApp message from `sender`, as Meta posts it to our webhook (signed)."""
    body = FakeProvider.inbound_payload(sender, text, message_id)
    return anon.post(WEBHOOK, raw=body, headers=FakeProvider.signed(body))


def work(capsys: pytest.CaptureFixture[str], *flags: str) -> list[str]:
    """`quartermaster outbox work --drain` (or FLAGS); its output lines."""
    capsys.readouterr()
    assert cli.main(["outbox", "work", *(flags or ("--drain",))]) == 0
    return capsys.readouterr().out.splitlines()


def notifications(api: Api, query: str = "") -> list[dict[str, Any]]:
    reply = api.get(f"{NOTIFICATIONS}{query}")
    assert reply.status == 200, reply.body
    return list(reply.body["results"])
