"""HTTP adapters for loads: dispatch, receive, approve, read and list."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.http import actor_of, context_for, json_response, page_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.distribution import refills, services
from quartermaster.distribution.invariants import LoadStatus
from quartermaster.distribution.schemas import (
    LoadIn,
    LoadOut,
    LoadPageOut,
    LoadQuery,
    ReceiptIn,
    RefillIn,
    RefillOut,
    RefillReceiptIn,
)
from quartermaster.distribution.selectors import (
    LOAD_ORDER,
    get_load,
    list_loads,
    load_view,
    visible_to,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

router = Router(tags=["loads"])
refills_router = Router(tags=["refills"])


@router.post("", response={201: LoadOut, **ERRORS})
def dispatch_load(request: HttpRequest, payload: LoadIn) -> HttpResponse:
    """Stock leaves `from_location` at once for the in-transit location; short → 409."""
    command = services.DispatchLoad.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.post("/{uuid:load_id}/receive", response={200: LoadOut, **ERRORS})
def receive_load(request: HttpRequest, load_id: UUID, payload: ReceiptIn) -> HttpResponse:
    """Count every line (qty 0 when none arrived); a shortfall needs its reason."""
    command = services.ReceiveLoad.model_validate({**payload.model_dump(), "load": load_id})
    return to_http(execute(command, context_for(request)))


@router.post("/{uuid:load_id}/approve", response={200: LoadOut, **ERRORS})
def approve_load(request: HttpRequest, load_id: UUID) -> HttpResponse:
    """A manager signs off a shortage above QM_LOAD_SHORTAGE_APPROVAL."""
    return to_http(execute(services.ApproveLoad(load=load_id), context_for(request)))


@router.get("/{uuid:load_id}", response={200: LoadOut, **ERRORS})
def read_load(request: HttpRequest, load_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "load.read")
    load = get_load(load_id)
    if load is None or not visible_to(actor, load):
        raise NotFound()
    return json_response(200, load_view(load).wire)


@router.get("", response={200: LoadPageOut, **ERRORS})
def loads(request: HttpRequest, params: Query[LoadQuery]) -> HttpResponse:
    """Oldest first; `?status=in_transit&older_than_hours=N`: loads still on the road after N
    hours."""
    actor = actor_of(request)
    policy.authorize(actor, "load.read")
    if params.status is not None and params.status not in LoadStatus.values:
        raise Invalid.field("status", f"one of {', '.join(LoadStatus.values)}")
    page = LOAD_ORDER.request(cursor=params.cursor, limit=params.limit)
    found = list_loads(
        actor=actor, status=params.status, older_than_hours=params.older_than_hours, page=page
    )
    return page_response(found, lambda load: load_view(load, list(load.lines.all())).wire)


@refills_router.post("", response={201: RefillOut, **ERRORS})
def send_refill(request: HttpRequest, payload: RefillIn) -> HttpResponse:
    """Empties leave `from_location` at once for the filling plant; short → 409."""
    command = refills.SendRefill.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@refills_router.post("/{uuid:refill_id}/receive", response={200: RefillOut, **ERRORS})
def receive_refill(request: HttpRequest, refill_id: UUID, payload: RefillReceiptIn) -> HttpResponse:
    """Count every line's fulls back (0 when none); fewer than sent needs its reason."""
    command = refills.ReceiveRefill.model_validate({**payload.model_dump(), "refill": refill_id})
    return to_http(execute(command, context_for(request)))


@refills_router.get("/{uuid:refill_id}", response={200: RefillOut, **ERRORS})
def read_refill(request: HttpRequest, refill_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "refill.read")
    refill = refills.get_refill(actor=actor, refill_id=refill_id)
    if refill is None:
        raise NotFound()
    return json_response(200, refills.refill_view(refill).wire)
