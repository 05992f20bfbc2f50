"""Versioned records edited offline: optimistic updates, conflict records and their resolution.

A `VersionedUpdate` command names the `base_version` it was written against. When the record has
moved on since, the command changes nothing of the record: it answers 409 `version_conflict` and
commits a `Conflict` row holding the client's fields, the server's record and, when the audit
trail still has it, the record at `base_version`. `conflict.resolve` closes it with keep_theirs
(nothing changes), keep_mine (the client's fields on the current version) or merge (fields changed
on one side only merge by themselves; fields changed on both take the caller's `merged` values).
Resolution re-runs the entity's own update command, so it is validated, audited and fed like any
other update.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal
from uuid import UUID, uuid4

from django.db import connection
from django.utils import timezone

from quartermaster.core.commands import Command, record_changes
from quartermaster.core.errors import Conflict as ConflictError
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.models import AuditEntry, Conflict
from quartermaster.core.pagination import Keyset, Page, PageRequest, time_key, uuid_key
from quartermaster.core.types import Change, Context, Outcome, Record, View, wire_of

ENTITY = "conflict"
OPEN = "open"
RESOLVED = "resolved"
STRATEGIES = ("keep_mine", "keep_theirs", "merge")
VERSION_CONFLICT = "version_conflict"


class VersionedUpdate(Command):
    """An update of a versioned record's editable fields (None = leave unchanged)."""

    entity: ClassVar[str]
    # Wire names of the fields an update may change.
    editable: ClassVar[tuple[str, ...]]

    id: UUID
    base_version: int | None = None

    def proposed(self) -> dict[str, Any]:
        """The fields this update sets, by wire name."""
        raise NotImplementedError

    def load(self, ctx: Context) -> tuple[Record, int]:
        """Lock the live record; return (its view, its version). NotFound if none."""
        raise NotImplementedError

    def apply(self, ctx: Context, before: Record) -> Outcome:
        """Write the proposed fields and bump the version (the row is locked)."""
        raise NotImplementedError

    @classmethod
    def merged_fields(
        cls,
        base: dict[str, Any] | None,
        mine: dict[str, Any],
        theirs: dict[str, Any],
        merged: dict[str, Any],
    ) -> dict[str, Any]:
        """The fields a `merge` resolution writes. Field by field by default (`merge_fields`);
        a record whose one field holds many values edited apart (an inspection's answers)
        merges inside it."""
        return merge_fields(cls.editable, base, mine, theirs, merged)

    def validated(self) -> VersionedUpdate:
        if self.base_version is not None and (
            isinstance(self.base_version, bool) or self.base_version < 0
        ):
            raise Invalid.field("base_version", "must be a non-negative integer")
        return self

    def handle(self, ctx: Context) -> Outcome:
        current, version = self.load(ctx)
        if self.base_version is not None and self.base_version != version:
            return stale_outcome(self, ctx, current, version)
        return self.apply(ctx, current)


class VersionConflict(ConflictError):
    """A stale write of a versioned record: refused with 409, its conflict record committed.

    It carries what the record holds, typed, so a caller whose transaction rolled back after
    the refusal (a sync group that failed because of it) records the same conflict again
    (`record_conflict_again`) without reading the wire body back."""

    status = 409
    code = VERSION_CONFLICT

    def __init__(
        self,
        *,
        conflict_id: UUID,
        entity: str,
        entity_id: str,
        version: int,
        base_version: int,
        fields: dict[str, Any],
        current: dict[str, Any],
        base_snapshot: dict[str, Any] | None,
    ) -> None:
        super().__init__(f"{entity} is at version {version}, not {base_version}")
        self.conflict_id = conflict_id
        self.entity = entity
        self.entity_id = entity_id
        self.base_version = base_version
        self.client_snapshot = {"fields": fields, "base_version": base_version}
        self.current = current
        self.base_snapshot = base_snapshot

    def body(self) -> dict[str, Any]:
        return {
            "error": self.message,
            "code": self.code,
            "conflict": str(self.conflict_id),
            "current": self.current,
            "mine": self.client_snapshot,
        }


