"""Providers' webhooks through the test client: a report of failure (found by the key we sent)
falls back to SMS, Meta's verification handshake, a payload that is not one, inbound messages
from farmers and strangers. The fake provider posting signed reports over the wire to a served
instance is in test_served.py."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.notifications.conftest import (
    MURUGAN_WHATSAPP,
    WEBHOOK,
    make_farmer,
    notifications,
    say,
    work,
)
from tests.notifications.fake_provider import APP_SECRET, FakeProvider


@pytest.mark.django_db
def test_a_report_of_failure_sends_the_message_by_sms(
    admin: Api, anon: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    make_farmer(admin)
    say(anon, MURUGAN_WHATSAPP, "balance")
    work(capsys)
    [sent] = notifications(admin)
    # Before the worker recorded Meta's id, a report still finds it by the key we sent.
    body = FakeProvider.status_payload("wamid.unknown", "failed", sent["dedupe_key"])

    reported = anon.post(WEBHOOK, raw=body, headers=FakeProvider.signed(body))
    work(capsys)

    assert reported.status == 200
    by_channel = {n["channel"]: n for n in notifications(admin)}
    assert by_channel["whatsapp"]["status"] == "failed"
    assert by_channel["whatsapp"]["last_error"] == "131026 Message undeliverable"
    assert by_channel["sms"]["status"] == "sent"
    assert len(provider.of("sms")) == 1


@pytest.mark.django_db
def test_meta_verification_handshake(anon: Api, settings: Any) -> None:
    settings.WHATSAPP_VERIFY_TOKEN = "verify-me"
    query = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token="

    good = anon.client.get(f"{WEBHOOK}?{query}verify-me")
    bad = anon.client.get(f"{WEBHOOK}?{query}guess")
    other = anon.client.get(f"/api/v1/notifications/webhooks/telegram?{query}verify-me")

    assert (good.status_code, good.content) == (200, b"1158201444")
    assert bad.status_code == 403
    assert other.status_code == 404


@pytest.mark.django_db
def test_without_an_app_secret_no_webhook_is_believed(anon: Api, settings: Any) -> None:
    settings.WHATSAPP_APP_SECRET = ""
    body = FakeProvider.status_payload("wamid.x", "read")

    unsigned = anon.post(WEBHOOK, raw=body)
    signed = anon.post(WEBHOOK, raw=body, headers=FakeProvider.signed(body, APP_SECRET))

    assert unsigned.status == signed.status == 401


@pytest.mark.django_db
def test_an_unknown_number_gets_a_log_line_and_no_reply(
    admin: Api, anon: Api, provider: FakeProvider, caplog: Any
) -> None:
    make_farmer(admin)

    with caplog.at_level("INFO", logger="quartermaster.notifications.inbound"):
        asked = say(anon, "447700900123", "balance")
    malformed = anon.post(
        WEBHOOK, raw=b'{"entry": 1}', headers=FakeProvider.signed(b'{"entry": 1}')
    )

    assert asked.status == 200
    assert notifications(admin) == []
    assert "from an unknown number ending 0123: not answered" in caplog.text
    assert (malformed.status, malformed.body["code"]) == (400, "invalid")


@pytest.mark.django_db
def test_a_farmer_is_answered_once_per_message_and_only_for_the_keyword(
    admin: Api, anon: Api, provider: FakeProvider
) -> None:
    make_farmer(admin)

    say(anon, MURUGAN_WHATSAPP, "இருப்பு", message_id="wamid.IN-1")
    say(anon, MURUGAN_WHATSAPP, "இருப்பு", message_id="wamid.IN-1")  # Meta redelivers
    say(anon, MURUGAN_WHATSAPP, "vanakkam", message_id="wamid.IN-2")

    [reply] = notifications(admin)
    assert reply["dedupe_key"] == "market.balance_reply:wamid.IN-1"
    assert (reply["language"], reply["status"]) == ("ta", "queued")


@pytest.mark.django_db
def test_a_signed_webhook_full_of_unstorable_characters_is_answered_not_a_5xx(
    admin: Api, anon: Api, provider: FakeProvider
) -> None:
    make_farmer(admin)
    body = (
        b'{"object": "whatsapp_business_account", "entry": [{"changes": [{"value": {'
        b'"statuses": [{"id": "wamid.\\u0000\\ud800", "status": "read\\u0000",'
        b' "biz_opaque_callback_data": "\\udfff"}],'
        b'"messages": [{"from": "919876543210", "id": "in\\u0000\\ud800", "type": "text",'
        b' "text": {"body": "\\u0000balance\\ud800"}}]}}]}]}'
    )

    reply = anon.post(WEBHOOK, raw=body, headers=FakeProvider.signed(body))

    assert reply.status == 200, reply.body
    [answer] = notifications(admin)
    assert answer["dedupe_key"] == "market.balance_reply:in"
