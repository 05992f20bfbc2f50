"""The transactional outbox: every side effect outside the database leaves through it.

    a command handler calls `enqueue` inside its own transaction → commit (a rolled-back
    command leaves no message, so nothing is sent for it) → a worker claims one due message
    and leases it → the message's deliverer sends it with no transaction open → `settle`:
    done, again after a back-off, or dead after OUTBOX_MAX_ATTEMPTS

Claiming: `SELECT … FOR UPDATE SKIP LOCKED` on PostgreSQL, so concurrent workers never wait on
each other's rows; on SQLite (one writer at a time) the same conditional UPDATE that takes the
lease decides. Either way a claim is a lease (`leased_until`) committed before the send: the
send holds no lock, and a worker killed mid-send leaves the message to be claimed again when
the lease runs out. Delivery is therefore AT LEAST ONCE: a provider may receive a message
twice (the first send reached it, the worker died before recording it). Deliverers send the
message's dedupe key with every attempt so a provider (or the recipient) can tell the copies
apart; the docs (README, "Notifications") say so.

What is sent lives in a domain record (a notification) that `Message.ref` names; the outbox
holds only queue bookkeeping. Domains register a `Deliverer` per `kind` at start-up
(AppConfig.ready), as identity installs the permission policy: core imports no domain.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Protocol
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from quartermaster.core.models import OutboxMessage
from quartermaster.core.rows import insert_new_rows, new_row

logger = logging.getLogger(__name__)

# Seconds before attempt n+1, for n = 1, 2, …: 1, 2, 4, 8, 16, then 16 (scaled, jittered).
BACKOFF_BASE_S = 1.0
BACKOFF_CAP_S = 16.0
JITTER = 0.25  # each wait is its nominal length ± 25 %, so retries of a burst spread out
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True)
class Message:
    """What a command enqueues: which deliverer sends it (`kind`), the record it delivers
    (`ref`), and the key that makes enqueueing it twice a no-op and reaches the provider."""

    kind: str
    ref: str
    dedupe_key: str


@dataclass(frozen=True)
class Claimed:
    """A message a worker holds until its lease runs out; `attempt` counts from 1."""

    id: UUID
    kind: str
    ref: str
    dedupe_key: str
    attempt: int
    lease_token: str


@dataclass(frozen=True)
class Sent:
    """The provider took the message; `reference` is its id for it (for status callbacks)."""

    reference: str = ""


@dataclass(frozen=True)
class Failed:
    """The attempt failed. `retryable`: worth another attempt (a 5xx, a timeout, a 429);
    `retry_after_s`: the provider asked us to wait at least that long."""

    error: str
    retryable: bool = True
    retry_after_s: float | None = None


Attempt = Sent | Failed


@dataclass(frozen=True)
class Verdict:
    """What the outbox made of an attempt: `done`, `retry` at `retry_at`, or `dead` (no more
    attempts: a person may re-arm it)."""

    state: Literal["done", "retry", "dead"]
    attempts: int
    retry_at: datetime | None = None
    wait_s: float = 0.0


class Deliverer(Protocol):
    """Sends one kind of message. `claimed` and `settled` run inside the outbox's transactions
    (run commands there: the record's bookkeeping commits with the claim or the verdict);
    `send` runs with no transaction open and must not write."""

    def claimed(self, message: Claimed) -> None: ...

    def send(self, message: Claimed) -> Attempt: ...

    def settled(self, message: Claimed, attempt: Attempt, verdict: Verdict) -> None: ...


_deliverers: dict[str, Deliverer] = {}


def register(kind: str, deliverer: Deliverer) -> None:
    _deliverers[kind] = deliverer


def enqueue(message: Message) -> bool:
    """Queue `message` in the caller's transaction (a command handler's); False when a message
    of that kind and key is already queued (or was sent): nothing is added."""
    return bool(enqueue_many([message]))


def enqueue_many(messages: Sequence[Message]) -> list[Message]:
    """Queue `messages` in the caller's transaction, in one statement; the ones queued now. A
    message whose kind and key are queued already (or sent), by an earlier command or a
    concurrent one, or earlier in `messages`, is skipped: the unique key decides (`ON CONFLICT
    DO NOTHING`), with no look-up first and no savepoint."""
    if not connection.in_atomic_block:
        # Outside a transaction the message would commit even if the command rolled back.
        raise RuntimeError("enqueue inside the command's transaction")
    now = timezone.now()
    rows = [
        new_row(
            OutboxMessage,
            id=uuid.uuid4(),
            kind=message.kind,
            ref=message.ref,
            dedupe_key=message.dedupe_key,
            state="pending",
            attempts=0,
            available_at=now,
            leased_until=None,
            lease_token="",
            last_error="",
            created_at=now,
            updated_at=now,
        )
        for message in messages
    ]
    inserted = insert_new_rows(OutboxMessage, rows)
    return [message for message, row in zip(messages, rows, strict=True) if row.pk in inserted]


def rearm(message: Message) -> None:
    """Queue a dead (or done) message again, due now, with a fresh count of attempts; one that
    was never queued is queued now. Inside the caller's transaction, like `enqueue`."""
    if not connection.in_atomic_block:
        raise RuntimeError("rearm inside the command's transaction")
    now = timezone.now()
    rearmed = OutboxMessage.objects.filter(kind=message.kind, dedupe_key=message.dedupe_key).update(
        state="pending",
        attempts=0,
        available_at=now,
        leased_until=None,
        lease_token="",
        last_error="",
        updated_at=now,
    )
    if not rearmed:
        enqueue(message)


