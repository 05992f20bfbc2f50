"""The command pipeline: the only way any state changes.

    validate (pure invariants) → authorize → open transaction → claim idempotency key
    → run the handler (locks, guarded updates) → append audit entries and feed rows from the
    changes the handler declares → store the response → commit

A handler returns an `Outcome`: its wire body and the records it changed. The pipeline, not the
handler, writes the audit and feed rows, so no handler can forget them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar
from uuid import UUID

from django.db import connection, transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict

from quartermaster.core import audit, events, idempotency, policy
from quartermaster.core.canonical import EncodeOnce, fingerprint
from quartermaster.core.errors import DomainError
from quartermaster.core.models import ChainHead, FeedEntry
from quartermaster.core.rows import insert_rows, new_row


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

    # Commands that can run many at once in one set of statements (`execute_many`, used by
    # batch sync) set `bulk` and implement `handle_many`.
    bulk: ClassVar[bool] = False

    @classmethod
    def handle_many(
        cls, commands: Sequence[Command], contexts: Sequence[Context]
    ) -> list[Outcome | DomainError]:
        """Run `commands` in order as if each ran alone through `handle`: the same answers, the
        same rows. A command answered by an error has written nothing. Raise `BulkUnavailable`
        (before writing anything) when this set cannot run together."""
        raise BulkUnavailable(f"{cls.name} runs one at a time")

    def fingerprint(self) -> str:
        return fingerprint([self.name, self.model_dump(mode="json")])


class BulkCommand(Command):
    """A command whose one body (`run_many`) serves both one command (`handle`: REST, a sync op
    run alone) and a run of them (`handle_many`: a bulk run of a sync batch)."""

    bulk: ClassVar[bool] = True

    @classmethod
    def run_many(
        cls, commands: Sequence[Any], contexts: Sequence[Context], *, alone: bool
    ) -> list[Outcome | DomainError]:
        """`handle_many`'s contract; `alone`: one command whose error `handle` raises, so its
        transaction rolls back whatever it wrote first."""
        raise NotImplementedError

    def handle(self, ctx: Context) -> Outcome:
        [answer] = type(self).run_many([self], [ctx], alone=True)
        if isinstance(answer, DomainError):
            raise answer
        return answer

    @classmethod
    def handle_many(
        cls, commands: Sequence[Command], contexts: Sequence[Context]
    ) -> list[Outcome | DomainError]:
        return cls.run_many(commands, contexts, alone=False)


class BulkUnavailable(Exception):
    """`execute_many` cannot run this set at once; nothing was written. Run each alone."""


def key_fingerprint(name: str, scope: str, command: Command | None = None) -> str:
    """What a keyed request is stored and compared under: the one rule for every caller.

    An HTTP key (scope "http") fingerprints the command and its payload, so the same key with
    another request is 422. A sync op id (scope "op") names one op forever, and every copy of it
    must match whatever stored it first: the command run, or a refusal decided before there was a
    command (a payload that does not validate, a temp id that did not resolve). So an op is
    fingerprinted by its type alone; its payload may even differ between copies once temp ids
    are resolved, and may hold secrets.
    """
    if scope == idempotency.OP_SCOPE:
        return fingerprint(["op", name])
    if command is None:
        raise ValueError(f"a {scope!r} key is fingerprinted by its command")
    return command.fingerprint()


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
    request_fingerprint = key_fingerprint(command.name, scope, command)
    with transaction.atomic():
        stored = idempotency.claim(
            owner_id=owner_id, scope=scope, key=key, fingerprint=request_fingerprint
        )
        if stored is not None:
            return Response(status=stored.status, body=stored.body, replayed=True)
        changes: list[Change] = []
        try:
            with transaction.atomic():
                outcome = command.handle(ctx)
            response = Response(status=outcome.status, body=outcome.body)
            changes = outcome.changes
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
        if changes:
            # Last before commit: the chain head stays locked for as short a time as possible.
            record_changes(command.name, ctx, changes)
        return response


def store_final(name: str, ctx: Context, response: Response) -> Response:
    """Store `response` under `ctx`'s key as the final answer of a request refused before
    `execute` claimed the key, inside the caller's transaction, and return what the key answers.

    If the key already holds an answer (a concurrent copy of the request stored it first, or
    `execute` did earlier in this transaction), that stored answer is returned, replayed, and
    nothing is stored; if a concurrent copy holds the key in flight, 409 (retry later).
    """
    assert ctx.idempotency_key is not None
    request_fingerprint = key_fingerprint(name, ctx.idempotency_scope)
    try:
        stored = idempotency.claim(
            owner_id=ctx.actor.user_id,
            scope=ctx.idempotency_scope,
            key=ctx.idempotency_key,
            fingerprint=request_fingerprint,
        )
    except DomainError as error:
        return error_response(error)
    if stored is not None:
        return Response(status=stored.status, body=stored.body, replayed=True)
    idempotency.store(
        owner_id=ctx.actor.user_id,
        scope=ctx.idempotency_scope,
        key=ctx.idempotency_key,
        fingerprint=request_fingerprint,
        status=response.status,
        body=response.body,
    )
    return response


def execute_many(commands: Sequence[Command], contexts: Sequence[Context]) -> list[Response]:
    """Run sync ops of one command class in one transaction, as `execute` would run each in turn,
    and store every final answer under its op id (refusals before the handler included: an op's
    answer is final, and an op id is fingerprinted by its type alone).

    For throughput: one claim of all op ids, one `handle_many`, one insert of the answers, one
    chain-head lock for all audit entries and feed rows. Raises `BulkUnavailable` with nothing
    written when an op id is in flight or already answered, or the handler cannot take the set;
    the caller then runs each op through `execute`, which tells every case apart.
    """
    command_class = type(commands[0])
    actor = contexts[0].actor
    if not command_class.bulk or any(
        type(command) is not command_class or ctx.actor != actor or ctx.idempotency_key is None
        for command, ctx in zip(commands, contexts, strict=True)
    ):
        raise BulkUnavailable("one command class, one actor, every op keyed")
    if any(ctx.idempotency_scope != idempotency.OP_SCOPE for ctx in contexts):
        raise BulkUnavailable("only sync ops run in bulk")
    responses: list[Response | None] = [None] * len(commands)
    runnable: list[tuple[int, Command]] = []
    for index, (command, ctx) in enumerate(zip(commands, contexts, strict=True)):
        try:
            policy.authorize(ctx.actor, command.name)
            runnable.append((index, command.validated()))
        except DomainError as error:
            responses[index] = error_response(error)
    keys = [str(ctx.idempotency_key) for ctx in contexts]
    with transaction.atomic():
        if not idempotency.claim_fresh(
            owner_id=actor.user_id, scope=idempotency.OP_SCOPE, keys=keys
        ):
            raise BulkUnavailable("an op id is in flight or already answered")
        outcomes = (
            command_class.handle_many(
                [command for _, command in runnable], [contexts[index] for index, _ in runnable]
            )
            if runnable
            else []
        )
        recorded: list[tuple[str, Context, list[Change]]] = []
        for (index, _), outcome in zip(runnable, outcomes, strict=True):
            if isinstance(outcome, DomainError):
                responses[index] = error_response(outcome)
            else:
                responses[index] = Response(status=outcome.status, body=outcome.body)
                recorded.append((command_class.name, contexts[index], outcome.changes))
        answers = [response for response in responses if response is not None]
        assert len(answers) == len(commands)
        fingerprint_of_op = key_fingerprint(command_class.name, idempotency.OP_SCOPE)
        encode = EncodeOnce()
        idempotency.store_many(
            owner_id=actor.user_id,
            scope=idempotency.OP_SCOPE,
            answers=[
                (key, fingerprint_of_op, response.status, encode(response.body))
                for key, response in zip(keys, answers, strict=True)
                if response.status < 500
            ],
        )
        if any(changes for _, _, changes in recorded):
            record_changes_many(recorded, encode)
    return answers


def _apply(command: Command, ctx: Context) -> Response:
    outcome = command.handle(ctx)
    if outcome.changes:
        record_changes(command.name, ctx, outcome.changes)
    return Response(status=outcome.status, body=outcome.body)


def _lock_head() -> ChainHead:
    """Read the chain head row, locked until commit (SQLite: the IMMEDIATE transaction is)."""
    sql = _HEAD_SELECT + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(sql)
        row = cursor.fetchone()
    if row is None:
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        return ChainHead.objects.select_for_update().get(pk=1)
    return ChainHead(pk=1, audit_seq=row[0], audit_hash=row[1], feed_seq=row[2])


# Plain SQL on the one hot row every write takes: no query compiler while the lock is held.
_HEAD_SELECT = "SELECT audit_seq, audit_hash, feed_seq FROM core_chainhead WHERE id = 1"
_HEAD_UPDATE = (
    "UPDATE core_chainhead SET audit_seq = %s, audit_hash = %s, feed_seq = %s WHERE id = 1"
)


def record_changes(action: str, ctx: Context, changes: list[Change]) -> None:
    """Append audit entries and feed rows for `changes`; the head stays locked until commit."""
    record_changes_many([(action, ctx, changes)])


def record_changes_many(
    commands: Sequence[tuple[str, Context, list[Change]]], encode: EncodeOnce | None = None
) -> None:
    """`record_changes` for several commands in order, under one lock of the chain head.
    `encode`: the memo their stored answers were encoded with, so a view is encoded once."""
    encode = encode or EncodeOnce()
    head = _lock_head()
    now = timezone.now()
    audit.append_entries(
        head,
        (
            audit.NewEntry(
                at=now,
                actor_id=ctx.actor.user_id,
                actor=ctx.actor.username,
                device=ctx.actor.device_id,
                action=action,
                entity_type=change.entity_type,
                entity_id=change.entity_id,
                before=encode(change.before),
                after=encode(change.after),
                client_ts=ctx.client_ts,
            )
            for action, ctx, changes in commands
            for change in changes
        ),
    )
    every_change = [change for _, _, changes in commands for change in changes]
    feed_rows = []
    for change in every_change:
        if not change.publish:
            continue
        head.feed_seq += 1
        feed_rows.append(
            new_row(
                FeedEntry,
                seq=head.feed_seq,
                at=now,
                entity=change.entity_type,
                entity_id=change.entity_id,
                op="delete" if change.after is None else "upsert",
                version=change.version,
                data=encode(change.after),
                location_id=change.location_id,
            )
        )
    insert_rows(FeedEntry, feed_rows)
    with connection.cursor() as cursor:
        cursor.execute(_HEAD_UPDATE, [head.audit_seq, head.audit_hash, head.feed_seq])
    events.publish_after_commit(head.feed_seq, every_change)
