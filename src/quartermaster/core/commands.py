"""The command pipeline: the only way any state changes.

    validate (pure invariants) → authorize → open transaction → claim idempotency key
    → run the handler (locks, guarded updates) → append audit entries and feed rows from the
    changes the handler declares → store the response → commit

A handler returns an `Outcome`: its wire body and the records it changed. The pipeline, not the
handler, writes the audit and feed rows, so no handler can forget them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict

from quartermaster.core import audit, events, idempotency, policy
from quartermaster.core.canonical import fingerprint
from quartermaster.core.errors import DomainError
from quartermaster.core.models import AuditEntry, ChainHead, FeedEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting. `location_ids` is the set of locations a staff member is assigned to."""

    user_id: UUID | None
    username: str
    role: str
    location_ids: frozenset[UUID] = frozenset()
    device_id: str = ""


SYSTEM_ACTOR = Actor(user_id=None, username="system", role="system")


@dataclass(frozen=True)
class Context:
    actor: Actor
    idempotency_key: str | None = None
    # "http" keys may expire after IDEMPOTENCY_KEY_TTL_DAYS; "op" (sync op ids) never do.
    idempotency_scope: str = "http"
    client_ts: str = ""


@dataclass(frozen=True)
class Change:
    """One record a handler changed. `after=None` is a deletion (a tombstone in the feed)."""

    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    version: int | None = None
    location_id: UUID | None = None
    # False for records devices never replicate (sessions, tokens): audited, not in the feed.
    publish: bool = True


@dataclass
class Outcome:
    status: int
    body: Any
    changes: list[Change] = field(default_factory=list)


@dataclass(frozen=True)
class Response:
    status: int
    body: Any
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)


class Command(BaseModel):
    """A typed request to change state. Subclasses set `name` (the wire name) and `handle`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Command]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name")
        if isinstance(name, str):
            if name in Command.registry:
                raise RuntimeError(f"two commands are named {name!r}")
            Command.registry[name] = cls

    def validated(self) -> Command:
        """Pure invariants: return the cleaned command or raise `Invalid`. No database access."""
        return self

    def handle(self, ctx: Context) -> Outcome:
        raise NotImplementedError

    def fingerprint(self) -> str:
        return fingerprint([self.name, self.model_dump(mode="json")])


def execute(command: Command, ctx: Context) -> Response:
    """Run `command` for `ctx.actor` in one transaction and return its (possibly replayed) response.

    Domain errors come back as error responses, with nothing changed. Any other exception
    propagates (a 500 for HTTP, "retry later" for sync) after the transaction rolled back.
    """
    try:
        policy.authorize(ctx.actor, command.name)
        command = command.validated()
        if ctx.idempotency_key is None:
            with transaction.atomic():
                return _apply(command, ctx)
        return _execute_keyed(command, ctx, ctx.idempotency_key)
    except DomainError as error:
        return error_response(error)


def error_response(error: DomainError) -> Response:
    headers = {}
    retry_after = getattr(error, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(status=error.status, body=error.body(), headers=headers)


def _execute_keyed(command: Command, ctx: Context, key: str) -> Response:
    owner_id = ctx.actor.user_id
    scope = ctx.idempotency_scope
    request_fingerprint = command.fingerprint()
    with transaction.atomic():
        stored = idempotency.claim(
            owner_id=owner_id, scope=scope, key=key, fingerprint=request_fingerprint
        )
        if stored is not None:
            return Response(status=stored.status, body=stored.body, replayed=True)
        try:
            with transaction.atomic():
                response = _apply(command, ctx)
        except DomainError as error:
            # A rejection is an outcome too: replaying the key must answer the same.
            response = error_response(error)
        idempotency.store(
            owner_id=owner_id,
            scope=scope,
            key=key,
            fingerprint=request_fingerprint,
            status=response.status,
            body=response.body,
        )
        return response


def _apply(command: Command, ctx: Context) -> Response:
    outcome = command.handle(ctx)
    if outcome.changes:
        record_changes(command.name, ctx, outcome.changes)
    return Response(status=outcome.status, body=outcome.body)


def _lock_head() -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


def record_changes(action: str, ctx: Context, changes: list[Change]) -> None:
    """Append audit entries and feed rows for `changes`; the head stays locked until commit."""
    head = _lock_head()
    now = timezone.now()
    actor = ctx.actor
    audit.append_entries(
        head,
        (
            AuditEntry(
                at=now,
                actor_id=actor.user_id,
                actor=actor.username,
                device=actor.device_id,
                action=action,
                entity_type=change.entity_type,
                entity_id=change.entity_id,
                before=change.before,
                after=change.after,
                client_ts=ctx.client_ts,
            )
            for change in changes
        ),
    )
    feed_rows = []
    for change in changes:
        if not change.publish:
            continue
        head.feed_seq += 1
        feed_rows.append(
            FeedEntry(
                seq=head.feed_seq,
                at=now,
                entity=change.entity_type,
                entity_id=change.entity_id,
                op="delete" if change.after is None else "upsert",
                version=change.version,
                data=change.after,
                location_id=change.location_id,
            )
        )
    FeedEntry.objects.bulk_create(feed_rows)
    ChainHead.objects.filter(pk=1).update(
        audit_seq=head.audit_seq, audit_hash=head.audit_hash, feed_seq=head.feed_seq
    )
    events.publish_after_commit(head.feed_seq, changes)
