"""The email channel's adapter: one message over SMTP with Django's SMTP backend, its attachments
built at send time by whoever produced the notification (`attachments.build`).

Like the other adapters it writes nothing and says how it went as an outbox `Attempt`. A
temporary refusal (an SMTP 4xx reply: 421 busy, 451 try later), a dropped or refused
connection and a timeout are retried by the outbox's back-off like any channel's failure; a
permanent one (a 5xx reply: unknown mailbox, relaying denied, bad credentials) is not. The
notification's dedupe key goes out as the Message-ID's left part and in `X-Dedupe-Key`, so a
copy sent twice (delivery is at least once) is recognisable. Credentials are never logged.
"""

from __future__ import annotations

import smtplib
import ssl

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from quartermaster.core.outbox import Attempt, Failed, Sent
from quartermaster.notifications import attachments, messages
from quartermaster.notifications.models import Notification


def configured() -> bool:
    return bool(settings.SMTP_HOST)


def send_email(notification: Notification) -> Attempt:
    if not configured():
        return Failed("email (SMTP) is not configured", retryable=False)
    try:
        files = attachments.build(notification.template, notification.params, notification.language)
    except attachments.Gone as exc:
        return Failed(str(exc), retryable=False)
    subject, body = messages.email_parts(
        notification.template, notification.language, notification.params
    )
    message_id = f"<{_local_part(notification.dedupe_key)}@{settings.SMTP_HOST}>"
    email = EmailMessage(
        subject=subject,
        body=body,
        from_email=settings.SMTP_FROM,
        to=[notification.recipient],
        headers={"Message-ID": message_id, "X-Dedupe-Key": notification.dedupe_key},
    )
    for file in files:
        email.attach(file.filename, file.content, file.content_type)
    return _deliver(email, message_id)


def _deliver(email: EmailMessage, message_id: str) -> Attempt:
    tls = settings.SMTP_TLS
    connection = get_connection(
        "django.core.mail.backends.smtp.EmailBackend",
        host=settings.SMTP_HOST,
        port=settings.SMTP_PORT,
        username=settings.SMTP_USER or None,
        password=settings.SMTP_PASSWORD or None,
        use_tls=tls == "starttls",
        use_ssl=tls == "ssl",
        timeout=settings.NOTIFY_TIMEOUT_S,
        fail_silently=False,
    )
    try:
        sent = connection.send_messages([email])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        return Failed(f"recipient refused (SMTP {codes[0] if codes else '?'})", _temporary(codes))
    except smtplib.SMTPResponseException as exc:
        return Failed(f"SMTP {exc.smtp_code}: {_text(exc.smtp_error)}", _temporary([exc.smtp_code]))
    except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        # Refused or dropped connection, a timeout, a TLS failure: the server may be back soon.
        return Failed(f"SMTP connection failed ({type(exc).__name__})")
    if not sent:
        return Failed("the SMTP server took no message")
    return Sent(message_id)


def _temporary(codes: list[int]) -> bool:
    """SMTP's own rule: 4xx is "try again later", 5xx is final."""
    return bool(codes) and all(400 <= code < 500 for code in codes)


def _text(error: bytes | str) -> str:
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return text[:200]


def _local_part(dedupe_key: str) -> str:
    """A Message-ID's left part from the dedupe key: only characters an address allows."""
    return "".join(c if c.isalnum() or c in ".-_" else "." for c in dedupe_key)[:120]
