"""Pure rules: the back-off schedule and verdicts of the outbox, how providers' reports move a
message, phone numbers, webhook signatures and payloads, message templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quartermaster.core.errors import Invalid
from quartermaster.core.outbox import Failed, Sent, Verdict, backoff_s, decide
from quartermaster.notifications import messages
from quartermaster.notifications.invariants import (
    after_report,
    after_send,
    normalize_text,
    parse_whatsapp_webhook,
    provider_phone,
    sign,
    verify_signature,
)
from tests.notifications.fake_provider import FakeProvider

NOW = datetime(2026, 3, 1, 5, 0, tzinfo=UTC)


def test_backoff_doubles_from_one_second_to_sixteen_and_stays_there() -> None:
    assert [backoff_s(n, scale=1.0, jitter=0.0) for n in range(1, 8)] == [
        1.0,
        2.0,
        4.0,
        8.0,
        16.0,
        16.0,
        16.0,
    ]
    assert backoff_s(3, scale=0.01, jitter=0.25) == pytest.approx(0.05)
    assert backoff_s(3, scale=1.0, jitter=-0.25) == 3.0


def test_verdicts() -> None:
    def verdict(n: int, attempt: Sent | Failed) -> Verdict:
        return decide(n, attempt, now=NOW, max_attempts=5, scale=1.0, jitter=0.0)

    assert verdict(1, Sent("wamid.1")) == Verdict("done", 1)
    assert verdict(2, Failed("HTTP 503")) == Verdict("retry", 2, NOW + timedelta(seconds=2), 2.0)
    assert verdict(5, Failed("HTTP 503")).state == "dead"
    assert verdict(1, Failed("HTTP 400", retryable=False)).state == "dead"
    # Retry-After when longer than the back-off; the back-off when longer than Retry-After.
    assert verdict(1, Failed("HTTP 429", retry_after_s=30)).wait_s == 30.0
    assert verdict(4, Failed("HTTP 429", retry_after_s=1)).wait_s == 8.0


@pytest.mark.parametrize(
    ("current", "reported", "expected"),
    [
        ("sent", "delivered", "delivered"),
        ("delivered", "read", "read"),
        ("sent", "read", "read"),
        ("read", "delivered", None),  # late
        ("delivered", "delivered", None),  # repeated
        ("sending", "delivered", "delivered"),  # the report beat our worker's bookkeeping
        ("delivered", "failed", "failed"),
        ("read", "failed", None),
        ("failed", "sent", None),
        ("sent", "deleted", None),  # unknown to us
    ],
)
def test_reports_only_move_a_message_forward(
    current: str, reported: str, expected: str | None
) -> None:
    assert after_report(current, reported) == expected


def test_a_send_recorded_after_a_report_keeps_the_report() -> None:
    assert after_send("sending") == "sent"
    assert after_send("delivered") == "delivered"


def test_phone_numbers_as_providers_take_them() -> None:
    assert provider_phone("+91 98765-43210", "91") == "919876543210"
    assert provider_phone("9876543210", "91") == "919876543210"
    assert provider_phone("447700900123", "91") == "447700900123"
    with pytest.raises(Invalid):
        provider_phone("98765", "91")


def test_signatures() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = sign("app-secret", body)

    assert verify_signature("app-secret", body, header)
    assert verify_signature("app-secret", body, header.upper().replace("SHA256=", "sha256="))
    assert not verify_signature("app-secret", body + b" ", header)
    assert not verify_signature("other", body, header)
    assert not verify_signature("", body, sign("", body))  # no secret: nothing verifies
    assert not verify_signature("app-secret", body, None)
    assert not verify_signature("app-secret", body, "sha1=" + header[7:])


def test_webhook_payloads_are_read_leniently_but_typed() -> None:
    statuses = parse_whatsapp_webhook(FakeProvider.status_payload("wamid.A", "failed", "key-1"))
    inbound = parse_whatsapp_webhook(FakeProvider.inbound_payload("+919876543210", "இருப்பு", "m1"))

    [report] = statuses.reports
    assert (report.reference, report.status, report.dedupe_key) == ("wamid.A", "failed", "key-1")
    assert report.error == "131026 Message undeliverable"
    [message] = inbound.messages
    assert (message.id, message.sender, message.text) == ("m1", "919876543210", "இருப்பு")
    for bad in (b"", b"[]", b'{"entry": []}', b'{"object": 1, "entry": [{"changes": 2}]}'):
        with pytest.raises(Invalid):
            parse_whatsapp_webhook(bad)
    nul = FakeProvider.inbound_payload("919876543210", "bal\u0000ance", "m\u00002")
    [cleaned] = parse_whatsapp_webhook(nul).messages
    assert (cleaned.id, cleaned.text) == ("m2", "balance")


def test_keywords_match_however_they_are_typed() -> None:
    assert normalize_text("  Balance? ") == "balance"
    # Tamil "po" typed as two code points (e + aa signs) or as the one composed sign.
    assert normalize_text("\u0baa\u0bc6\u0bbe") == "\u0baa\u0bca"


def test_templates_render_in_both_languages_and_check_their_parameters() -> None:
    params = {"name": "Valli", "payable": "10.00", "advance_outstanding": "0.00"}
    full = {**params, "last_settlement": "none yet"}

    assert messages.render("farmer_balance", "en", full).startswith("Hello Valli. Payable")
    assert "₹10.00" in messages.render("farmer_balance", "ta", full)
    assert messages.ordered_params("farmer_balance", full) == ["Valli", "10.00", "0.00", "none yet"]
    with pytest.raises(Invalid):
        messages.render("farmer_balance", "en", params)
    with pytest.raises(Invalid):
        messages.render("farmer_balance", "fr", full)
    with pytest.raises(Invalid):
        messages.render("no_such_template", "en", full)


def test_a_settlement_period_and_summary_are_written_in_the_messages_language() -> None:
    """Regression: a Tamil farmer's settlement message said "2026-03-01 to 2026-03-02"."""
    period_ta = messages.period_words("2026-03-01", "2026-03-15", "ta")
    period_en = messages.period_words("2026-03-01", "2026-03-15", "en")

    assert period_en == "2026-03-01 to 2026-03-15"
    assert period_ta == "2026-03-01 முதல் 2026-03-15 வரை"
    assert messages.settlement_line("STL-000012", period_en, "paid", "12400.00", "en") == (
        "STL-000012, 2026-03-01 to 2026-03-15, paid, net Rs 12400.00"
    )
    assert messages.settlement_line("STL-000012", period_ta, "paid", "12400.00", "ta") == (
        "STL-000012, 2026-03-01 முதல் 2026-03-15 வரை, செலுத்தப்பட்டது, நிகரம் ₹12400.00"
    )
    assert messages.render(
        "market_settlement_paid",
        "ta",
        {"name": "முருகன்", "number": "STL-000012", "period": period_ta, "net": "12400.00"},
    ) == (
        "வணக்கம் முருகன். 2026-03-01 முதல் 2026-03-15 வரை கணக்கு முடிப்பு STL-000012"
        " செலுத்தப்பட்டது. நிகரத் தொகை: ₹12400.00."
    )
