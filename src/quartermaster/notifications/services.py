"""Command handlers for notifications, and `notify`, which a producer's handler calls.

Every status change of a notification is a command, audited like any other change: the
worker's claim (`notification.sending`) and each attempt's outcome (`notification.attempt`) run
inside the outbox's own transactions (core.outbox), a provider's report
(`notification.report`) and a person's retry (`notification.retry`) through `execute`.
Notifications are not replicated to devices (`publish=False`): audited, not in the feed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Literal
from uuid import UUID, uuid4

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from quartermaster.core import outbox
from quartermaster.core.commands import Command
from quartermaster.core.errors import Conflict, NotFound
from quartermaster.core.rows import insert_new_rows, new_row
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.notifications import messages
from quartermaster.notifications.invariants import (
    Channel,
    Status,
    after_report,
    after_send,
    clean_email,
)
from quartermaster.notifications.invariants import provider_phone as e164
from quartermaster.notifications.models import Notification
from quartermaster.notifications.selectors import (
    NotificationView,
    by_dedupe_key,
    find_reported,
    notification_view,
)

KIND = "notification"
ENTITY = "notification"


class NotFailed(Conflict):
    code = "notification_not_failed"

    def __init__(self, status: str) -> None:
        super().__init__(f"only a failed notification is retried; this one is {status}")


@dataclass(frozen=True)
class Addressee:
    """Whom a producer notifies: numbers as stored (any format `clean_phone` takes); the name
    addresses a console message to someone without a number."""

    name: str
    language: str
    whatsapp: str = ""
    phone: str = ""


def whatsapp_configured() -> bool:
    return bool(settings.WHATSAPP_TOKEN and settings.WHATSAPP_PHONE_NUMBER_ID)


def sms_configured() -> bool:
    return bool(settings.SMS_ACCOUNT_SID and settings.SMS_AUTH_TOKEN and settings.SMS_FROM)


def _route(addressee: Addressee) -> tuple[str, str, str]:
    """(channel, recipient, fallback recipient): WhatsApp when the person has a number and it
    is configured, with SMS as the fallback when that is too; else SMS; else the console."""
    code = settings.NOTIFY_DEFAULT_COUNTRY_CODE
    phone = e164(addressee.phone, code) if addressee.phone else ""
    if addressee.whatsapp and whatsapp_configured():
        return Channel.WHATSAPP, e164(addressee.whatsapp, code), phone if sms_configured() else ""
    if phone and sms_configured():
        return Channel.SMS, phone, ""
    whatsapp = e164(addressee.whatsapp, code) if addressee.whatsapp else ""
    return Channel.CONSOLE, whatsapp or phone or addressee.name[:100], ""


@dataclass(frozen=True)
class Notice:
    """One message a producer queues: to whom, which template with which parameters, and the
    key naming the event (e.g. "market.entry.recorded:<id>"): it makes a re-run safe and
    travels to the provider with every attempt."""

    addressee: Addressee
    template: str
    params: dict[str, str]
    dedupe_key: str


def notify(
    addressee: Addressee, *, template: str, params: dict[str, str], dedupe_key: str
) -> list[Change]:
    """Queue a message to `addressee` in the calling handler's transaction; return the changes
    for its Outcome (none when `dedupe_key` was queued before: producing it again is a no-op)."""
    [changes] = notify_many([Notice(addressee, template, params, dedupe_key)])
    return changes


def notify_many(notices: Sequence[Notice]) -> list[list[Change]]:
    """`notify` for many notices at once, in the caller's transaction: one statement for the
    notifications and one for their outbox messages; each notice's changes (none when its key
    was queued before, or earlier in `notices`). The unique dedupe key decides which are new
    (`ON CONFLICT DO NOTHING`): no look-up first, no savepoint."""
    for notice in notices:
        messages.clean_message(notice.template, notice.addressee.language, notice.params)
    now = timezone.now()
    rows = [_notification_row(notice, now) for notice in notices]
    inserted = insert_new_rows(Notification, rows)
    outbox.enqueue_many(
        [outbox.Message(KIND, str(row.id), row.dedupe_key) for row in rows if row.pk in inserted]
    )
    return [
        [Change(ENTITY, str(row.id), None, notification_view(row), publish=False)]
        if row.pk in inserted
        else []
        for row in rows
    ]


def _notification_row(notice: Notice, now: datetime) -> Notification:
    channel, recipient, fallback = _route(notice.addressee)
    return new_row(
        Notification,
        id=uuid4(),
        channel=channel,
        template=notice.template,
        language=notice.addressee.language,
        recipient=recipient or "-",
        params=notice.params,
        status=Status.QUEUED,
        attempts=0,
        last_error="",
        dedupe_key=notice.dedupe_key,
        provider_message_id="",
        fallback_recipient=fallback,
        fallback_of_id=None,
        created_at=now,
        updated_at=now,
    )


def queue_email(
    to: str, *, language: str, template: str, params: dict[str, str], dedupe_key: str
) -> list[Change]:
    """Queue an e-mail to the address `to` in the calling handler's transaction (its
    attachments, if its template has a builder, are made at send time); the changes for the
    caller's Outcome, none when `dedupe_key` was queued before."""
    messages.clean_message(template, language, params)
    address = clean_email(to)
    if by_dedupe_key(dedupe_key) is not None:
        return []
    return [_queue(Channel.EMAIL, address, "", template, language, params, dedupe_key)]


