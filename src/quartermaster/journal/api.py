"""HTTP adapters for the journal: entries (list, read, post an adjustment, reverse) and accounts."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import actor_of, context_for, json_response, page_response, to_http
from quartermaster.core.schemas import ErrorOut
from quartermaster.core.types import wire_of
from quartermaster.journal import invariants, services
from quartermaster.journal.schemas import (
    AccountPageOut,
    AccountsQuery,
    EntriesQuery,
    EntryIn,
    EntryOut,
    EntryPageOut,
    ReverseIn,
)
from quartermaster.journal.selectors import (
    ACCOUNT_ORDER,
    ENTRY_ORDER,
    get_entry,
    list_accounts,
    list_entries,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

router = Router(tags=["journal"])


@router.post("/entries", response={201: EntryOut, **ERRORS})
def post_entry(request: HttpRequest, payload: EntryIn) -> HttpResponse:
    """A manual adjustment (admin): balanced lines on accounts named by code."""
    # The wire body is the command's: built from it whole, a refused amount keeps its path.
    command = services.PostManualEntry.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.get("/entries", response={200: EntryPageOut, **ERRORS})
def entries(request: HttpRequest, params: Query[EntriesQuery]) -> HttpResponse:
    """Newest first; `account` narrows to the entries with a line on that account."""
    policy.authorize(actor_of(request), "journal.read")
    page = ENTRY_ORDER.request(cursor=params.cursor, limit=params.limit)
    account = None if params.account is None else invariants.clean_code(params.account)
    found = list_entries(account=account, page=page)
    return page_response(found, wire_of)


@router.get("/entries/{uuid:entry_id}", response={200: EntryOut, **ERRORS})
def entry(request: HttpRequest, entry_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "journal.read")
    view = get_entry(entry_id)
    if view is None:
        raise NotFound()
    return json_response(200, view.wire)


@router.post("/entries/{uuid:entry_id}/reverse", response={201: EntryOut, **ERRORS})
def reverse_entry(request: HttpRequest, entry_id: UUID, payload: ReverseIn) -> HttpResponse:
    """Post the mirror entry (admin). An entry is reversed at most once: again → 409."""
    command = services.ReverseEntry(entry=entry_id, reason=payload.reason)
    return to_http(execute(command, context_for(request)))


@router.get("/accounts", response={200: AccountPageOut, **ERRORS})
def accounts(request: HttpRequest, params: Query[AccountsQuery]) -> HttpResponse:
    """Accounts by code with their balances (debits less credits) and raw totals."""
    policy.authorize(actor_of(request), "journal.read")
    found = list_accounts(page=ACCOUNT_ORDER.request(cursor=params.cursor, limit=params.limit))
    return page_response(found, wire_of)