def stale_outcome(command: VersionedUpdate, ctx: Context, record: Record, version: int) -> Outcome:
    """Refuse `command`, written against an older version, with 409 and commit its conflict
    record. For handlers that decide staleness themselves (an answer-level merge)."""
    assert command.base_version is not None
    # The conflict shows the client the record as the API does.
    current = wire_of(record)
    # The record's id from the command, typed: not read back from the wire body.
    entity_id = str(command.id)
    refusal = VersionConflict(
        conflict_id=uuid4(),
        entity=command.entity,
        entity_id=entity_id,
        version=version,
        base_version=command.base_version,
        fields=command.proposed(),
        current=current,
        base_snapshot=_snapshot_at(command.entity, entity_id, command.base_version),
    )
    # The update is refused, the conflict record is not: committed (and audited) as a change.
    # Not published: conflicts are read through /conflicts, scoped to their author.
    return Outcome(
        status=refusal.status,
        body=refusal.body(),
        changes=[_create_conflict(refusal, ctx)],
        refusal=refusal,
    )


def _create_conflict(refusal: VersionConflict, ctx: Context) -> Change:
    conflict = Conflict.objects.create(
        id=refusal.conflict_id,
        entity=refusal.entity,
        entity_id=refusal.entity_id,
        base_version=refusal.base_version,
        client_snapshot=refusal.client_snapshot,
        server_snapshot=refusal.current,
        base_snapshot=refusal.base_snapshot,
        status=OPEN,
        actor_id=ctx.actor.user_id,
        actor=ctx.actor.username,
        device=ctx.actor.device_id,
    )
    return Change(ENTITY, str(conflict.id), None, conflict_view(conflict), publish=False)


def record_conflict_again(action: str, ctx: Context, refusal: VersionConflict) -> None:
    """Record again the conflict of `refusal` whose transaction rolled back (a sync group that
    failed because of it): the op's final 409 names the conflict, so the record must exist.
    Idempotent by id."""
    if Conflict.objects.filter(pk=refusal.conflict_id).exists():
        return
    record_changes(action, ctx, [_create_conflict(refusal, ctx)])


def _snapshot_at(entity: str, entity_id: str, version: int) -> dict[str, Any] | None:
    """The record as it was at `version`, from the audit trail, or None. Read as the record's
    wire fields: a versioned record's view keeps its editable fields under the same names in
    both encodings (tests/core/test_audit_snapshot_format.py checks it)."""
    entry = (
        AuditEntry.objects.filter(entity_type=entity, entity_id=entity_id, after__version=version)
        .order_by("-seq")
        .values_list("after", flat=True)
        .first()
    )
    return entry if isinstance(entry, dict) else None


