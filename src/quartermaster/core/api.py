"""HTTP adapters for the audit chain (list with filters, verify) and security events."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router
from pydantic import BaseModel, ConfigDict

from quartermaster.core import policy
from quartermaster.core.audit import verify_chain
from quartermaster.core.http import actor_of, json_response, page_response
from quartermaster.core.schemas import (
    AuditPageOut,
    AuditVerifyOut,
    ErrorOut,
    SecurityEventPageOut,
)
from quartermaster.core.selectors import (
    AUDIT_ORDER,
    SECURITY_EVENT_ORDER,
    audit_entry_view,
    list_audit_entries,
    list_security_events,
    security_event_view,
)

router = Router(tags=["audit"])
security_router = Router(tags=["audit"])


class AuditFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_type: str | None = None
    entity_id: str | None = None
    actor: str | None = None
    limit: int | None = None
    cursor: str | None = None


@router.get("", response={200: AuditPageOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut})
def list_audit(request: HttpRequest, filters: Query[AuditFilters]) -> HttpResponse:
    policy.authorize(actor_of(request), "audit.read")
    page = list_audit_entries(
        page=AUDIT_ORDER.request(cursor=filters.cursor, limit=filters.limit),
        entity_type=filters.entity_type,
        entity_id=filters.entity_id,
        actor=filters.actor,
    )
    return page_response(page, audit_entry_view)


@router.get("/verify", response={200: AuditVerifyOut, 401: ErrorOut, 403: ErrorOut})
def verify(request: HttpRequest) -> HttpResponse:
    policy.authorize(actor_of(request), "audit.verify")
    return json_response(200, verify_chain().as_dict())


class SecurityEventFilters(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str | None = None
    actor: str | None = None
    limit: int | None = None
    cursor: str | None = None


@security_router.get(
    "", response={200: SecurityEventPageOut, 400: ErrorOut, 401: ErrorOut, 403: ErrorOut}
)
def list_security(request: HttpRequest, filters: Query[SecurityEventFilters]) -> HttpResponse:
    """Failed and locked-out logins, permission denials, refused sync ops; newest first."""
    policy.authorize(actor_of(request), "security.read")
    page = list_security_events(
        page=SECURITY_EVENT_ORDER.request(cursor=filters.cursor, limit=filters.limit),
        kind=filters.kind,
        actor=filters.actor,
    )
    return page_response(page, security_event_view)
