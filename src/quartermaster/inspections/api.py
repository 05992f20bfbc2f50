"""HTTP adapters for inspections: templates (with ETag / 304), inspections, their versions and
diffs. The inspection report PDF (`/inspections/{id}/report`) comes with the document engine."""

from __future__ import annotations

from uuid import UUID

from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import (
    actor_of,
    base_version_of,
    conditional_json,
    context_for,
    json_response,
    page_response,
    to_http,
)
from quartermaster.core.schemas import INT63_MAX, ErrorOut
from quartermaster.documents.http import PDF_RESPONSE, pdf_response
from quartermaster.documents.render import render_inspection_report
from quartermaster.inspections import services
from quartermaster.inspections.documents import inspection_report
from quartermaster.inspections.models import Inspection
from quartermaster.inspections.schemas import (
    ApproveIn,
    DiffOut,
    DiffQuery,
    InspectionIn,
    InspectionOut,
    InspectionPageOut,
    InspectionPatchIn,
    InspectionQuery,
    PageQuery,
    RejectIn,
    SectionIn,
    TemplateIn,
    TemplateOut,
    TemplatePageOut,
    TemplateQuery,
    VersionOut,
    VersionPageOut,
)
from quartermaster.inspections.selectors import (
    INSPECTION_ORDER,
    TEMPLATE_ORDER,
    VERSION_ORDER,
    diff_view,
    get_inspection,
    get_template,
    get_version,
    inspection_view,
    list_inspections,
    list_templates,
    list_versions,
    shown_version,
    template_view,
    version_view,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

templates_router = Router(tags=["inspections"])
router = Router(tags=["inspections"])


def _sections(sections: list[SectionIn]) -> tuple[services.SectionIn, ...]:
    return tuple(
        services.SectionIn(
            id=section.id,
            title=section.title,
            questions=tuple(
                services.QuestionIn(**question.model_dump(exclude_none=True))
                for question in section.questions
            ),
        )
        for section in sections
    )


@templates_router.post("", response={201: TemplateOut, **ERRORS})
def create_template(request: HttpRequest, payload: TemplateIn) -> HttpResponse:
    command = services.CreateTemplate(name=payload.name, sections=_sections(payload.sections))
    return to_http(execute(command, context_for(request)))


@templates_router.get("", response={200: TemplatePageOut, 304: None, **ERRORS})
def list_all_templates(request: HttpRequest, params: Query[PageQuery]) -> HttpResponse:
    """Authors see each template's latest version, everyone else its latest published one.
    `ETag` on the page; `If-None-Match` with it → 304, no body."""
    actor = actor_of(request)
    policy.authorize(actor, "inspection.template.read")
    page = list_templates(
        actor=actor, page=TEMPLATE_ORDER.request(cursor=params.cursor, limit=params.limit)
    )
    return conditional_json(
        request,
        {
            "results": [template_view(*row).wire for row in page.rows],
            "next_cursor": page.next_cursor,
        },
    )


@templates_router.get("/{uuid:template_id}", response={200: TemplateOut, 304: None, **ERRORS})
def retrieve_template(
    request: HttpRequest, template_id: UUID, params: Query[TemplateQuery]
) -> HttpResponse:
    """`?version=` a given version (readers: published ones only). `ETag`; 304 on a match."""
    actor = actor_of(request)
    policy.authorize(actor, "inspection.template.read")
    template = get_template(template_id)
    row = None if template is None else shown_version(template, actor, params.version)
    if template is None or row is None:
        raise NotFound()
    return conditional_json(request, template_view(template, row).wire)


@templates_router.put("/{uuid:template_id}", response={200: TemplateOut, **ERRORS})
def revise_template(request: HttpRequest, template_id: UUID, payload: TemplateIn) -> HttpResponse:
    """Replace the draft, or start a new version when the latest is published (immutable)."""
    command = services.ReviseTemplate(
        id=template_id, name=payload.name, sections=_sections(payload.sections)
    )
    return to_http(execute(command, context_for(request)))


@templates_router.post("/{uuid:template_id}/publish", response={200: TemplateOut, **ERRORS})
def publish_template(request: HttpRequest, template_id: UUID) -> HttpResponse:
    return to_http(execute(services.PublishTemplate(id=template_id), context_for(request)))


@router.post("", response={201: InspectionOut, **ERRORS})
def create_inspection(request: HttpRequest, payload: InspectionIn) -> HttpResponse:
    command = services.CreateInspection(
        template=payload.template,
        location=payload.location,
        assignee=payload.assignee,
        answers=payload.answers,
    )
    return to_http(execute(command, context_for(request)))


@router.get("", response={200: InspectionPageOut, **ERRORS})
def list_all_inspections(request: HttpRequest, params: Query[InspectionQuery]) -> HttpResponse:
    """Inspectors see their own; managers, admins and auditors every location's. `deleted=true`
    lists the soft-deleted ones (to restore them)."""
    actor = actor_of(request)
    policy.authorize(actor, "inspection.read")
    page = list_inspections(
        actor=actor,
        page=INSPECTION_ORDER.request(cursor=params.cursor, limit=params.limit),
        status=params.status,
        deleted=params.deleted,
        location_id=params.location,
        assignee_id=params.assignee,
    )
    return page_response(page, lambda inspection: inspection_view(inspection).wire)


def _readable(request: HttpRequest, inspection_id: UUID, *, deleted: bool = False) -> Inspection:
    actor = actor_of(request)
    policy.authorize(actor, "inspection.read")
    inspection = get_inspection(inspection_id)
    if inspection is None and deleted:
        inspection = get_inspection(inspection_id, deleted=True)
    if inspection is None:
        raise NotFound()
    policy.authorize(
        actor,
        "inspection.read",
        location_id=inspection.location_id,
        owner_id=inspection.assignee_id,
    )
    return inspection


@router.get("/{uuid:inspection_id}", response={200: InspectionOut, **ERRORS})
def retrieve_inspection(request: HttpRequest, inspection_id: UUID) -> HttpResponse:
    return json_response(200, inspection_view(_readable(request, inspection_id)).wire)


@router.patch("/{uuid:inspection_id}", response={200: InspectionOut, 202: dict, **ERRORS})
def update_inspection(
    request: HttpRequest, inspection_id: UUID, payload: InspectionPatchIn
) -> HttpResponse:
    """Answers as a patch (`null` clears one). With `base_version` (or `If-Match`) older than the
    inspection: answers others changed since merge (`merge` says which); the same answer changed
    on both sides → 409 `version_conflict` and a conflict record. Submitted or approved → 409
    `inspection_locked`."""
    command = services.UpdateInspection(
        id=inspection_id,
        answers=payload.answers,
        base_version=base_version_of(request, payload.base_version),
    )
    return to_http(execute(command, context_for(request)))


@router.delete("/{uuid:inspection_id}", response={204: None, **ERRORS})
def delete_inspection(request: HttpRequest, inspection_id: UUID) -> HttpResponse:
    """Soft delete: a manager can restore it. Never a hard delete."""
    return to_http(execute(services.DeleteInspection(id=inspection_id), context_for(request)))


@router.post("/{uuid:inspection_id}/submit", response={200: InspectionOut, **ERRORS})
def submit_inspection(request: HttpRequest, inspection_id: UUID) -> HttpResponse:
    """Incomplete (required answers, photo counts) → 400 naming each missing answer."""
    return to_http(execute(services.SubmitInspection(id=inspection_id), context_for(request)))


@router.post("/{uuid:inspection_id}/approve", response={200: InspectionOut, **ERRORS})
def approve_inspection(
    request: HttpRequest, inspection_id: UUID, payload: ApproveIn | None = None
) -> HttpResponse:
    command = services.ApproveInspection(
        id=inspection_id, comment=payload.comment if payload else None
    )
    return to_http(execute(command, context_for(request)))


@router.post("/{uuid:inspection_id}/reject", response={200: InspectionOut, **ERRORS})
def reject_inspection(request: HttpRequest, inspection_id: UUID, payload: RejectIn) -> HttpResponse:
    command = services.RejectInspection(id=inspection_id, comment=payload.comment)
    return to_http(execute(command, context_for(request)))


@router.post("/{uuid:inspection_id}/restore", response={200: InspectionOut, **ERRORS})
def restore_inspection(request: HttpRequest, inspection_id: UUID) -> HttpResponse:
    return to_http(execute(services.RestoreInspection(id=inspection_id), context_for(request)))


@router.get("/{uuid:inspection_id}/report", response={**ERRORS}, openapi_extra=PDF_RESPONSE)
def inspection_report_pdf(request: HttpRequest, inspection_id: UUID) -> HttpResponse:
    """The inspection as a printable PDF: each question of its template version with its
    answer, the score, the status and the reviewer's comment; read like the inspection."""
    inspection = _readable(request, inspection_id)
    report = inspection_report(inspection, issuer=django_settings.DOCUMENT_ISSUER)
    return pdf_response(
        render_inspection_report(report), filename=f"inspection-{inspection.id}.pdf"
    )


@router.get("/{uuid:inspection_id}/versions", response={200: VersionPageOut, **ERRORS})
def list_inspection_versions(
    request: HttpRequest, inspection_id: UUID, params: Query[PageQuery]
) -> HttpResponse:
    """Every saved version, oldest first (a soft-deleted inspection's too)."""
    inspection = _readable(request, inspection_id, deleted=True)
    page = list_versions(
        inspection.id, page=VERSION_ORDER.request(cursor=params.cursor, limit=params.limit)
    )
    return page_response(page, lambda row: version_view(row).wire)


@router.get("/{uuid:inspection_id}/versions/{int:version}", response={200: VersionOut, **ERRORS})
def retrieve_inspection_version(
    request: HttpRequest, inspection_id: UUID, version: int
) -> HttpResponse:
    inspection = _readable(request, inspection_id, deleted=True)
    row = get_version(inspection.id, version) if version <= INT63_MAX else None
    if row is None:
        raise NotFound()
    return json_response(200, version_view(row).wire)


@router.get("/{uuid:inspection_id}/diff", response={200: DiffOut, **ERRORS})
def diff_inspection_versions(
    request: HttpRequest, inspection_id: UUID, params: Query[DiffQuery]
) -> HttpResponse:
    """`?from=&to=`: answers added, removed and changed between two versions, and the status."""
    inspection = _readable(request, inspection_id, deleted=True)
    before = get_version(inspection.id, params.from_version)
    after = get_version(inspection.id, params.to_version)
    if before is None or after is None:
        raise NotFound()
    return json_response(200, diff_view(before, after).wire)
