"""Delivery through the outbox against the fake provider (a real HTTP server): a farmer's
"இருப்பு" answered on WhatsApp in Tamil after two provider failures, back-off between
attempts, `failed` after five and the retry endpoint, the SMS fallback, a provider's
Retry-After, a provider that times out, and a rolled-back command that sends nothing."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from quartermaster.core.commands import Command, execute
from quartermaster.core.errors import Invalid
from quartermaster.core.models import AuditEntry
from quartermaster.core.types import SYSTEM_ACTOR, Context, Outcome
from quartermaster.notifications.services import Addressee, notify
from tests.conftest import Api
from tests.notifications.conftest import (
    MURUGAN_WHATSAPP,
    NOTIFICATIONS,
    SCALE,
    make_farmer,
    notifications,
    say,
    work,
)
from tests.notifications.fake_provider import SMS_FROM, FakeProvider

pytestmark = pytest.mark.django_db

# The shortest a jittered wait can be: its nominal length less 25 %.
SHORTEST = 0.75


def test_a_farmer_asking_in_tamil_is_answered_on_whatsapp_after_two_failures(
    admin: Api, anon: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    make_farmer(admin)
    provider.fail(2)

    asked = say(anon, MURUGAN_WHATSAPP, " இருப்பு ")
    queued = notifications(admin, "?status=queued")
    lines = work(capsys)

    assert asked.status == 200 and asked.body == {"reports": 0, "messages": 1}
    assert [(n["channel"], n["template"], n["language"], n["recipient"]) for n in queued] == [
        ("whatsapp", "farmer_balance", "ta", MURUGAN_WHATSAPP)
    ]
    sends = provider.of("whatsapp")
    assert [send.answered for send in sends] == [503, 503, 200]
    assert {send.key for send in sends} == {queued[0]["dedupe_key"]}  # one key, every attempt
    assert sends[1].at - sends[0].at >= 1 * SCALE * SHORTEST
    assert sends[2].at - sends[1].at >= 2 * SCALE * SHORTEST
    last = sends[-1].body
    assert last["to"] == MURUGAN_WHATSAPP
    assert last["biz_opaque_callback_data"] == queued[0]["dedupe_key"]
    assert last["template"]["name"] == "farmer_balance"
    assert last["template"]["language"] == {"code": "ta"}
    assert [p["text"] for p in last["template"]["components"][0]["parameters"]] == [
        "முருகன்",
        "0.00",
        "0.00",
        "இதுவரை இல்லை",
    ]
    [sent] = notifications(admin)
    assert (sent["status"], sent["attempts"], sent["last_error"]) == ("sent", 3, None)
    assert sent["provider_message_id"].startswith("wamid.")
    assert lines[0] == "outbox worker running (until nothing is pending)"
    assert "attempt 1 failed (HTTP 503: 2 service unavailable); next in" in lines[1]
    assert "attempt 2 failed" in lines[2] and lines[3].endswith("sent (attempt 3)")
    assert lines[-1] == "outbox: 1 sent, 2 retried, 0 failed"
    actions = list(
        AuditEntry.objects.filter(entity_type="notification").values_list("action", flat=True)
    )
    assert actions == [
        "market.farmer.balance_reply",
        *["notification.sending", "notification.attempt"] * 3,
    ]


def test_after_five_failures_it_is_failed_until_a_manager_retries_it(
    admin: Api,
    anon: Api,
    manager: Api,
    auditor: Api,
    provider: FakeProvider,
    settings: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings.SMS_ACCOUNT_SID = ""  # no SMS: nothing to fall back on
    make_farmer(admin)
    provider.fail(5)
    say(anon, MURUGAN_WHATSAPP, "balance")

    lines = work(capsys)
    [failed] = notifications(admin, "?status=failed")
    refused = auditor.post(f"{NOTIFICATIONS}/{failed['id']}/retry")
    retried = manager.post(f"{NOTIFICATIONS}/{failed['id']}/retry")
    again = manager.post(f"{NOTIFICATIONS}/{failed['id']}/retry")
    lines_after = work(capsys)

    assert len(provider.of("whatsapp")) == 6
    assert (failed["attempts"], failed["last_error"]) == (5, "HTTP 503: 2 service unavailable")
    assert "failed for good after 5 attempts" in lines[-2]
    assert lines[-1] == "outbox: 0 sent, 4 retried, 1 failed"
    assert (refused.status, refused.body["code"]) == (403, "permission_denied")
    assert (retried.status, retried.body["status"]) == (200, "queued")
    assert (again.status, again.body["code"]) == (409, "notification_not_failed")
    assert lines_after[-1] == "outbox: 1 sent, 0 retried, 0 failed"
    [sent] = notifications(admin, f"?recipient=%2B{MURUGAN_WHATSAPP}")
    assert (sent["status"], sent["attempts"]) == ("sent", 6)


def test_whatsapp_failing_for_good_falls_back_to_sms_in_the_farmers_language(
    admin: Api, anon: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    make_farmer(admin)
    provider.fail(1, status=400)  # a refusal no retry will change (say, an unknown template)

    say(anon, MURUGAN_WHATSAPP, "இருப்பு")
    work(capsys)

    assert len(provider.of("whatsapp")) == 1
    [sms] = provider.of("sms")
    assert sms.body["To"] == f"+{MURUGAN_WHATSAPP}" and sms.body["From"] == SMS_FROM
    assert sms.body["Body"].startswith("வணக்கம் முருகன். உங்களுக்குச் செலுத்த வேண்டிய தொகை: ₹0.00.")
    by_channel = {n["channel"]: n for n in notifications(admin)}
    assert by_channel["whatsapp"]["status"] == "failed"
    assert by_channel["whatsapp"]["attempts"] == 1
    assert by_channel["sms"]["status"] == "sent"
    assert by_channel["sms"]["fallback_of"] == by_channel["whatsapp"]["id"]
    assert sms.key == by_channel["whatsapp"]["dedupe_key"] + "/sms"


def test_a_rate_limited_attempt_waits_as_long_as_the_provider_asks(
    admin: Api, anon: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    make_farmer(admin)
    provider.rate_limit(1, retry_after_s=30)  # 30 s, scaled to 0.3 s; back-off alone: 0.01 s

    say(anon, MURUGAN_WHATSAPP, "balance")
    lines = work(capsys)

    first, second = provider.of("whatsapp")
    assert (first.answered, second.answered) == (429, 200)
    assert second.at - first.at >= 30 * SCALE
    assert "attempt 1 failed (HTTP 429: 130429 rate limit hit); next in 0.3" in lines[1]
    assert notifications(admin)[0]["status"] == "sent"


def test_a_provider_that_times_out_is_tried_again_with_the_same_key(
    admin: Api, anon: Api, provider: FakeProvider, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.NOTIFY_TIMEOUT_S = 0.2
    make_farmer(admin)
    provider.time_out(1, seconds=2)

    say(anon, MURUGAN_WHATSAPP, "balance")
    lines = work(capsys)

    first, second = provider.of("whatsapp")
    assert first.key == second.key
    assert "attempt 1 failed (timed out)" in lines[1]
    [sent] = notifications(admin)
    assert (sent["status"], sent["attempts"]) == ("sent", 2)


class NotifyThenRefuse(Command):
    """Queues a message, then refuses: the pipeline rolls both back."""

    name = "test.notify_then_refuse"
    syncable: ClassVar[bool] = False

    def handle(self, ctx: Context) -> Outcome:
        notify(
            Addressee(name="Valli", language="en", whatsapp="9876500000"),
            template="plain",
            params={"text": "never sent"},
            dedupe_key="rolled-back-1",
        )
        raise Invalid("refused after queueing")


def test_a_command_that_rolls_back_sends_nothing(
    admin: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    response = execute(NotifyThenRefuse(), Context(actor=SYSTEM_ACTOR))

    lines = work(capsys)

    assert response.status == 400
    assert notifications(admin) == []
    assert lines[-1] == "outbox: 0 sent, 0 retried, 0 failed"
    assert provider.requests == []


def test_without_a_provider_messages_go_to_the_console(
    admin: Api, anon: Api, settings: Any, capsys: pytest.CaptureFixture[str], caplog: Any
) -> None:
    settings.WHATSAPP_APP_SECRET = "secret"
    make_farmer(admin, language="en", name="Valli", whatsapp="9876500000")
    body = FakeProvider.inbound_payload("919876500000", "Balance?")
    signed = FakeProvider.signed(body, "secret")

    anon.post("/api/v1/notifications/webhooks/whatsapp", raw=body, headers=signed)
    with caplog.at_level("INFO", logger="quartermaster.notifications.providers"):
        lines = work(capsys, "--once")

    [sent] = notifications(admin)
    assert (sent["channel"], sent["status"], sent["recipient"]) == (
        "console",
        "sent",
        "919876500000",
    )
    assert lines[-1] == "outbox: 1 sent, 0 retried, 0 failed"
    assert "Hello Valli. Payable to you: Rs 0.00. Advance outstanding: Rs 0.00." in caplog.text
