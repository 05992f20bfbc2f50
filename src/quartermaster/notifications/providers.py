"""The channels' adapters to the world: console (the log), WhatsApp Cloud API (template messages
in Meta's Graph API wire format), SMS in Twilio's Messages API format, and e-mail over SMTP
(smtp.py).

Each sends one notification and says how it went as an outbox `Attempt`; none writes to the
database. Base URLs and credentials come from settings (QM_WHATSAPP_*, QM_SMS_*) and are never
logged nor put in an error message. Every request carries the notification's dedupe key
(`Idempotency-Key`, and for WhatsApp `biz_opaque_callback_data`, which Meta echoes in its
status webhooks): delivery is at least once, so a provider or the reader can spot a copy.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from django.conf import settings

from quartermaster.core.outbox import Attempt, Failed, Sent
from quartermaster.notifications import messages
from quartermaster.notifications.invariants import Channel
from quartermaster.notifications.models import Notification

logger = logging.getLogger(__name__)

MAX_RETRY_AFTER_S = 3600.0
USER_AGENT = "quartermaster-notifications"


def send(notification: Notification) -> Attempt:
    if notification.channel == Channel.WHATSAPP:
        return send_whatsapp(notification)
    if notification.channel == Channel.SMS:
        return send_sms(notification)
    if notification.channel == Channel.CONSOLE:
        return send_console(notification)
    if notification.channel == Channel.EMAIL:
        # Imported here: the SMTP adapter pulls in Django's mail machinery only when used.
        from quartermaster.notifications.smtp import send_email

        return send_email(notification)
    return Failed(f"no provider for the {notification.channel} channel", retryable=False)


def send_console(notification: Notification) -> Attempt:
    """The default channel: the message goes to the log (a trial install, a developer)."""
    text = messages.render(notification.template, notification.language, notification.params)
    logger.info("notification to %s [%s]: %s", notification.recipient, notification.id, text)
    return Sent(f"console-{notification.id}")


def send_whatsapp(notification: Notification) -> Attempt:
    """POST {base}/{phone_number_id}/messages: a template message, its body parameters in the
    template's order."""
    if not (settings.WHATSAPP_TOKEN and settings.WHATSAPP_PHONE_NUMBER_ID):
        return Failed("WhatsApp is not configured", retryable=False)
    body = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": notification.recipient,
        "type": "template",
        "template": {
            "name": notification.template,
            "language": {"code": notification.language},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": value}
                        for value in messages.ordered_params(
                            notification.template, notification.params
                        )
                    ],
                }
            ],
        },
        "biz_opaque_callback_data": notification.dedupe_key,
    }
    url = f"{settings.WHATSAPP_BASE_URL.rstrip('/')}/{settings.WHATSAPP_PHONE_NUMBER_ID}/messages"
    headers = {
        "Authorization": f"Bearer {settings.WHATSAPP_TOKEN}",
        "Idempotency-Key": notification.dedupe_key,
        "User-Agent": USER_AGENT,
    }
    return _post(url, json=body, headers=headers, reference=_whatsapp_id)


def send_sms(notification: Notification) -> Attempt:
    """POST {base}/2010-04-01/Accounts/{sid}/Messages.json, basic auth, form-encoded."""
    if not (settings.SMS_ACCOUNT_SID and settings.SMS_AUTH_TOKEN and settings.SMS_FROM):
        return Failed("SMS is not configured", retryable=False)
    text = messages.render(notification.template, notification.language, notification.params)
    url = (
        f"{settings.SMS_BASE_URL.rstrip('/')}/2010-04-01/Accounts/"
        f"{settings.SMS_ACCOUNT_SID}/Messages.json"
    )
    return _post(
        url,
        data={"To": f"+{notification.recipient}", "From": settings.SMS_FROM, "Body": text},
        auth=(settings.SMS_ACCOUNT_SID, settings.SMS_AUTH_TOKEN),
        headers={"Idempotency-Key": notification.dedupe_key, "User-Agent": USER_AGENT},
        reference=lambda reply: str(reply.get("sid", "")),
    )


def _whatsapp_id(reply: dict[str, Any]) -> str:
    found = reply.get("messages")
    if isinstance(found, list) and found and isinstance(found[0], dict):
        return str(found[0].get("id", ""))
    return ""


def _post(
    url: str,
    *,
    reference: Any,
    headers: dict[str, str],
    json: Any = None,
    data: dict[str, str] | None = None,
    auth: tuple[str, str] | None = None,
) -> Attempt:
    try:
        reply = httpx.post(
            url,
            json=json,
            data=data,
            auth=auth,
            headers=headers,
            timeout=settings.NOTIFY_TIMEOUT_S,
        )
    except httpx.TimeoutException:
        return Failed("timed out")
    except httpx.TransportError as exc:
        # The exception's text may name the URL; its class says enough.
        return Failed(f"connection failed ({type(exc).__name__})")
    if reply.is_success:
        parsed = _json(reply)
        return Sent(reference(parsed) if isinstance(parsed, dict) else "")
    return _failure(reply)


def _failure(reply: httpx.Response) -> Failed:
    """A provider's refusal: 429 (with its Retry-After), 408 and 5xx are worth retrying; any
    other 4xx (a bad number, a template Meta does not know, bad credentials) is not."""
    detail = _error_detail(_json(reply))
    error = f"HTTP {reply.status_code}" + (f": {detail}" if detail else "")
    if reply.status_code == 429:
        return Failed(error, retry_after_s=retry_after_s(reply.headers.get("Retry-After")))
    retryable = reply.status_code == 408 or reply.status_code >= 500
    return Failed(error, retryable=retryable)


def _json(reply: httpx.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


def _error_detail(parsed: Any) -> str:
    """Meta: {"error": {"message", "code"}}; Twilio: {"code", "message"}."""
    if not isinstance(parsed, dict):
        return ""
    nested = parsed.get("error")
    error: dict[str, Any] = nested if isinstance(nested, dict) else parsed
    message = str(error.get("message", ""))[:200]
    code = error.get("code")
    return f"{code} {message}".strip() if code is not None else message


def retry_after_s(value: str | None) -> float | None:
    """Retry-After as seconds (a number of seconds or an HTTP date), capped at an hour."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
