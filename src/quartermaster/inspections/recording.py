"""Saving answers: one `inspection.update` alone (services.UpdateInspection.handle) or a sync
batch's run of them (`update_inspections`), with one decision (`decide`) for both.

A run is one transaction: every inspection it names locked once, in one statement ordered by id
(two runs never wait on each other in a circle); the history the answer-level merge reads
(others' saves since each update's base) read once; then each update decided in the device's
order on the inspection as the updates before it left it in memory, exactly as alone: merged
with others' changes, refused as a 409 conflict (its conflict record committed), as
`inspection_locked`, or as invalid (a numbered update's refusal kept as arrived, as alone). A
refused update changes nothing of the inspection. Then one statement per table: the inspections,
their new versions, the refusals kept. The pipeline writes each op's audit entries and feed rows
from its changes, as alone.

What a run cannot decide from what it read falls back to one update at a time
(`BulkUnavailable`, before anything is written): an update held for its device's previous one,
held updates an update of the run would release, an update numbered like another of the run,
and a conflict whose base is a version the run itself made (its base snapshot comes from the
audit trail, which the pipeline writes last).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from django.conf import settings as django_settings
from django.db.models import Q
from django.utils import timezone

from quartermaster.core import policy
from quartermaster.core.commands import BulkUnavailable
from quartermaster.core.conflicts import VersionedUpdate, stale_outcome
from quartermaster.core.errors import Conflict, DomainError, Invalid, NotFound
from quartermaster.core.rows import insert_rows, new_row
from quartermaster.core.types import Change, Context, Outcome, Record
from quartermaster.identity.models import Role
from quartermaster.inspections import invariants
from quartermaster.inspections.invariants import EDITABLE, Form, Score, Status
from quartermaster.inspections.models import HeldUpdate, Inspection, InspectionVersion
from quartermaster.inspections.selectors import (
    ENTITY,
    InspectionView,
    SavedAnswersView,
    arrived_from_device,
    held_view,
    inspection_view,
    published_form,
)
from quartermaster.media.selectors import media_by_ids, ready_media

HELD_ENTITY = "inspection.held_update"


class InspectionLocked(Conflict):
    code = "inspection_locked"

    def __init__(self, status: str) -> None:
        super().__init__(f"a {status} inspection cannot be edited")


def form_for(inspection: Inspection) -> Form:
    # An inspection is made against a published version (never a draft), PROTECTed from deletion.
    form = published_form(inspection.template_id, inspection.template_version)
    assert form is not None
    return form


def check_media(ctx: Context, form: Form, before: dict[str, Any], after: dict[str, Any]) -> None:
    """Photos and signatures: what an answer newly names must be confirmed media the actor
    uploaded (a manager may attach anyone's); all of the inspection's media within its size
    limit. Media named before stay, whoever uploaded them."""
    named = invariants.media_of(form, after)
    if not named:
        return
    earlier = {m for ids in invariants.media_of(form, before).values() for m in ids}
    every = {m for ids in named.values() for m in ids}
    usable = {m: asset.size for m, asset in media_by_ids(every & earlier).items()}
    staff = ctx.actor.role == Role.STAFF
    for media_id, asset in ready_media(every - earlier).items():
        if not staff or asset.uploaded_by_id == ctx.actor.user_id:
            usable[media_id] = asset.size
    invariants.check_media(
        named, usable, max_total_bytes=django_settings.MEDIA_MAX_BYTES_PER_INSPECTION
    )


def change_of(inspection: Inspection, before: InspectionView | None) -> Change:
    after = None if inspection.deleted_at is not None else inspection_view(inspection)
    return Change(
        ENTITY, str(inspection.id), before, after, inspection.version, inspection.location_id
    )


class AnswerUpdate(Protocol):
    """What `inspection.update` carries (services.UpdateInspection, validated)."""

    @property
    def name(self) -> str: ...
    @property
    def id(self) -> UUID: ...
    @property
    def answers(self) -> dict[str, Any]: ...
    @property
    def base_version(self) -> int | None: ...
    @property
    def device_seq(self) -> int | None: ...
    @property
    def previous_seq(self) -> int | None: ...


@dataclass(frozen=True)
class Decision:
    """What an update does to the inspection as it stands: a conflict on `conflicting`, or the
    answers to write, what changed, the score and the merge it reports."""

    conflicting: tuple[str, ...] = ()
    answers: dict[str, Any] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)
    score: Score = field(default_factory=lambda: Score(0, 0))
    merge: dict[str, Any] | None = None


def decide(
    command: AnswerUpdate,
    ctx: Context,
    inspection: Inspection,
    changed_by_others: Callable[[int], set[str]],
) -> Decision:
    """Merge `command`'s patch into the locked inspection, or refuse it (raises). Writes nothing.
    `changed_by_others(base)`: the answers others' saves after `base` changed."""
    if inspection.status not in EDITABLE:
        raise InspectionLocked(inspection.status)
    form = form_for(inspection)
    patch = invariants.clean_answers(form, command.answers)
    merge: dict[str, Any] | None = None
    base = command.base_version
    if base is not None and base != inspection.version:
        if base > inspection.version:
            raise Invalid.field("base_version", "ahead of the inspection's version")
        plan = invariants.plan_merge(inspection.answers, patch, changed_by_others(base))
        if plan.conflicting:
            return Decision(conflicting=plan.conflicting)
        merge = {"base_version": base, "theirs": list(plan.theirs), "mine": sorted(patch)}
    answers = invariants.apply_patch(inspection.answers, patch)
    check_media(ctx, form, inspection.answers, answers)
    return Decision(
        answers=answers,
        changed=invariants.changed_keys(inspection.answers, answers),
        score=invariants.score(form, answers),
        merge=merge,
    )


def take(inspection: Inspection, decision: Decision) -> None:
    """Give the inspection what `decision` writes (the version is bumped by whoever saves)."""
    inspection.answers = decision.answers
    inspection.score_earned, inspection.score_possible = (
        decision.score.earned,
        decision.score.possible,
    )
    inspection.status = Status.DRAFT


def conflict_outcome(
    command: VersionedUpdate,
    ctx: Context,
    current: Record,
    version: int,
    conflicting: tuple[str, ...],
) -> Outcome:
    """The 409 of a conflicting update, its conflict record committed."""
    outcome = stale_outcome(command, ctx, current, version)
    outcome.body["conflicting_answers"] = list(conflicting)
    return outcome


def kept_row(
    command: AnswerUpdate, ctx: Context, status: str, result: dict[str, Any] | None
) -> HeldUpdate:
    """A numbered update kept as a `HeldUpdate` (held, or refused and kept as arrived)."""
    assert command.device_seq is not None
    return HeldUpdate(
        inspection_id=command.id,
        device=ctx.actor.device_id,
        device_seq=command.device_seq,
        previous_seq=command.previous_seq,
        base_version=command.base_version,
        answers=command.answers,
        actor_id=ctx.actor.user_id,
        actor=ctx.actor.username,
        actor_role=ctx.actor.role,
        actor_locations=sorted(str(lid) for lid in ctx.actor.location_ids),
        client_ts=ctx.client_ts,
        status=status,
        result=result,
    )


def kept_change(kept: HeldUpdate) -> Change:
    key = f"{kept.inspection_id}:{kept.device_seq}"
    return Change(HELD_ENTITY, key, None, held_view(kept), publish=False)


def refusal_status(refusal: DomainError) -> str:
    return HeldUpdate.CONFLICT if refusal.status == 409 else HeldUpdate.FAILED


# -- a run of updates --


def update_inspections(
    commands: Sequence[Any], contexts: Sequence[Context]
) -> list[Outcome | DomainError]:
    """Run `commands` (UpdateInspection) in order, each answering the Outcome or the error it
    would alone; `BulkUnavailable` (nothing written) when the run must go one by one."""
    _refuse_numbering_clashes(commands, contexts)
    inspections = _locked({command.id for command in commands})
    history = _History.read(inspections, commands)
    _refuse_held(commands, contexts)
    run = _Run(inspections, history)
    for command, ctx in zip(commands, contexts, strict=True):
        run.decide(command, ctx)
    return run.write()


def _locked(ids: set[UUID]) -> dict[UUID, Inspection]:
    query = Inspection.objects.select_for_update().filter(pk__in=ids, deleted_at__isnull=True)
    return {inspection.pk: inspection for inspection in query.order_by("pk")}


def _numbered(command: AnswerUpdate, ctx: Context) -> bool:
    return command.device_seq is not None and bool(ctx.actor.device_id)


def _refuse_numbering_clashes(commands: Sequence[Any], contexts: Sequence[Context]) -> None:
    """Two updates of the run numbered alike (one kept refusal answers both, alone)."""
    seen: set[tuple[UUID, str, int | None]] = set()
    for command, ctx in zip(commands, contexts, strict=True):
        if _numbered(command, ctx):
            key = (command.id, ctx.actor.device_id, command.device_seq)
            if key in seen:
                raise BulkUnavailable("two updates of the run carry one device_seq")
            seen.add(key)


def _refuse_held(commands: Sequence[Any], contexts: Sequence[Context]) -> None:
    """Held or kept updates the run's numbered updates meet (a held one to release after it, or
    one kept under its own number): handled one update at a time. One statement."""
    numbered = {
        (command.id, ctx.actor.device_id, command.device_seq)
        for command, ctx in zip(commands, contexts, strict=True)
        if _numbered(command, ctx)
    }
    if not numbered:
        return
    seqs = {seq for _, _, seq in numbered}
    rows = HeldUpdate.objects.filter(
        inspection_id__in={key[0] for key in numbered},
        device__in={key[1] for key in numbered},
    ).filter(Q(device_seq__in=seqs) | Q(previous_seq__in=seqs, status=HeldUpdate.HELD))
    for inspection_id, device, seq, previous in rows.values_list(
        "inspection_id", "device", "device_seq", "previous_seq"
    ):
        if (inspection_id, device, seq) in numbered or (
            inspection_id,
            device,
            previous,
        ) in numbered:
            raise BulkUnavailable("held updates of the device meet this run")


@dataclass
class _History:
    """Each inspection's saves after the oldest base the run names: (version, device, changed),
    those read and those the run makes, oldest first."""

    saves: dict[UUID, list[tuple[int, str, list[str]]]]

    @classmethod
    def read(cls, inspections: dict[UUID, Inspection], commands: Sequence[Any]) -> _History:
        oldest: dict[UUID, int] = {}
        for command in commands:
            inspection = inspections.get(command.id)
            base = command.base_version
            if inspection is not None and base is not None and base < inspection.version:
                oldest[command.id] = min(base, oldest.get(command.id, base))
        saves: dict[UUID, list[tuple[int, str, list[str]]]] = {pk: [] for pk in inspections}
        if oldest:
            where = Q()
            for inspection_id, base in oldest.items():
                where |= Q(inspection_id=inspection_id, version__gt=base)
            rows = InspectionVersion.objects.filter(where).order_by("inspection_id", "version")
            for inspection_id, version, device, changed in rows.values_list(
                "inspection_id", "version", "device", "changed"
            ):
                saves[inspection_id].append((version, device, changed))
        return cls(saves)

    def changed_by_others(self, inspection_id: UUID, base: int, device: str) -> set[str]:
        """selectors.changed_by_others over what was read and what the run made."""
        changed: set[str] = set()
        for version, row_device, row_changed in self.saves[inspection_id]:
            if version > base and not (device and row_device == device):
                changed.update(row_changed)
        return changed


@dataclass
class _Pending:
    """A conflict found in the pass, its record written after it (nothing is written before
    the run knows it can go in bulk)."""

    command: Any
    ctx: Context
    current: Record
    version: int
    conflicting: tuple[str, ...]


@dataclass
class _Run:
    inspections: dict[UUID, Inspection]
    history: _History
    start: dict[UUID, int] = field(default_factory=dict)
    answers: list[Outcome | DomainError | _Pending] = field(default_factory=list)
    versions: list[InspectionVersion] = field(default_factory=list)
    kept: list[HeldUpdate] = field(default_factory=list)
    arrived: set[tuple[UUID, str, int | None]] = field(default_factory=set)
    touched: dict[UUID, Inspection] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.start = {pk: inspection.version for pk, inspection in self.inspections.items()}

    def decide(self, command: Any, ctx: Context) -> None:
        """Answer one update as alone, on the inspection as the run left it."""
        inspection = self.inspections.get(command.id)
        try:
            if inspection is None:
                raise NotFound()
            policy.authorize(
                ctx.actor,
                command.name,
                location_id=inspection.location_id,
                owner_id=inspection.assignee_id,
            )
        except DomainError as error:
            self.answers.append(error)
            return
        self._check_predecessor(command, ctx)
        try:
            answer = self._save(command, ctx, inspection)
        except DomainError as error:
            if not _numbered(command, ctx):
                self.answers.append(error)
                return
            answer = Outcome(error.status, error.body(), [], refusal=error)
        if _numbered(command, ctx):
            self.arrived.add((command.id, ctx.actor.device_id, command.device_seq))
            if isinstance(answer, _Pending) or answer.refusal is not None:
                self._keep_refused(command, ctx, answer)
        self.answers.append(answer)

    def _check_predecessor(self, command: Any, ctx: Context) -> None:
        device = ctx.actor.device_id
        previous = command.previous_seq
        if previous is None or not device or (command.id, device, previous) in self.arrived:
            return
        if not arrived_from_device(command.id, device, previous):
            raise BulkUnavailable("an update waits for its device's previous one")

    def _save(self, command: Any, ctx: Context, inspection: Inspection) -> Outcome | _Pending:
        device = ctx.actor.device_id
        decision = decide(
            command,
            ctx,
            inspection,
            lambda base: self.history.changed_by_others(inspection.pk, base, device),
        )
        if decision.conflicting:
            if command.base_version > self.start[inspection.pk]:
                raise BulkUnavailable("a conflict on a version the run made")
            view = inspection_view(inspection)
            return _Pending(command, ctx, view, inspection.version, decision.conflicting)
        before = inspection_view(inspection)
        take(inspection, decision)
        now = timezone.now()
        inspection.version += 1
        inspection.updated_at = now
        self.touched[inspection.pk] = inspection
        self.versions.append(_version_row(command, ctx, inspection, decision.changed, now))
        self.history.saves[inspection.pk].append((inspection.version, device, decision.changed))
        body = SavedAnswersView(inspection_view(inspection), decision.merge)
        return Outcome(200, body, [change_of(inspection, before)])

    def _keep_refused(self, command: Any, ctx: Context, answer: Outcome | _Pending) -> None:
        if isinstance(answer, _Pending):
            # Its result (the conflict's body) is known once its record is written (`write`).
            self.kept.append(kept_row(command, ctx, HeldUpdate.CONFLICT, None))
            return
        assert answer.refusal is not None
        self.kept.append(kept_row(command, ctx, refusal_status(answer.refusal), answer.body))

    def write(self) -> list[Outcome | DomainError]:
        """The conflicts' records, then one statement per table; each op's answer."""
        now = timezone.now()
        kept = iter(self.kept)
        final: list[Outcome | DomainError] = []
        for answer in self.answers:
            if isinstance(answer, _Pending):
                outcome = conflict_outcome(
                    answer.command, answer.ctx, answer.current, answer.version, answer.conflicting
                )
                if _numbered(answer.command, answer.ctx):
                    row = next(kept)
                    assert outcome.refusal is not None
                    row.result = outcome.refusal.body()  # as alone: without conflicting_answers
                    outcome.changes.append(kept_change(row))
                final.append(outcome)
            elif isinstance(answer, Outcome) and answer.refusal is not None:
                answer.changes.append(kept_change(next(kept)))
                final.append(answer)
            else:
                final.append(answer)
        for row in self.kept:
            row.created_at = now
        if self.touched:
            Inspection.objects.bulk_update(
                list(self.touched.values()),
                ["answers", "score_earned", "score_possible", "status", "version", "updated_at"],
            )
        insert_rows(InspectionVersion, self.versions)
        insert_rows(HeldUpdate, self.kept)
        return final


def _version_row(
    command: Any, ctx: Context, inspection: Inspection, changed: list[str], at: datetime
) -> InspectionVersion:
    return new_row(
        InspectionVersion,
        id=None,
        inspection_id=inspection.pk,
        version=inspection.version,
        action=command.name,
        status=inspection.status,
        answers=inspection.answers,
        changed=changed,
        deleted=False,
        comment="",
        actor_id=ctx.actor.user_id,
        actor=ctx.actor.username,
        device=ctx.actor.device_id,
        device_seq=command.device_seq,
        base_version=command.base_version,
        at=at,
    )