def backoff_s(attempt: int, *, scale: float, jitter: float) -> float:
    """The wait after failed attempt `attempt` (1-based): 1, 2, 4, 8, 16 s, capped at 16,
    times `scale`, times 1 + `jitter` (in [-JITTER, JITTER])."""
    nominal = min(BACKOFF_BASE_S * 2 ** (max(attempt, 1) - 1), BACKOFF_CAP_S)
    return nominal * scale * (1.0 + jitter)


def decide(
    attempt_number: int,
    attempt: Attempt,
    *,
    now: datetime,
    max_attempts: int,
    scale: float,
    jitter: float,
) -> Verdict:
    """Pure: the verdict on attempt `attempt_number`. A provider's Retry-After is honoured
    (scaled like every wait) when it is longer than the back-off."""
    if isinstance(attempt, Sent):
        return Verdict("done", attempt_number)
    if not attempt.retryable or attempt_number >= max_attempts:
        return Verdict("dead", attempt_number)
    wait_s = backoff_s(attempt_number, scale=scale, jitter=jitter)
    if attempt.retry_after_s is not None:
        wait_s = max(wait_s, attempt.retry_after_s * scale)
    return Verdict("retry", attempt_number, now + timedelta(seconds=wait_s), wait_s)


def _due(now: datetime, due_by: datetime) -> Q:
    return Q(state="pending", available_at__lte=min(now, due_by)) & (
        Q(leased_until__isnull=True) | Q(leased_until__lte=now)
    )


def claim_next(*, lease_s: float, due_by: datetime) -> Claimed | None:
    """Lease the next message due by `due_by` (and now) to this worker and run its
    deliverer's `claimed` hook, in one transaction; None when nothing is due."""
    while True:
        with transaction.atomic():
            now = timezone.now()
            due = _due(now, due_by)
            query = OutboxMessage.objects.filter(due).order_by("available_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                # Rows another worker is claiming right now are skipped, not waited for.
                query = query.select_for_update(skip_locked=True)
            row = query.first()
            if row is None:
                return None
            token = uuid.uuid4().hex
            # Conditional: on SQLite this UPDATE is the claim (the row may have been taken
            # since it was read); on PostgreSQL the row lock already made it ours.
            taken = (
                OutboxMessage.objects.filter(due, pk=row.pk).update(
                    leased_until=now + timedelta(seconds=lease_s),
                    lease_token=token,
                    attempts=F("attempts") + 1,
                    updated_at=now,
                )
                == 1
            )
            if taken:
                claimed = Claimed(
                    row.pk, row.kind, row.ref, row.dedupe_key, row.attempts + 1, token
                )
                if _run_claimed_hook(claimed):
                    return claimed


def _run_claimed_hook(message: Claimed) -> bool:
    """The deliverer's `claimed` hook in a savepoint; a message nobody can deliver (no
    deliverer, or its hook fails) is dead at once, instead of being claimed forever."""
    deliverer = _deliverers.get(message.kind)
    error = f"no deliverer for {message.kind!r}"
    if deliverer is not None:
        try:
            with transaction.atomic():
                deliverer.claimed(message)
            return True
        except Exception as exc:
            logger.exception("outbox: claiming %s:%s failed", message.kind, message.ref)
            error = f"claim failed: {exc!r}"
    OutboxMessage.objects.filter(pk=message.id).update(
        state="dead", leased_until=None, lease_token="", last_error=error[:MAX_ERROR_LENGTH]
    )
    return False


def send(message: Claimed) -> Attempt:
    """The deliverer's attempt; an exception is a retryable failure (a bug in a deliverer must
    not lose the message)."""
    try:
        return _deliverers[message.kind].send(message)
    except Exception as exc:
        logger.exception("outbox: sending %s:%s raised", message.kind, message.ref)
        return Failed(f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])


