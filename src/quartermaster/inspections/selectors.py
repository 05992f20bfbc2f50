"""Reads for inspections: templates (a version's form and its wire view), inspections scoped by
the caller (staff: their own at their locations; managers, admins, auditors: all), their saved
versions and the diff between two.

The policy decides who sees what (identity.permissions); the queries here narrow lists the same
way, so a list never shows a record its detail would answer 404 for.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db.models import QuerySet

from quartermaster.core.pagination import Keyset, Page, PageRequest, int_key, time_key, uuid_key
from quartermaster.core.types import Actor, View
from quartermaster.identity.permissions import allows, own_records_only, visible_location_ids
from quartermaster.inspections import invariants
from quartermaster.inspections.invariants import Form, Question, Score, Section
from quartermaster.inspections.models import (
    HeldUpdate,
    Inspection,
    InspectionVersion,
    Template,
    TemplateVersion,
)

ENTITY = "inspection"
TEMPLATE_ENTITY = "inspection.template"
TEMPLATE_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")))
INSPECTION_ORDER = Keyset(fields=(time_key("created_at"), uuid_key("id")))
VERSION_ORDER = Keyset(fields=(int_key("version"),))


# -- templates --


def form_of(version: TemplateVersion) -> Form:
    """A stored version's form (stored as its cleaned wire view)."""
    return Form(
        tuple(
            Section(
                id=section["id"],
                title=section["title"],
                questions=tuple(_question(raw) for raw in section["questions"]),
            )
            for section in version.sections
        )
    )


def _question(raw: dict[str, Any]) -> Question:
    return Question(
        id=raw["id"],
        type=raw["type"],
        label=raw["label"],
        required=raw.get("required", False),
        options=tuple(raw.get("options", ())),
        min=raw.get("min"),
        max=raw.get("max"),
        unit=raw.get("unit", ""),
        weight=raw.get("weight", 0),
        option_scores=tuple((raw.get("option_scores") or {}).items()),
    )