@dataclass(frozen=True)
class ConflictView(View):
    """A conflict record. Its snapshots of the record (`client_snapshot`, `server_snapshot`,
    `base_snapshot`) are stored data, kept as they were taken: the conflict seals them as
    they are, in both encodings."""

    id: UUID
    entity: str
    entity_id: str
    base_version: int
    client_snapshot: dict[str, Any]
    server_snapshot: dict[str, Any]
    base_snapshot: dict[str, Any] | None
    status: str
    resolution: str | None
    actor: str
    device: str
    created_at: datetime | None

    def to_wire(self) -> dict[str, Any]:
        """API.md "Conflicts"."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "entity": self.entity,
            "entity_id": self.entity_id,
            "base_version": self.base_version,
            "client_snapshot": self.client_snapshot,
            "server_snapshot": self.server_snapshot,
            "base_snapshot": self.base_snapshot,
            "status": self.status,
            "resolution": self.resolution,
            "actor": self.actor,
            "device": self.device,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


@dataclass(frozen=True)
class ResolvedConflictView(View):
    """`conflict.resolve`'s answer: the conflict as resolved and the record as it now is (its
    wire body; None when the server's record was kept). Only an answer: the conflict and the
    record are sealed by their own changes."""

    conflict: ConflictView
    record: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        return {**self.conflict.wire, "record": self.record}


def conflict_view(conflict: Conflict) -> ConflictView:
    return ConflictView(
        id=conflict.id,
        entity=conflict.entity,
        entity_id=conflict.entity_id,
        base_version=conflict.base_version,
        client_snapshot=conflict.client_snapshot,
        server_snapshot=conflict.server_snapshot,
        base_snapshot=conflict.base_snapshot,
        status=conflict.status,
        resolution=conflict.resolution or None,
        actor=conflict.actor,
        device=conflict.device,
        created_at=conflict.created_at,
    )


def merge_fields(
    editable: tuple[str, ...],
    base: dict[str, Any] | None,
    mine: dict[str, Any],
    theirs: dict[str, Any],
    merged: dict[str, Any],
) -> dict[str, Any]:
    """The fields to write for a merge. A field the client set that the server also changed
    since base (to another value) needs a `merged` value; Invalid names every such field.
    Without a base snapshot every client field that differs from the server needs one."""
    unknown = sorted(set(merged) - set(editable))
    if unknown:
        raise Invalid(
            "merged names fields that cannot be edited",
            fields={f"merged.{name}": "not an editable field" for name in unknown},
        )
    result: dict[str, Any] = {}
    missing: list[str] = []
    for name, value in mine.items():
        if name in merged:
            continue
        if value == theirs.get(name):
            continue
        server_changed = base is None or base.get(name) != theirs.get(name)
        client_changed = base is None or base.get(name) != value
        if not client_changed:
            continue  # the client kept the base value: the server's change stands
        if server_changed:
            missing.append(name)
        else:
            result[name] = value
    if missing:
        raise Invalid(
            "fields changed on both sides need a merged value",
            fields={f"merged.{name}": "changed on both sides" for name in missing},
        )
    result.update(merged)
    return result


class ResolveConflict(Command):
    name = "conflict.resolve"
    syncable: ClassVar[bool] = False
    conflict_id: UUID
    strategy: Literal["keep_mine", "keep_theirs", "merge"]
    merged: dict[str, Any] | None = None

    def validated(self) -> ResolveConflict:
        if self.merged is not None and self.strategy != "merge":
            raise Invalid.field("merged", "only with strategy merge")
        return self

    def handle(self, ctx: Context) -> Outcome:
        query = Conflict.objects.filter(pk=self.conflict_id)
        if connection.features.has_select_for_update:
            query = query.select_for_update()
        conflict = query.first()
        if conflict is None:
            raise NotFound()
        if conflict.status != OPEN:
            raise ConflictError(f"conflict already {conflict.status} ({conflict.resolution})")
        before = conflict_view(conflict)
        changes: list[Change] = []
        record: dict[str, Any] | None = None
        if self.strategy != "keep_theirs":
            command_class = Command.registry.get(f"{conflict.entity}.update")
            if command_class is None or not issubclass(command_class, VersionedUpdate):
                raise Invalid(f"{conflict.entity} records cannot be resolved")
            mine = dict(conflict.client_snapshot.get("fields") or {})
            probe = command_class.model_validate({"id": conflict.entity_id})
            loaded, version = probe.load(ctx)
            theirs = wire_of(loaded)
            if self.strategy == "keep_mine":
                fields = mine
            else:
                fields = command_class.merged_fields(
                    conflict.base_snapshot,
                    mine,
                    theirs,
                    dict(self.merged or {}),
                )
            update = command_class.model_validate(
                {"id": conflict.entity_id, **fields, "base_version": version}
            ).validated()
            outcome = update.handle(ctx)
            if outcome.status >= 300:  # pragma: no cover - the row is locked since load
                raise ConflictError("the record changed while resolving")
            record = wire_of(outcome.body)
            changes.extend(outcome.changes)
        conflict.status = RESOLVED
        conflict.resolution = self.strategy
        conflict.resolved_by = ctx.actor.username
        conflict.resolved_at = timezone.now()
        conflict.save(update_fields=["status", "resolution", "resolved_by", "resolved_at"])
        after = conflict_view(conflict)
        changes.append(Change(ENTITY, str(conflict.id), before, after, publish=False))
        return Outcome(status=200, body=ResolvedConflictView(after, record), changes=changes)


CONFLICT_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")))


def list_conflicts(
    *, owner_id: UUID | None, status: str | None, page: PageRequest
) -> Page[Conflict]:
    """Conflicts oldest first; `owner_id` narrows to one author's."""
    query = Conflict.objects.all()
    if owner_id is not None:
        query = query.filter(actor_id=owner_id)
    if status is not None:
        query = query.filter(status=status)
    return CONFLICT_ORDER.page(query, page)


def get_conflict(conflict_id: UUID) -> Conflict | None:
    return Conflict.objects.filter(pk=conflict_id).first()
