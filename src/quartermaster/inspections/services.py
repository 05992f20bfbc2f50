"""Command handlers for inspections: authoring and publishing templates, and an inspection's
life — create, save answers (merged answer by answer), submit, approve, reject, soft delete,
restore. Every save bumps the inspection's `version` and keeps the version it made.

Templates are the back office's (`syncable = False`); every inspection command is a sync op.

Offline updates. `inspection.update` carries `base_version` (the version the device last saw).
When the inspection moved on since, the answers others changed are compared with the patch:
different answers merge (the answer says which), the same answer changed to different values
is a 409 `version_conflict` with a conflict record. A device's own saves since the base are not
"others'" (its earlier offline edits of the same inspection). An update may name the device_seq
of the device's previous update to the same inspection (`previous_seq`); if that one has not
arrived, this one is held (202) and applied right after it, so the device's order stands even
when a retry delivers its updates out of order (ODK Central's backlog).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID

from django.db import transaction
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import BulkCommand, Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import Conflict, DomainError, Invalid, NotFound, PermissionDenied
from quartermaster.core.schemas import INT63_MAX
from quartermaster.core.types import Actor, Change, Context, Outcome
from quartermaster.identity.models import Role, User
from quartermaster.inspections import invariants
from quartermaster.inspections.invariants import EDITABLE, Form, Status
from quartermaster.inspections.models import (
    HeldUpdate,
    Inspection,
    InspectionVersion,
    Template,
    TemplateVersion,
)
from quartermaster.inspections.recording import (
    HELD_ENTITY,
    InspectionLocked,
    change_of,
    check_media,
    conflict_outcome,
    decide,
    form_for,
    kept_change,
    kept_row,
    refusal_status,
    take,
    update_inspections,
)
from quartermaster.inspections.selectors import (
    ENTITY,
    TEMPLATE_ENTITY,
    InspectionView,
    SavedAnswersView,
    arrived_from_device,
    changed_by_others,
    earlier_forms,
    form_of,
    get_template_version,
    held_after,
    held_view,
    inspection_view,
    template_view,
)
from quartermaster.inventory.models import Location

WIRE_NAMES = ConfigDict(validate_by_name=True, validate_by_alias=True)


class WrongStatus(Conflict):
    code = "wrong_status"


# -- templates --


class QuestionIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    type: str
    label: str
    required: bool = False
    options: tuple[str, ...] | None = None
    min: int | float | None = None
    max: int | float | None = None
    unit: str | None = None
    weight: int | None = None
    option_scores: dict[str, int] | None = None


class SectionIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    title: str
    questions: tuple[QuestionIn, ...]


def _form(sections: tuple[SectionIn, ...]) -> Form:
    return invariants.clean_form(
        [
            {
                "id": s.id,
                "title": s.title,
                "questions": [
                    {**q.model_dump(exclude_none=True), "options": list(q.options or ())}
                    for q in s.questions
                ],
            }
            for s in sections
        ]
    )


class CreateTemplate(Command):
    """A new template, its version 1 a draft until published."""

    name = "inspection.template.create"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    template_name: str = Field(alias="name")
    sections: tuple[SectionIn, ...]

    def validated(self) -> CreateTemplate:
        _form(self.sections)
        return self.model_copy(update={"template_name": invariants.clean_name(self.template_name)})

    def handle(self, ctx: Context) -> Outcome:
        template = Template.objects.create(created_by=ctx.actor.username)
        row = TemplateVersion.objects.create(
            template=template,
            version=1,
            name=self.template_name,
            sections=_form(self.sections).view(),
            created_by=ctx.actor.username,
        )
        view = template_view(template, row)
        # Drafts are the authors' alone: not in the feed until published.
        change = Change(TEMPLATE_ENTITY, str(template.id), None, view, 1, publish=False)
        return Outcome(201, view, [change])


def _locked_template(template_id: UUID) -> Template:
    template = Template.objects.select_for_update().filter(pk=template_id).first()
    if template is None:
        raise NotFound()
    return template


class ReviseTemplate(Command):
    """Change a template: the draft is replaced, or, when the latest version is published
    (immutable), a new draft version is made. Question ids keep their type across versions."""

    name = "inspection.template.update"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    id: UUID
    template_name: str = Field(alias="name")
    sections: tuple[SectionIn, ...]

    def validated(self) -> ReviseTemplate:
        _form(self.sections)
        return self.model_copy(update={"template_name": invariants.clean_name(self.template_name)})

    def handle(self, ctx: Context) -> Outcome:
        template = _locked_template(self.id)
        latest = get_template_version(template.id, template.latest_version)
        assert latest is not None
        before = template_view(template, latest)
        form = _form(self.sections)
        if latest.published_at is None:
            invariants.check_ids_stable(earlier_forms(template.id)[:-1], form)
            latest.name = self.template_name
            latest.sections = form.view()
            latest.save(update_fields=["name", "sections"])
            row = latest
        else:
            invariants.check_ids_stable(earlier_forms(template.id), form)
            template.latest_version += 1
            template.save(update_fields=["latest_version"])
            row = TemplateVersion.objects.create(
                template=template,
                version=template.latest_version,
                name=self.template_name,
                sections=form.view(),
                created_by=ctx.actor.username,
            )
        after = template_view(template, row)
        change = Change(
            TEMPLATE_ENTITY, str(template.id), before, after, row.version, publish=False
        )
        return Outcome(200, after, [change])


class PublishTemplate(Command):
    """Publish the latest version: from now on it is immutable, and new inspections use it."""

    name = "inspection.template.publish"
    syncable: ClassVar[bool] = False
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        template = _locked_template(self.id)
        row = get_template_version(template.id, template.latest_version)
        assert row is not None
        if row.published_at is not None:
            raise WrongStatus(f"version {row.version} is already published")
        before = template_view(template, row)
        row.published_at = timezone.now()
        row.published_by = ctx.actor.username
        row.save(update_fields=["published_at", "published_by"])
        template.published_version = row.version
        template.save(update_fields=["published_version"])
        after = template_view(template, row)
        return Outcome(
            200, after, [Change(TEMPLATE_ENTITY, str(template.id), before, after, row.version)]
        )


# -- inspections: shared steps --


def _locked(inspection_id: UUID, *, deleted: bool = False) -> Inspection:
    inspection = (
        Inspection.objects.select_for_update()
        .filter(pk=inspection_id, deleted_at__isnull=not deleted)
        .first()
    )
    if inspection is None:
        raise NotFound()
    return inspection


def _authorized(
    ctx: Context, action: str, inspection_id: UUID, *, deleted: bool = False
) -> Inspection:
    """The inspection, locked, if the actor may take `action` on it (else 403, or 404 for one
    outside their locations or, for an inspector, not theirs)."""
    inspection = _locked(inspection_id, deleted=deleted)
    policy.authorize(
        ctx.actor, action, location_id=inspection.location_id, owner_id=inspection.assignee_id
    )
    return inspection


def _save(
    inspection: Inspection,
    ctx: Context,
    *,
    action: str,
    changed: list[str],
    comment: str = "",
    device_seq: int | None = None,
    base_version: int | None = None,
) -> None:
    """Bump the version, write the row and keep the version it made."""
    inspection.version += 1
    inspection.save()
    InspectionVersion.objects.create(
        inspection=inspection,
        version=inspection.version,
        action=action,
        status=inspection.status,
        answers=inspection.answers,
        changed=changed,
        deleted=inspection.deleted_at is not None,
        comment=comment,
        actor_id=ctx.actor.user_id,
        actor=ctx.actor.username,
        device=ctx.actor.device_id,
        device_seq=device_seq,
        base_version=base_version,
    )


def _assignee(ctx: Context, assignee_id: UUID | None, location_id: UUID) -> User:
    """Who does the inspection: the caller by default. An inspector assigns only themselves;
    a manager assigns an inspector of that location, a manager or an admin."""
    if assignee_id is None or assignee_id == ctx.actor.user_id:
        own = ctx.actor.user_id
        user = None if own is None else User.objects.filter(pk=own).first()
        if user is None:
            raise Invalid.field("assignee", "the system assigns no inspection to itself")
        return user
    if ctx.actor.role == Role.STAFF:
        raise PermissionDenied("an inspector assigns inspections only to themselves")
    user = User.objects.filter(pk=assignee_id, is_active=True).first()
    if user is None or user.role not in (Role.STAFF, Role.MANAGER, Role.ADMIN):
        raise Invalid.field("assignee", "not a user who inspects")
    if user.role == Role.STAFF and not user.locations.filter(pk=location_id).exists():
        raise Invalid.field("assignee", "not assigned to this location")
    return user


class CreateInspection(Command):
    name = "inspection.create"
    template: UUID
    location: UUID
    assignee: UUID | None = None
    answers: dict[str, Any] = Field(default_factory=dict)

    def validated(self) -> CreateInspection:
        if len(self.answers) > invariants.MAX_QUESTIONS:
            raise Invalid.field("answers", f"at most {invariants.MAX_QUESTIONS} answers")
        return self

    def handle(self, ctx: Context) -> Outcome:
        policy.authorize(ctx.actor, self.name, location_id=self.location)
        if not Location.objects.filter(pk=self.location).exists():
            raise Invalid.field("location", "unknown location")
        template = Template.objects.filter(pk=self.template).first()
        if template is None or template.published_version is None:
            raise Invalid.field("template", "no published template with this id")
        row = get_template_version(template.id, template.published_version)
        assert row is not None
        form = form_of(row)
        answers = invariants.apply_patch({}, invariants.clean_answers(form, self.answers))
        check_media(ctx, form, {}, answers)
        score = invariants.score(form, answers)
        inspection = Inspection(
            template=template,
            template_version=row.version,
            location_id=self.location,
            assignee=_assignee(ctx, self.assignee, self.location),
            answers=answers,
            score_earned=score.earned,
            score_possible=score.possible,
            version=0,
            created_by=ctx.actor.username,
        )
        _save(inspection, ctx, action=self.name, changed=sorted(answers))
        view = inspection_view(inspection)
        return Outcome(201, view, [change_of(inspection, None)])


# -- saving answers --


class UpdateInspection(VersionedUpdate, BulkCommand):
    """Save answers (a patch: `None` clears one), merged answer by answer with what others saved
    since `base_version`."""

    # One update (REST, conflict resolution, a held update released, a sync op alone) runs
    # `handle`; a sync batch's run of them runs `recording.update_inspections`, both deciding
    # through `recording.decide`. The docstring above is the op's description in the catalogue.

    name = "inspection.update"
    entity: ClassVar[str] = ENTITY
    editable: ClassVar[tuple[str, ...]] = ("answers",)
    # Optional only so conflict resolution can build a probe that loads the record.
    answers: dict[str, Any] = Field(default_factory=dict)
    # Sync only: the op's device_seq (set by sync, never from the payload) and that of the
    # device's previous update to this inspection, which must apply first.
    device_seq: int | None = None
    previous_seq: int | None = Field(default=None, ge=1, le=INT63_MAX)

    def validated(self) -> UpdateInspection:
        super().validated()
        if len(self.answers) > invariants.MAX_QUESTIONS:
            raise Invalid.field("answers", f"at most {invariants.MAX_QUESTIONS} answers")
        if self.previous_seq is not None and (
            self.device_seq is None or self.previous_seq >= self.device_seq
        ):
            raise Invalid.field("previous_seq", "a lower device_seq of the same device")
        return self

    def proposed(self) -> dict[str, Any]:
        return {"answers": self.answers}

    def load(self, ctx: Context) -> tuple[InspectionView, int]:
        inspection = _authorized(ctx, self.name, self.id)
        return inspection_view(inspection), inspection.version

    @classmethod
    def merged_fields(
        cls,
        base: dict[str, Any] | None,
        mine: dict[str, Any],
        theirs: dict[str, Any],
        merged: dict[str, Any],
    ) -> dict[str, Any]:
        unknown = sorted(set(merged) - {"answers"})
        if unknown:
            raise Invalid(
                "merged holds answers only",
                fields={f"merged.{name}": "not an editable field" for name in unknown},
            )
        merged_answers = merged.get("answers", {})
        if not isinstance(merged_answers, dict):
            raise Invalid.field("merged.answers", "an object of answers by question id")
        answers = invariants.merge_resolution(
            (base or {}).get("answers"),
            mine.get("answers") or {},
            theirs.get("answers") or {},
            merged_answers,
        )
        return {"answers": answers}

    @classmethod
    def run_many(
        cls, commands: Sequence[Any], contexts: Sequence[Context], *, alone: bool
    ) -> list[Outcome | DomainError]:
        if alone:
            try:
                return [commands[0].handle(contexts[0])]
            except DomainError as error:
                return [error]
        return update_inspections(commands, contexts)

    def handle(self, ctx: Context) -> Outcome:
        inspection = _authorized(ctx, self.name, self.id)
        device = ctx.actor.device_id
        if (
            self.previous_seq is not None
            and device
            and not arrived_from_device(inspection.id, device, self.previous_seq)
        ):
            return self._hold(ctx, inspection)
        if self.device_seq is None or not device:
            return self.save_answers(ctx, inspection)
        # A numbered update: whatever its answer, the device's later updates held for it may
        # go now, and one arriving later must find that this one came (a refusal included,
        # or it would wait for good).
        try:
            with transaction.atomic():
                outcome = self.save_answers(ctx, inspection)
        except DomainError as error:
            outcome = Outcome(error.status, error.body(), [], refusal=error)
        if outcome.refusal is not None:
            outcome.changes.append(self._record_refused(ctx, outcome.refusal))
        outcome.changes.extend(_release_held(inspection.id, device, self.device_seq))
        return outcome

    def save_answers(self, ctx: Context, inspection: Inspection) -> Outcome:
        """Merge and write this patch on the locked inspection, or refuse it."""
        decision = decide(
            self,
            ctx,
            inspection,
            lambda base: changed_by_others(
                inspection.id, after_version=base, device=ctx.actor.device_id
            )[0],
        )
        if decision.conflicting:
            current = inspection_view(inspection)
            return conflict_outcome(self, ctx, current, inspection.version, decision.conflicting)
        before = inspection_view(inspection)
        take(inspection, decision)
        _save(
            inspection,
            ctx,
            action=self.name,
            changed=decision.changed,
            device_seq=self.device_seq,
            base_version=self.base_version,
        )
        body = SavedAnswersView(inspection_view(inspection), decision.merge)
        return Outcome(200, body, [change_of(inspection, before)])

    def _hold(self, ctx: Context, inspection: Inspection) -> Outcome:
        held = self._keep(ctx, HeldUpdate.HELD, None)
        return Outcome(202, held_view(held), [kept_change(held)])

    def _record_refused(self, ctx: Context, refusal: DomainError) -> Change:
        return kept_change(self._keep(ctx, refusal_status(refusal), refusal.body()))

    def _keep(self, ctx: Context, status: str, result: dict[str, Any] | None) -> HeldUpdate:
        assert self.device_seq is not None
        row = kept_row(self, ctx, status, result)
        defaults = {
            f.attname: getattr(row, f.attname)
            for f in HeldUpdate._meta.concrete_fields
            if f.attname not in ("id", "inspection_id", "device", "device_seq", "created_at")
        }
        kept, _ = HeldUpdate.objects.get_or_create(
            inspection_id=self.id,
            device=ctx.actor.device_id,
            device_seq=self.device_seq,
            defaults=defaults,
        )
        return kept


def _release_held(inspection_id: UUID, device: str, device_seq: int) -> list[Change]:
    """Apply, in the device's order, the updates it made after `device_seq` that were held for
    it; each answers (applied, conflict, failed) on its held row."""
    changes: list[Change] = []
    waiting = held_after(inspection_id, device, device_seq)
    while waiting:
        held = waiting[0]
        ctx = Context(
            actor=Actor(
                user_id=held.actor_id,
                username=held.actor,
                role=held.actor_role,
                location_ids=frozenset(UUID(lid) for lid in held.actor_locations),
                device_id=device,
            ),
            client_ts=held.client_ts,
        )
        command = UpdateInspection(
            id=inspection_id,
            answers=held.answers,
            base_version=held.base_version,
            device_seq=held.device_seq,
            previous_seq=held.previous_seq,
        )
        before = held_view(held)
        try:
            with transaction.atomic():
                outcome = command.save_answers(ctx, _authorized(ctx, command.name, inspection_id))
        except DomainError as error:
            held.status, held.result = HeldUpdate.FAILED, error.body()
        else:
            changes.extend(outcome.changes)
            held.status = HeldUpdate.CONFLICT if outcome.refusal else HeldUpdate.APPLIED
            saved = outcome.body if isinstance(outcome.body, SavedAnswersView) else None
            version = saved.inspection.version if saved else None
            held.result = {"status": outcome.status, "version": version}
        held.save(update_fields=["status", "result"])
        changes.append(
            Change(
                HELD_ENTITY,
                f"{inspection_id}:{held.device_seq}",
                before,
                held_view(held),
                publish=False,
            )
        )
        waiting = held_after(inspection_id, device, held.device_seq)
    return changes


# -- the lifecycle --


class SubmitInspection(Command):
    """Draft (or rejected) → submitted, when every required answer and photo count is there."""

    name = "inspection.submit"
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        inspection = _authorized(ctx, self.name, self.id)
        if inspection.status not in EDITABLE:
            raise WrongStatus(f"a {inspection.status} inspection cannot be submitted")
        missing = invariants.missing_answers(form_for(inspection), inspection.answers)
        if missing:
            raise Invalid("the inspection is incomplete", fields=missing)
        return _transition(ctx, inspection, self.name, Status.SUBMITTED)


class ApproveInspection(Command):
    name = "inspection.approve"
    id: UUID
    comment: str | None = None

    def validated(self) -> ApproveInspection:
        return self.model_copy(
            update={"comment": invariants.clean_comment(self.comment, required=False)}
        )

    def handle(self, ctx: Context) -> Outcome:
        inspection = _authorized(ctx, self.name, self.id)
        if inspection.status != Status.SUBMITTED:
            raise WrongStatus(f"a {inspection.status} inspection cannot be approved")
        return _transition(ctx, inspection, self.name, Status.APPROVED, self.comment or "")


class RejectInspection(Command):
    """Submitted → rejected with the manager's comments; the inspector's next save makes it a
    draft again (the comments stay on it)."""

    name = "inspection.reject"
    id: UUID
    comment: str

    def validated(self) -> RejectInspection:
        return self.model_copy(
            update={"comment": invariants.clean_comment(self.comment, required=True)}
        )

    def handle(self, ctx: Context) -> Outcome:
        inspection = _authorized(ctx, self.name, self.id)
        if inspection.status != Status.SUBMITTED:
            raise WrongStatus(f"a {inspection.status} inspection cannot be rejected")
        return _transition(ctx, inspection, self.name, Status.REJECTED, self.comment)


def _transition(
    ctx: Context, inspection: Inspection, action: str, status: str, comment: str = ""
) -> Outcome:
    before = inspection_view(inspection)
    inspection.status = status
    if status in (Status.APPROVED, Status.REJECTED):
        inspection.review_comment = comment
        inspection.reviewed_by = ctx.actor.username
    _save(inspection, ctx, action=action, changed=[], comment=comment)
    return Outcome(200, inspection_view(inspection), [change_of(inspection, before)])


class DeleteInspection(Command):
    """Soft delete: hidden from lists, a tombstone in the feed, restorable by a manager. An
    inspector deletes only their own draft; deleting a deleted one changes nothing."""

    name = "inspection.delete"
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        if Inspection.objects.filter(pk=self.id, deleted_at__isnull=False).exists():
            return Outcome(204, None)  # already deleted: idempotent, like items
        inspection = _authorized(ctx, self.name, self.id)
        if ctx.actor.role == Role.STAFF and inspection.status not in EDITABLE:
            raise InspectionLocked(inspection.status)
        before = inspection_view(inspection)
        inspection.deleted_at = timezone.now()
        _save(inspection, ctx, action=self.name, changed=[])
        return Outcome(204, None, [change_of(inspection, before)])


class RestoreInspection(Command):
    name = "inspection.restore"
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        inspection = Inspection.objects.select_for_update().filter(pk=self.id).first()
        if inspection is None:
            raise NotFound()
        policy.authorize(
            ctx.actor,
            self.name,
            location_id=inspection.location_id,
            owner_id=inspection.assignee_id,
        )
        if inspection.deleted_at is None:
            raise WrongStatus("the inspection is not deleted")
        before = inspection_view(inspection)
        inspection.deleted_at = None
        _save(inspection, ctx, action=self.name, changed=[])
        return Outcome(200, inspection_view(inspection), [change_of(inspection, before)])
