"""HTTP adapters for day-ends: count, approve, read (with the late ops to review) and list."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import actor_of, context_for, json_response, page_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.dayend import services
from quartermaster.dayend.schemas import (
    DayEndDetailOut,
    DayEndIn,
    DayEndOut,
    DayEndPageOut,
    DayEndQuery,
)
from quartermaster.dayend.selectors import (
    DAY_END_ORDER,
    day_end_view,
    get_day_end,
    late_ops,
    list_day_ends,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

router = Router(tags=["day-ends"])


@router.post("", response={201: DayEndOut, **ERRORS})
def create_day_end(request: HttpRequest, payload: DayEndIn) -> HttpResponse:
    """The truck's count for `date`: answered with the books' figures and the differences."""
    command = services.CreateDayEnd.model_validate(payload.model_dump(mode="json"))
    return to_http(execute(command, context_for(request)))


@router.post("/{uuid:day_end_id}/approve", response={200: DayEndOut, **ERRORS})
def approve_day_end(request: HttpRequest, day_end_id: UUID) -> HttpResponse:
    """A manager closes the day: differences recorded (losses, journal), the day locked."""
    return to_http(execute(services.ApproveDayEnd(day_end=day_end_id), context_for(request)))


@router.get("/{uuid:day_end_id}", response={200: DayEndDetailOut, **ERRORS})
def read_day_end(request: HttpRequest, day_end_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "day_end.read")
    day_end = get_day_end(actor=actor, day_end_id=day_end_id)
    if day_end is None:
        raise NotFound()
    body = {**day_end_view(day_end).wire, "late_ops": [op.wire() for op in late_ops(day_end)]}
    return json_response(200, body)


@router.get("", response={200: DayEndPageOut, **ERRORS})
def day_ends(request: HttpRequest, params: Query[DayEndQuery]) -> HttpResponse:
    """Oldest first; `?location=&status=open|closed`."""
    actor = actor_of(request)
    policy.authorize(actor, "day_end.read")
    page = DAY_END_ORDER.request(cursor=params.cursor, limit=params.limit)
    found = list_day_ends(actor=actor, location=params.location, status=params.status, page=page)
    return page_response(found, lambda day_end: day_end_view(day_end).wire)