def _queue(
    channel: str,
    recipient: str,
    fallback: str,
    template: str,
    language: str,
    params: dict[str, str],
    dedupe_key: str,
    fallback_of: Notification | None = None,
) -> Change:
    notification = Notification.objects.create(
        channel=channel,
        template=template,
        language=language,
        recipient=recipient or "-",
        params=params,
        dedupe_key=dedupe_key,
        fallback_recipient=fallback,
        fallback_of=fallback_of,
    )
    outbox.enqueue(outbox.Message(KIND, str(notification.id), dedupe_key))
    view = notification_view(notification)
    return Change(ENTITY, str(view.id), None, view, publish=False)


def _sms_fallback(failed: Notification) -> list[Change]:
    """WhatsApp failed for good: the same message by SMS, if the person has a phone."""
    if failed.channel != Channel.WHATSAPP or not failed.fallback_recipient:
        return []
    key = f"{failed.dedupe_key}/sms"
    if by_dedupe_key(key) is not None:
        return []
    return [
        _queue(
            Channel.SMS,
            failed.fallback_recipient,
            "",
            failed.template,
            failed.language,
            failed.params,
            key,
            fallback_of=failed,
        )
    ]


def _locked(notification_id: UUID) -> Notification:
    notification = Notification.objects.select_for_update().filter(pk=notification_id).first()
    if notification is None:
        raise NotFound()
    return notification


def _changed(notification_id: UUID, before: NotificationView, **values: object) -> Change:
    Notification.objects.filter(pk=notification_id).update(updated_at=timezone.now(), **values)
    after = notification_view(Notification.objects.get(pk=notification_id))
    return Change(ENTITY, str(after.id), before, after, publish=False)


class MarkSending(Command):
    """The worker claimed the notification for an attempt (system actor, in the claim's
    transaction)."""

    name = "notification.sending"
    syncable: ClassVar[bool] = False
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        notification = _locked(self.id)
        before = notification_view(notification)
        status = Status.SENDING if notification.status == Status.QUEUED else notification.status
        change = _changed(self.id, before, status=status, attempts=F("attempts") + 1)
        return Outcome(200, change.after, [change])


class RecordAttempt(Command):
    """The outcome of one attempt, as the outbox judged it: `done` (the provider took it),
    `retry` (queued again after a back-off) or `dead` (failed for good: SMS fallback)."""

    name = "notification.attempt"
    syncable: ClassVar[bool] = False
    id: UUID
    verdict: Literal["done", "retry", "dead"]
    reference: str = ""
    error: str = ""

    def handle(self, ctx: Context) -> Outcome:
        notification = _locked(self.id)
        before = notification_view(notification)
        if self.verdict == "done":
            change = _changed(
                self.id,
                before,
                status=after_send(notification.status),
                provider_message_id=self.reference or notification.provider_message_id,
                last_error="",
            )
            return Outcome(200, change.after, [change])
        if self.verdict == "retry":
            status = Status.QUEUED if notification.status == Status.SENDING else notification.status
            change = _changed(self.id, before, status=status, last_error=self.error[:500])
            return Outcome(200, change.after, [change])
        change = _changed(self.id, before, status=Status.FAILED, last_error=self.error[:500])
        return Outcome(200, change.after, [change, *_sms_fallback(notification)])


class RecordReport(Command):
    """A provider's status report (webhook): sent → delivered → read, or failed (then the SMS
    fallback). Late and repeated reports change nothing."""

    name = "notification.report"
    syncable: ClassVar[bool] = False
    reference: str
    dedupe_key: str = ""
    status: str
    error: str = ""

    def handle(self, ctx: Context) -> Outcome:
        found = find_reported(self.reference, self.dedupe_key)
        if found is None:
            return Outcome(200, {"matched": False})
        notification = _locked(found.pk)
        new_status = after_report(notification.status, self.status)
        if new_status is None:
            return Outcome(200, {"matched": True, "changed": False})
        before = notification_view(notification)
        values: dict[str, object] = {"status": new_status}
        if self.reference and not notification.provider_message_id:
            values["provider_message_id"] = self.reference
        if new_status == Status.FAILED:
            values["last_error"] = (self.error or "reported failed by the provider")[:500]
        change = _changed(found.pk, before, **values)
        fallback = _sms_fallback(notification) if new_status == Status.FAILED else []
        return Outcome(200, {"matched": True, "changed": True}, [change, *fallback])


class RetryNotification(Command):
    """A person sends a failed notification again: back to `queued`, with a fresh round of
    attempts."""

    name = "notification.retry"
    syncable: ClassVar[bool] = False
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        notification = _locked(self.id)
        if notification.status != Status.FAILED:
            raise NotFailed(notification.status)
        before = notification_view(notification)
        change = _changed(self.id, before, status=Status.QUEUED)
        outbox.rearm(outbox.Message(KIND, str(self.id), notification.dedupe_key))
        return Outcome(200, change.after, [change])