def settle(message: Claimed, attempt: Attempt, *, rng: random.Random) -> Verdict | None:
    """Record the attempt's verdict on the message and run its deliverer's `settled` hook, in
    one transaction. None: the lease was lost (another worker claimed the message after it ran
    out), and that worker's attempt is the one recorded."""
    with transaction.atomic():
        now = timezone.now()
        verdict = decide(
            message.attempt,
            attempt,
            now=now,
            max_attempts=settings.OUTBOX_MAX_ATTEMPTS,
            scale=settings.OUTBOX_BACKOFF_SCALE,
            jitter=rng.uniform(-JITTER, JITTER),
        )
        error = attempt.error[:MAX_ERROR_LENGTH] if isinstance(attempt, Failed) else ""
        state = "pending" if verdict.state == "retry" else verdict.state
        ours = OutboxMessage.objects.filter(
            pk=message.id, state="pending", lease_token=message.lease_token
        ).update(
            state=state,
            available_at=verdict.retry_at or now,
            leased_until=None,
            lease_token="",
            last_error=error,
            updated_at=now,
        )
        if not ours:
            return None
        _deliverers[message.kind].settled(message, attempt, verdict)
        return verdict


def next_wake() -> datetime | None:
    """When something may next be due: the earliest back-off or lease to run out; None when
    nothing is pending."""
    earliest: datetime | None = None
    pending = OutboxMessage.objects.filter(state="pending").order_by("available_at")
    for available_at, leased_until in pending.values_list("available_at", "leased_until")[:100]:
        wake = max(available_at, leased_until) if leased_until else available_at
        earliest = wake if earliest is None else min(earliest, wake)
    return earliest


@dataclass
class Worker:
    """Claims, sends and settles messages until stopped (`stop`), or, with `drain`, until none
    is pending. `report` receives one line per attempt (the CLI prints them)."""

    report: Callable[[str], None]
    stop: threading.Event = field(default_factory=threading.Event)
    rng: random.Random = field(default_factory=random.Random)
    sent: int = 0
    retried: int = 0
    dead: int = 0

    def run_once(self) -> int:
        """Attempt every message due now (not those that come due meanwhile: a failed attempt
        is not retried within one pass); how many were attempted."""
        attempted = 0
        started = timezone.now()
        while not self.stop.is_set():
            message = claim_next(lease_s=settings.OUTBOX_LEASE_S, due_by=started)
            if message is None:
                break
            attempted += 1
            self._attempt(message)
        return attempted

    def run(self, *, drain: bool = False) -> None:
        while not self.stop.is_set():
            try:
                self.run_once()
            except Exception:
                if drain:
                    raise
                # The database went away, say: a long-running worker waits and tries again.
                logger.exception("outbox: a pass failed; trying again shortly")
                self.stop.wait(settings.OUTBOX_POLL_S)
                continue
            wake = next_wake()
            if wake is None and drain:
                return
            wait_s = settings.OUTBOX_POLL_S
            if wake is not None:
                wait_s = min(wait_s, max((wake - timezone.now()).total_seconds(), 0.0))
            self.stop.wait(wait_s)

    def _attempt(self, message: Claimed) -> None:
        name = f"{message.kind}:{message.ref}"
        attempt = send(message)
        try:
            verdict = settle(message, attempt, rng=self.rng)
        except Exception:
            # Nothing of the verdict committed: the lease runs out and the message is sent again.
            logger.exception("outbox: recording attempt %d of %s failed", message.attempt, name)
            self.report(f"  {name}: attempt {message.attempt} not recorded; again after the lease")
            return
        if verdict is None:
            self.report(f"  {name}: lease lost before attempt {message.attempt} was recorded")
        elif verdict.state == "done":
            self.sent += 1
            self.report(f"  {name}: sent (attempt {message.attempt})")
        elif verdict.state == "retry":
            assert isinstance(attempt, Failed)
            self.retried += 1
            self.report(
                f"  {name}: attempt {message.attempt} failed ({attempt.error});"
                f" next in {verdict.wait_s:.3f} s"
            )
        else:
            assert isinstance(attempt, Failed)
            self.dead += 1
            self.report(
                f"  {name}: failed for good after {message.attempt} attempts ({attempt.error})"
            )

    def summary(self) -> str:
        return f"outbox: {self.sent} sent, {self.retried} retried, {self.dead} failed"
