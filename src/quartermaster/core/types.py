"""The values that cross the command pipeline's seams: who acts (`Actor`, `Context`), what a
handler changed (`Change`, `Outcome`) and what the caller is answered (`Response`).

They live apart from `core.commands` because everything needs them and they need nothing (but
the error classes they may name, `core.errors`, which import nothing): the
permission policy hook (`core.policy`) takes an `Actor` and live events (`core.events`) read
`Change`s, while `core.commands` imports both. Kept here, at the bottom of core, they end that
import circle, so no module imports them only while type checking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from uuid import UUID

from quartermaster.core.errors import DomainError


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
    """What a command runs under: its actor and the key that makes a retry a replay."""

    actor: Actor
    idempotency_key: str | None = None
    # "http" keys may expire after IDEMPOTENCY_KEY_TTL_DAYS; "op" (sync op ids) never do.
    idempotency_scope: str = "http"
    client_ts: str = ""


class View:
    """A record as a typed value (subclasses are frozen dataclasses), with its two encodings
    written apart on purpose:

    - `wire`: the API's body (responses, the change feed, conflict records). It follows the API
      and may be renamed with it (API.md).
    - `snapshot`: what the audit chain seals (chain format 1). A domain's own names, pinned by
      tests/core/test_audit_snapshot_format.py: an API rename never changes what the chain
      hashed; a change here is deliberate and marks a new chain format.

    Each is built once per value (one command's view is its body, its feed row and its audit
    entry, and `core.canonical.EncodeOnce` encodes each object once)."""

    def to_wire(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    @cached_property
    def wire(self) -> dict[str, Any]:
        return self.to_wire()

    @cached_property
    def snapshot(self) -> dict[str, Any]:
        return self.to_snapshot()


# What a Change carries of a record: its typed view (every record has one; the audit chain seals
# its snapshot, the feed carries its wire body).
Record = View


def wire_of(value: Any) -> Any:
    """A handler's body or a changed record as it goes on the wire."""
    return value.wire if isinstance(value, View) else value


def snapshot_of(record: Record | None) -> dict[str, Any] | None:
    """A changed record as the audit chain seals it."""
    return None if record is None else record.snapshot


@dataclass(frozen=True)
class Change:
    """One record a handler changed. `after=None` is a deletion (a tombstone in the feed)."""

    entity_type: str
    entity_id: str
    before: Record | None
    after: Record | None
    version: int | None = None
    location_id: UUID | None = None
    # False for records devices never replicate (sessions, tokens): audited, not in the feed.
    publish: bool = True
    # The party user the record belongs to (a customer's sales, invoices, payments), who reads
    # its feed rows; None for records of no party.
    owner_id: UUID | None = None


@dataclass
class Outcome:
    """What a handler returns: its body (a `View`, or what goes on the wire as it is), and the
    records it changed for the pipeline to audit and publish."""

    status: int
    body: Any
    changes: list[Change] = field(default_factory=list)
    # A handler that refuses yet commits (a stale versioned write keeps its conflict record)
    # names the refusal here, typed, so a caller never reads it back from the body.
    refusal: DomainError | None = None


@dataclass(frozen=True)
class Response:
    """What `execute` answers: `replayed` when a stored answer to the same key was returned."""

    status: int
    body: Any
    replayed: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # The typed refusal this answer was made from, when it was made now (a replayed answer is
    # only what was stored): callers decide by its class, not by the body's code string.
    refusal: DomainError | None = field(default=None, compare=False)
