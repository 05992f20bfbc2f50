"""Pure rules of notifications: channels, the status a provider's report moves a message to,
phone numbers as providers want them, webhook signatures and payloads. No database access."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import unicodedata
from dataclasses import dataclass

from django.db import models
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quartermaster.core.errors import Invalid


class Channel(models.TextChoices):
    WHATSAPP = "whatsapp"
    SMS = "sms"
    EMAIL = "email"
    CONSOLE = "console"


class Status(models.TextChoices):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"


# A provider's reports arrive out of order and more than once: a message only moves forward.
_PROGRESS = {Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3}
# Reports before our worker recorded the send (the provider was faster) count too.
_IN_FLIGHT = frozenset({Status.QUEUED, Status.SENDING})


def after_report(current: str, reported: str) -> str | None:
    """The status a provider's report (`sent`, `delivered`, `read`, `failed`) moves a message
    in `current` to, or None: no change (a late, repeated or unknown report)."""
    if reported == Status.FAILED:
        # Read is final: a message the person read did not fail.
        return Status.FAILED if current in {*_IN_FLIGHT, Status.SENT, Status.DELIVERED} else None
    if reported not in _PROGRESS:
        return None
    if current in _IN_FLIGHT or (
        current in _PROGRESS and _PROGRESS[Status(current)] < _PROGRESS[Status(reported)]
    ):
        return reported
    return None


def after_send(current: str) -> str:
    """A provider took the message: `sent`, unless its reports already moved it further."""
    return Status.SENT if current in _IN_FLIGHT else current


_DIGITS = re.compile(r"\+?[0-9]{8,15}")


def provider_phone(number: str, default_country_code: str) -> str:
    """A stored phone number as E.164 digits without '+', as WhatsApp sends and takes them:
    '+91 98765 43210' and '9876543210' (with country code 91) are both '919876543210'."""
    compact = re.sub(r"[\s-]", "", number)
    if not _DIGITS.fullmatch(compact):
        raise Invalid.field("recipient", "8 to 15 digits, optionally after a leading '+'")
    if compact.startswith("+"):
        return compact[1:]
    if len(compact) == 10 and default_country_code:
        return default_country_code + compact
    return compact


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Meta's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, app secret>`.
    No secret configured verifies nothing."""
    if not secret or not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip().lower())


def sign(secret: str, body: bytes) -> str:
    """The header value `verify_signature` accepts (what Meta sends; tests sign with it)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class StatusReport:
    """A provider's report on a message we sent: `reference` is its id for it, `dedupe_key`
    the key we sent with it (Meta echoes it as biz_opaque_callback_data)."""

    reference: str
    status: str
    dedupe_key: str = ""
    error: str = ""


@dataclass(frozen=True)
class InboundMessage:
    """A text someone sent to our WhatsApp number; `sender` in E.164 digits."""

    id: str
    sender: str
    text: str


@dataclass(frozen=True)
class WebhookEvents:
    reports: tuple[StatusReport, ...]
    messages: tuple[InboundMessage, ...]


# Meta's payload, read leniently (it adds fields over time) but typed.
class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Error(_Lenient):
    code: int | None = None
    title: str = ""
    message: str = ""


class _Status(_Lenient):
    id: str
    status: str
    biz_opaque_callback_data: str = ""
    errors: list[_Error] = []


class _Text(_Lenient):
    body: str = ""


class _Inbound(_Lenient):
    id: str
    type: str = "text"
    text: _Text | None = None
    sender: str = Field(default="", alias="from")


class _Value(_Lenient):
    statuses: list[_Status] = []
    messages: list[_Inbound] = []


class _Change(_Lenient):
    field: str = ""
    value: _Value


class _Entry(_Lenient):
    changes: list[_Change] = []


class _Payload(_Lenient):
    object: str
    entry: list[_Entry] = []


MAX_TEXT = 1000


def parse_whatsapp_webhook(body: bytes) -> WebhookEvents:
    """The status reports and text messages of a WhatsApp Cloud API webhook; Invalid for a
    body that is not one."""
    try:
        payload = _Payload.model_validate(json.loads(body))
    except (ValueError, ValidationError, RecursionError) as exc:
        raise Invalid.field("body", "not a WhatsApp webhook payload") from exc
    reports: list[StatusReport] = []
    messages: list[InboundMessage] = []
    for entry in payload.entry:
        for change in entry.changes:
            for status in change.value.statuses:
                error = "; ".join(f"{e.code} {e.title or e.message}".strip() for e in status.errors)
                reports.append(
                    StatusReport(
                        reference=_storable(status.id, 200),
                        status=status.status,
                        dedupe_key=_storable(status.biz_opaque_callback_data, 200),
                        error=_storable(error, 500),
                    )
                )
            for inbound in change.value.messages:
                sender = inbound.sender.lstrip("+")
                if (
                    inbound.type != "text"
                    or inbound.text is None
                    or not (sender.isascii() and sender.isdigit())
                ):
                    continue
                messages.append(
                    InboundMessage(
                        id=_storable(inbound.id, 200),
                        sender=sender[:20],
                        text=_storable(inbound.text.body, MAX_TEXT),
                    )
                )
    return WebhookEvents(tuple(reports), tuple(messages))


def _storable(text: str, limit: int) -> str:
    """`text` as any database stores it: no NUL, no lone surrogate (JSON may carry both)."""
    return text.encode("utf-8", "ignore").decode("utf-8").replace("\x00", "")[:limit]


def normalize_text(text: str) -> str:
    """For matching a keyword: NFC (Tamil typed on phones arrives in either form), case-folded,
    trimmed, without trailing punctuation."""
    return unicodedata.normalize("NFC", text).casefold().strip().rstrip("?!.")


# An address as mail servers take it: one @, no spaces or angle brackets, a dotted domain. The
# notification's recipient column holds 100 characters; a longer address is refused, named.
_EMAIL = re.compile(r"[^@\s<>,;\"]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
MAX_EMAIL_LENGTH = 100


def clean_email(value: str, field: str = "to") -> str:
    address = value.strip()
    if len(address) > MAX_EMAIL_LENGTH or not _EMAIL.fullmatch(address) or not address.isascii():
        raise Invalid.field(field, f"an e-mail address of at most {MAX_EMAIL_LENGTH} characters")
    return address


def clean_status(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if value not in Status.values:
        raise Invalid.field("status", f"one of {', '.join(Status.values)}")
    return value


def clean_recipient(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > 100 or "\x00" in value:
        raise Invalid.field("recipient", "at most 100 characters")
    return value.lstrip("+")
