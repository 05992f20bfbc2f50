"""HTTP adapters for sync: the batch endpoint, the change feed, a device's sync status."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.http import actor_of, json_response
from quartermaster.core.pagination import clean_limit
from quartermaster.core.schemas import ErrorOut
from quartermaster.identity.permissions import can_read_device_status, feed_scope
from quartermaster.sync.schemas import (
    BatchIn,
    BatchOut,
    BatchQuery,
    ChangesOut,
    ChangesQuery,
    SyncStatusOut,
)
from quartermaster.sync.selectors import change_view, device_status_view, get_device, list_changes
from quartermaster.sync.services import Op, apply_batch

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut}

router = Router(tags=["sync"])
devices_router = Router(tags=["sync"])


@router.post("/batch", response={200: BatchOut, 207: BatchOut, 413: ErrorOut, **ERRORS})
def sync_batch(request: HttpRequest, batch: BatchIn, params: Query[BatchQuery]) -> HttpResponse:
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