@dataclass(frozen=True)
class TemplateView(View):
    """One version of a template. `sections` is the version's form as stored (its cleaned wire
    view, written once): sealed as stored."""

    id: UUID
    name: str
    version: int
    latest_version: int
    published_version: int | None
    sections: list[Any]
    published_at: datetime | None
    published_by: str | None
    created_by: str
    created_at: datetime

    @property
    def status(self) -> str:
        return "published" if self.published_at else "draft"

    def to_wire(self) -> dict[str, Any]:
        """API.md "Inspections": templates."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.id),
            "name": self.name,
            "version": self.version,
            "status": self.status,
            "latest_version": self.latest_version,
            "published_version": self.published_version,
            "sections": self.sections,
            "published_at": self.published_at.isoformat() if self.published_at else None,
            "published_by": self.published_by,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


def template_view(template: Template, version: TemplateVersion) -> TemplateView:
    return TemplateView(
        id=template.id,
        name=version.name,
        version=version.version,
        latest_version=template.latest_version,
        published_version=template.published_version,
        sections=version.sections,
        published_at=version.published_at,
        published_by=version.published_by or None,
        created_by=template.created_by,
        created_at=template.created_at,
    )


def authors_templates(actor: Actor) -> bool:
    """Authors (managers, admins) see drafts; everyone else only published versions."""
    return allows(actor, "inspection.template.update")


def get_template(template_id: UUID) -> Template | None:
    return Template.objects.filter(pk=template_id).first()


def get_template_version(template_id: UUID, version: int) -> TemplateVersion | None:
    return TemplateVersion.objects.filter(template_id=template_id, version=version).first()


# A published version never changes (the handlers never write one and migration 0002's triggers
# refuse to), so its parsed form is kept per process: saving answers to a 200-question
# inspection neither re-reads nor re-parses its template every time (a third of an update's
# time before). Bounded: a process holds at most this many forms.
_PUBLISHED_FORMS_MAX = 256
_published_forms: dict[tuple[UUID, int], Form] = {}


def published_form(template_id: UUID, version: int) -> Form | None:
    """The form of a published template version, or None when that version is not published."""
    key = (template_id, version)
    form = _published_forms.get(key)
    if form is not None:
        return form
    row = get_template_version(template_id, version)
    if row is None or row.published_at is None:
        return None
    form = form_of(row)
    if len(_published_forms) >= _PUBLISHED_FORMS_MAX:
        _published_forms.clear()
    _published_forms[key] = form
    return form


def shown_version(template: Template, actor: Actor, version: int | None) -> TemplateVersion | None:
    """The version `actor` is shown: the one asked for, else the latest (authors) or latest
    published (everyone else); a reader never sees an unpublished version."""
    author = authors_templates(actor)
    if version is None:
        version = template.latest_version if author else template.published_version
    if version is None:
        return None
    row = get_template_version(template.id, version)
    if row is None or (row.published_at is None and not author):
        return None
    return row


def list_templates(*, actor: Actor, page: PageRequest) -> Page[tuple[Template, TemplateVersion]]:
    query = Template.objects.all()
    author = authors_templates(actor)
    if not author:
        query = query.filter(published_version__isnull=False)
    templates = TEMPLATE_ORDER.page(query, page)

    def shown(template: Template) -> int:
        version = template.latest_version if author else template.published_version
        assert version is not None  # readers' query holds published templates only
        return version

    wanted = {(t.pk, shown(t)) for t in templates.rows}
    versions = {
        (row.template_id, row.version): row
        for row in TemplateVersion.objects.filter(template__in=[t.pk for t in templates.rows])
        if (row.template_id, row.version) in wanted
    }
    return templates.map(lambda t: (t, versions[(t.pk, shown(t))]))


def earlier_forms(template_id: UUID) -> list[Form]:
    return [
        form_of(row)
        for row in TemplateVersion.objects.filter(template_id=template_id).order_by("version")
    ]


# -- inspections --


@dataclass(frozen=True)
class InspectionView(View):
    """An inspection as it stands. `answers` are the inspector's, stored as cleaned: sealed as
    stored."""

    id: UUID
    template: UUID
    template_version: int
    location: UUID
    assignee: UUID
    status: str
    answers: dict[str, Any]
    score: Score
    review_comment: str | None
    reviewed_by: str | None
    version: int
    deleted: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_wire(self) -> dict[str, Any]:
        """API.md "Inspections"."""
        return {
            "id": str(self.id),
            "template": str(self.template),
            "template_version": self.template_version,
            "location": str(self.location),
            "assignee": str(self.assignee),
            "status": self.status,
            "answers": self.answers,
            "score": self.score.view(),
            "review_comment": self.review_comment,
            "reviewed_by": self.reviewed_by,
            "version": self.version,
            "deleted": self.deleted,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire. `answers`
        keeps one name in both: conflicts merge it as read back from the chain."""
        bp = self.score.percent_bp
        return {
            "id": str(self.id),
            "template": str(self.template),
            "template_version": self.template_version,
            "location": str(self.location),
            "assignee": str(self.assignee),
            "status": self.status,
            "answers": self.answers,
            "score": {
                "earned": self.score.earned,
                "possible": self.score.possible,
                "percent": None if bp is None else f"{bp // 100}.{bp % 100:02d}",
            },
            "review_comment": self.review_comment,
            "reviewed_by": self.reviewed_by,
            "version": self.version,
            "deleted": self.deleted,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


def inspection_view(inspection: Inspection) -> InspectionView:
    return InspectionView(
        id=inspection.id,
        template=inspection.template_id,
        template_version=inspection.template_version,
        location=inspection.location_id,
        assignee=inspection.assignee_id,
        status=inspection.status,
        answers=inspection.answers,
        score=Score(inspection.score_earned, inspection.score_possible),
        review_comment=inspection.review_comment or None,
        reviewed_by=inspection.reviewed_by or None,
        version=inspection.version,
        deleted=inspection.deleted_at is not None,
        created_by=inspection.created_by,
        created_at=inspection.created_at,
        updated_at=inspection.updated_at,
    )


@dataclass(frozen=True)
class SavedAnswersView(View):
    """`inspection.update`'s answer: the inspection as saved and the merge it made (None when
    written on the version it read). Only an answer: the inspection is sealed by its change."""

    inspection: InspectionView
    merge: dict[str, Any] | None

    def to_wire(self) -> dict[str, Any]:
        return {**self.inspection.wire, "merge": self.merge}


def _scoped(actor: Actor, action: str) -> QuerySet[Inspection]:
    query = Inspection.objects.all()
    locations = visible_location_ids(actor)
    if locations is not None:
        query = query.filter(location_id__in=list(locations))
    if own_records_only(actor, action):
        query = query.filter(assignee_id=actor.user_id)
    return query


def list_inspections(
    *,
    actor: Actor,
    page: PageRequest,
    status: str | None = None,
    deleted: bool = False,
    location_id: UUID | None = None,
    assignee_id: UUID | None = None,
) -> Page[Inspection]:
    """The inspections `actor` may read; soft-deleted ones only when asked (`deleted`)."""
    query = _scoped(actor, "inspection.read").filter(deleted_at__isnull=not deleted)
    if status is not None:
        query = query.filter(status=status)
    if location_id is not None:
        query = query.filter(location_id=location_id)
    if assignee_id is not None:
        query = query.filter(assignee_id=assignee_id)
    return INSPECTION_ORDER.page(query, page)


def names_media_readable_by(actor: Actor, media_id: UUID) -> bool:
    """True when a live inspection `actor` may read names `media_id` as a photo or signature:
    whoever reads an inspection reads its media (media.attachments asks). The text search only
    narrows; the form decides, so a media id typed into a text answer attaches nothing."""
    candidates = _scoped(actor, "inspection.read").filter(
        deleted_at__isnull=True, answers__icontains=str(media_id)
    )
    for inspection in candidates.order_by("created_at", "id")[:_MEDIA_CANDIDATES_MAX]:
        form = published_form(inspection.template_id, inspection.template_version)
        if form is None or not allows(
            actor,
            "inspection.read",
            location_id=inspection.location_id,
            owner_id=inspection.assignee_id,
        ):
            continue
        named = invariants.media_of(form, inspection.answers)
        if any(media_id in ids for ids in named.values()):
            return True
    return False


# How many inspections naming one media id are looked at (one photo is on one inspection or
# few; a bound keeps a hostile answer from making one read walk the table).
_MEDIA_CANDIDATES_MAX = 20


def get_inspection(inspection_id: UUID, *, deleted: bool = False) -> Inspection | None:
    """Unscoped: callers authorize with the record's location and assignee."""
    return (
        Inspection.objects.filter(pk=inspection_id, deleted_at__isnull=not deleted)
        .select_related(None)
        .first()
    )


@dataclass(frozen=True)
class VersionView(View):
    """One saved version of an inspection (its history row; read, never sealed: each save's
    audit entry is the inspection's own)."""

    version: int
    action: str
    status: str
    answers: dict[str, Any]
    changed: list[str]
    deleted: bool
    comment: str | None
    actor: str
    device: str | None
    device_seq: int | None
    base_version: int | None
    at: datetime

    def to_wire(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "action": self.action,
            "status": self.status,
            "answers": self.answers,
            "changed": self.changed,
            "deleted": self.deleted,
            "comment": self.comment,
            "actor": self.actor,
            "device": self.device,
            "device_seq": self.device_seq,
            "base_version": self.base_version,
            "at": self.at.isoformat(),
        }


def version_view(row: InspectionVersion) -> VersionView:
    return VersionView(
        version=row.version,
        action=row.action,
        status=row.status,
        answers=row.answers,
        changed=row.changed,
        deleted=row.deleted,
        comment=row.comment or None,
        actor=row.actor,
        device=row.device or None,
        device_seq=row.device_seq,
        base_version=row.base_version,
        at=row.at,
    )


def list_versions(inspection_id: UUID, *, page: PageRequest) -> Page[InspectionVersion]:
    return VERSION_ORDER.page(InspectionVersion.objects.filter(inspection_id=inspection_id), page)


def get_version(inspection_id: UUID, version: int) -> InspectionVersion | None:
    return InspectionVersion.objects.filter(inspection_id=inspection_id, version=version).first()


@dataclass(frozen=True)
class DiffView(View):
    """What changed between two saved versions (read, never sealed)."""

    before: VersionView
    after: VersionView

    def to_wire(self) -> dict[str, Any]:
        before, after = self.before, self.after
        return {
            "from": before.version,
            "to": after.version,
            "status": {"from": before.status, "to": after.status},
            "deleted": {"from": before.deleted, "to": after.deleted},
            "answers": invariants.diff_answers(before.answers, after.answers),
        }


def diff_view(before: InspectionVersion, after: InspectionVersion) -> DiffView:
    return DiffView(version_view(before), version_view(after))


def changed_by_others(
    inspection_id: UUID, *, after_version: int, device: str
) -> tuple[set[str], int]:
    """Question ids changed by saves after `after_version` that this device did not make (its
    own earlier offline edits are not someone else's), and how many such saves there were."""
    changed: set[str] = set()
    saves = 0
    rows = InspectionVersion.objects.filter(
        inspection_id=inspection_id, version__gt=after_version
    ).values_list("device", "changed")
    for row_device, row_changed in rows:
        if device and row_device == device:
            continue
        saves += 1
        changed.update(row_changed)
    return changed, saves


def arrived_from_device(inspection_id: UUID, device: str, device_seq: int) -> bool:
    """Whether the device's update numbered `device_seq` has had its answer: applied (a version
    made by it), or refused or conflicting (kept as a `HeldUpdate` that is no longer held)."""
    applied = InspectionVersion.objects.filter(
        inspection_id=inspection_id, device=device, device_seq=device_seq
    )
    answered = HeldUpdate.objects.filter(
        inspection_id=inspection_id, device=device, device_seq=device_seq
    ).exclude(status=HeldUpdate.HELD)
    return applied.exists() or answered.exists()


def held_after(inspection_id: UUID, device: str, device_seq: int) -> list[HeldUpdate]:
    """Updates of this device waiting for the one it numbered `device_seq`."""
    return list(
        HeldUpdate.objects.filter(
            inspection_id=inspection_id,
            device=device,
            previous_seq=device_seq,
            status=HeldUpdate.HELD,
        ).order_by("device_seq")
    )


@dataclass(frozen=True)
class HeldView(View):
    """A device's numbered update kept apart: held for its predecessor, or answered."""

    inspection: UUID
    device_seq: int
    waiting_for_seq: int | None
    status: str

    def to_wire(self) -> dict[str, Any]:
        """The 202 of a held update."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the wire body of its time), written apart from the wire."""
        return {
            "id": str(self.inspection),
            "held": True,
            "device_seq": self.device_seq,
            "waiting_for_seq": self.waiting_for_seq,
            "status": self.status,
        }


def held_view(held: HeldUpdate) -> HeldView:
    return HeldView(held.inspection_id, held.device_seq, held.previous_seq, held.status)
