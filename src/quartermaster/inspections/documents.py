"""An inspection as a printable report (the one PDF engine, quartermaster.documents): each
question of its template version with the answer given, as a reader would say it."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from django.utils import timezone

from quartermaster.core.models import AuditEntry
from quartermaster.documents.types import InspectionReport, ReportAnswer, ReportSection
from quartermaster.identity.models import User
from quartermaster.inspections import invariants
from quartermaster.inspections.invariants import Score
from quartermaster.inspections.models import Inspection, TemplateVersion
from quartermaster.inspections.selectors import ENTITY, form_of
from quartermaster.inventory.models import Location
from quartermaster.media.selectors import ready_media
from quartermaster.media.storage import read_small


def inspection_report(inspection: Inspection, *, issuer: str) -> InspectionReport:
    version = TemplateVersion.objects.get(
        template_id=inspection.template_id, version=inspection.template_version
    )
    location = Location.objects.filter(pk=inspection.location_id).first()
    inspector = User.objects.filter(pk=inspection.assignee_id).first()
    score = Score(inspection.score_earned, inspection.score_possible).view()
    answers: dict[str, Any] = dict(inspection.answers or {})
    thumbnails = _thumbnails(version, answers)
    # The chain's latest entry for the inspection: the one that recorded the version printed.
    recorded = (
        AuditEntry.objects.filter(entity_type=ENTITY, entity_id=str(inspection.id))
        .order_by("-seq")
        .only("seq", "hash")
        .first()
    )
    return InspectionReport(
        inspection_id=str(inspection.id),
        template_name=version.name,
        template_version=version.version,
        location=location.name if location else str(inspection.location_id),
        inspector=inspector.username if inspector else "",
        status=inspection.status,
        score=_score_text(score),
        version=inspection.version,
        review_comment=inspection.review_comment,
        sections=tuple(
            ReportSection(
                title=str(section.get("title", "")),
                answers=tuple(
                    ReportAnswer(
                        question=str(question.get("label", question.get("id", ""))),
                        answer=_said(answers.get(str(question.get("id")))),
                        images=thumbnails.get(str(question.get("id")), ()),
                    )
                    for question in section.get("questions", [])
                ),
            )
            for section in version.sections
        ),
        issued_at=timezone.localtime(datetime.now(tz=timezone.get_current_timezone())),
        issuer=issuer,
        reviewed_by=inspection.reviewed_by,
        audit_seq=recorded.seq if recorded else None,
        audit_hash=recorded.hash if recorded else None,
    )


def _thumbnails(version: TemplateVersion, answers: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    """Each photo and signature answer's confirmed media as thumbnails (`data:` URIs)."""
    named = invariants.media_of(form_of(version), answers)
    ready = ready_media(m for ids in named.values() for m in ids)
    found: dict[str, tuple[str, ...]] = {}
    for question_id, ids in named.items():
        images = []
        for media_id in ids:
            asset = ready.get(media_id)
            content = None if asset is None else read_small(asset.thumbnail_key)
            if content is not None:
                images.append("data:image/jpeg;base64," + base64.b64encode(content).decode())
        found[question_id] = tuple(images)
    return found


def _score_text(score: dict[str, Any]) -> str:
    if not score.get("possible"):
        return ""
    return f"{score['earned']} / {score['possible']} ({score['percent']} %)"


def _said(value: Any) -> str:
    """An answer as text: yes/no/n.a., choices joined, media as a count, nothing as a dash."""
    if value is None:
        return "—"
    if value is True:
        return "yes"
    if value is False:
        return "no"
    if value == "na":
        return "n/a"
    if isinstance(value, list):
        return ", ".join(str(part) for part in value) or "—"
    return str(value)
