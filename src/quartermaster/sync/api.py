"""HTTP adapters for sync: the batch endpoint, the change feed, a device's sync status."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import metrics, policy
from quartermaster.core.commands import Command, execute
from quartermaster.core.conflicts import (
    CONFLICT_ORDER,
    ResolveConflict,
    conflict_view,
    get_conflict,
    list_conflicts,
)
from quartermaster.core.errors import Invalid, NotAuthenticated, NotFound
from quartermaster.core.http import actor_of, context_for, json_response, page_response, to_http
from quartermaster.core.pagination import clean_limit
from quartermaster.core.schemas import ErrorOut
from quartermaster.identity.permissions import (
    can_read_device_status,
    feed_scope,
    own_records_only,
)
from quartermaster.identity.selectors import is_device_revoked
from quartermaster.sync.ops import Op
from quartermaster.sync.schemas import (
    BatchIn,
    BatchOut,
    BatchQuery,
    ChangesOut,
    ChangesQuery,
    ConflictOut,
    ConflictPageOut,
    ConflictQuery,
    ResolveIn,
    SyncStatusOut,
)
from quartermaster.sync.selectors import change_view, device_status_view, get_device, list_changes
from quartermaster.sync.services import apply_batch

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut}

router = Router(tags=["sync"])
devices_router = Router(tags=["sync"])
conflicts_router = Router(tags=["sync"])


@router.post("/batch", response={200: BatchOut, 207: BatchOut, 413: ErrorOut, **ERRORS})
def sync_batch(request: HttpRequest, batch: BatchIn, params: Query[BatchQuery]) -> HttpResponse:
    if is_device_revoked(batch.device_id):
        # Its tokens are dead already; a fresh login must not sync in its name either.
        raise NotAuthenticated("this device has been revoked")
    ops = [
        Op(
            op_id=op.op_id,
            type=op.type,
            payload=op.payload,
            client_temp_id=op.client_temp_id,
            client_ts=op.client_ts or "",
            device_seq=op.device_seq,
            group=op.group,
            base_version=op.base_version,
        )
        for op in batch.ops
    ]
    result = apply_batch(
        actor=actor_of(request), device_id=batch.device_id, ops=ops, dry_run=params.dry_run
    )
    if not result.dry_run:
        for op, answer in zip(ops, result.results, strict=False):
            outcome = metrics.sync_outcome(answer.status, replayed=answer.replayed)
            metrics.count_sync_op(op.type, outcome, known=op.type in Command.registry)
    body = {
        "results": [
            {
                "op_id": r.op_id,
                "status": r.status,
                "body": r.body,
                "id_map": r.id_map,
                "replayed": r.replayed,
            }
            for r in result.results
        ],
        "cursor": str(result.cursor),
        "dry_run": result.dry_run,
    }
    return json_response(200 if result.all_succeeded else 207, body)


@router.get("/changes", response={200: ChangesOut, **ERRORS})
def sync_changes(request: HttpRequest, params: Query[ChangesQuery]) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "sync.changes")
    since = _clean_since(params.since)
    page = list_changes(scope=feed_scope(actor), since=since, limit=clean_limit(params.limit))
    return json_response(
        200,
        {
            "changes": [change_view(entry) for entry in page.entries],
            "cursor": str(page.cursor),
            "has_more": page.has_more,
        },
    )


def _clean_since(since: str | None) -> int:
    if since is None or since == "":
        return 0
    if not since.isdigit() or len(since) > 18:
        raise Invalid.field("since", "a cursor from an earlier answer (a non-negative integer)")
    return int(since)


@devices_router.get(
    "/{device_id}/sync-status", response={200: SyncStatusOut, 404: ErrorOut, **ERRORS}
)
def device_sync_status(request: HttpRequest, device_id: str) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "sync.device_status")
    device = get_device(device_id)
    # Someone else's device answers like an unknown one: its existence is not revealed.
    if device is None or not can_read_device_status(actor, device.user_id):
        raise NotFound()
    return json_response(200, device_status_view(device))


@conflicts_router.get("", response={200: ConflictPageOut, **ERRORS})
def list_all_conflicts(request: HttpRequest, params: Query[ConflictQuery]) -> HttpResponse:
    """Staff see the conflicts their own writes raised; managers, admins and auditors all."""
    actor = actor_of(request)
    policy.authorize(actor, "conflict.read")
    page = list_conflicts(
        owner_id=actor.user_id if own_records_only(actor, "conflict.read") else None,
        status=params.status,
        page=CONFLICT_ORDER.request(cursor=params.cursor, limit=params.limit),
    )
    return page_response(page, conflict_view)


@conflicts_router.get("/{uuid:conflict_id}", response={200: ConflictOut, 404: ErrorOut, **ERRORS})
def retrieve_conflict(request: HttpRequest, conflict_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "conflict.read")
    conflict = get_conflict(conflict_id)
    if conflict is None:
        raise NotFound()
    policy.authorize(actor, "conflict.read", owner_id=conflict.actor_id)
    return json_response(200, conflict_view(conflict))


@conflicts_router.post(
    "/{uuid:conflict_id}/resolve", response={200: dict[str, Any], 404: ErrorOut, **ERRORS}
)
def resolve_conflict(request: HttpRequest, conflict_id: UUID, payload: ResolveIn) -> HttpResponse:
    command = ResolveConflict(
        conflict_id=conflict_id, strategy=payload.strategy, merged=payload.merged
    )
    return to_http(execute(command, context_for(request)))
