"""HTTP adapters for the audit chain (list with filters, verify, inclusion proofs) and
security events."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import checkpoints, policy
from quartermaster.core.audit import verify_chain
from quartermaster.core.errors import Conflict, NotFound
from quartermaster.core.http import actor_of, json_response, page_response
from quartermaster.core.schemas import (
    AuditPageOut,
    AuditProofOut,
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


class ProofQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    entity_type: str = Field(min_length=1, max_length=100)
    entity_id: str = Field(min_length=1, max_length=100)


class NoCheckpoint(Conflict):
    code = "no_checkpoint"


class ChainDisagrees(Conflict):
    code = "audit_chain_disagrees"


@router.get(
    "/proof",
    response={
        200: AuditProofOut,
        400: ErrorOut,
        401: ErrorOut,
        403: ErrorOut,
        404: ErrorOut,
        409: ErrorOut,
    },
)
def proof(request: HttpRequest, params: Query[ProofQuery]) -> HttpResponse:
    """Every audit entry of one record (a receipt, an invoice) up to the latest published
    checkpoint, each with its Merkle audit path: checkable offline against that checkpoint."""
    policy.authorize(actor_of(request), "audit.read")
    checkpoint = checkpoints.sink().latest()
    if checkpoint is None:
        raise NoCheckpoint("no audit checkpoint has been published yet")
    try:
        found = checkpoints.inclusion_proof(checkpoint, params.entity_type, params.entity_id)
    except checkpoints.ChainDisagrees as error:
        raise ChainDisagrees(str(error)) from error
    if not found.entries:
        raise NotFound("no audit entry of this record is covered by the latest checkpoint")
    return json_response(
        200,
        {
            "checkpoint": checkpoint.as_dict(),
            "public_key": checkpoints.public_key_hex(),
            "entity_type": params.entity_type,
            "entity_id": params.entity_id,
            "entries": found.entries,
        },
    )
