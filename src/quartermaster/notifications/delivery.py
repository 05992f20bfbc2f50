"""The outbox's deliverer of notifications: the worker's claim and each attempt's outcome
become commands (audited, as every change of a notification is); the send goes through the
notification's channel (providers.py) with no transaction open."""

from __future__ import annotations

from uuid import UUID

from quartermaster.core.commands import Command, execute
from quartermaster.core.outbox import Attempt, Claimed, Failed, Sent, Verdict
from quartermaster.core.types import SYSTEM_ACTOR, Context
from quartermaster.notifications import attachments, providers
from quartermaster.notifications.invariants import Status
from quartermaster.notifications.selectors import get_notification
from quartermaster.notifications.services import KIND, MarkSending, RecordAttempt

__all__ = ["KIND", "NotificationDeliverer"]

# A provider already has these: a copy of the message (a lease that ran out after the send
# was recorded) is not sent again.
_ALREADY_SENT = frozenset({Status.SENT, Status.DELIVERED, Status.READ})


def _run(command: Command) -> None:
    response = execute(command, Context(actor=SYSTEM_ACTOR))
    if response.status >= 300:
        # Raised inside the outbox's transaction: the claim or verdict rolls back with it.
        raise RuntimeError(f"{command.name} answered {response.status}: {response.body}")


class NotificationDeliverer:
    def claimed(self, message: Claimed) -> None:
        _run(MarkSending(id=UUID(message.ref)))

    def send(self, message: Claimed) -> Attempt:
        notification = get_notification(UUID(message.ref))
        if notification is None:
            return Failed("the notification no longer exists", retryable=False)
        if notification.status in _ALREADY_SENT:
            return Sent(notification.provider_message_id)
        return providers.send(notification)

    def settled(self, message: Claimed, attempt: Attempt, verdict: Verdict) -> None:
        _run(
            RecordAttempt(
                id=UUID(message.ref),
                verdict=verdict.state,
                reference=attempt.reference if isinstance(attempt, Sent) else "",
                error=attempt.error if isinstance(attempt, Failed) else "",
            )
        )
        if verdict.state == "done":
            _after_sent(UUID(message.ref))


def _after_sent(notification_id: UUID) -> None:
    """What the producer asked to happen once its message went out (an invoice becomes
    `emailed`), in the transaction that records the send: both commit, or neither."""
    notification = get_notification(notification_id)
    hook = attachments.sent_hook(notification.template) if notification else None
    command = hook(notification.params) if hook and notification else None
    if command is not None:
        _run(command)
