"""HTTP adapters for sync: the batch endpoint, the change feed, a device's sync status."""

from __future__ import annotations

from dataclasses import replace
from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import metrics, policy, security
from quartermaster.core.commands import Command, execute
from quartermaster.core.conflicts import (
    CONFLICT_ORDER,
    ResolveConflict,
    conflict_view,
    get_conflict,
    list_conflicts,
)
from quartermaster.core.errors import Conflict, Invalid, NotAuthenticated, NotFound
from quartermaster.core.http import (
    actor_of,
    client_ip,
    context_for,
    json_response,
    page_response,
    to_http,
)
from quartermaster.core.pagination import clean_limit
from quartermaster.core.schemas import ErrorOut
from quartermaster.core.types import Actor, Context
from quartermaster.identity.errors import DeviceMismatch, DeviceNotYours
from quartermaster.identity.invariants import clean_device_id, device_key
from quartermaster.identity.permissions import (
    can_read_device_status,
    feed_scope,
    own_records_only,
    sees_item_qty,
)
from quartermaster.identity.selectors import get_device as get_identity_device
from quartermaster.identity.services import ClaimDevice
from quartermaster.inventory.selectors import get_default_location
from quartermaster.sync import review
from quartermaster.sync.ops import Op, OpResult
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
    actor = actor_of(request)
    policy.authorize(actor, "sync.batch")
    device_id = _device_to_sync_as(actor, batch.device_id, dry_run=params.dry_run)
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
    result = apply_batch(actor=actor, device_id=device_id, ops=ops, dry_run=params.dry_run)
    if not result.dry_run:
        _record_refusals(request, actor, device_id, ops, result.results)
        for op, answer in zip(ops, result.results, strict=False):
            outcome = metrics.sync_outcome(answer.status, replayed=answer.replayed)
            metrics.count_sync_op(op.type, outcome, known=op.type in Command.registry)
    # Applied, but captured on a day since closed: a person reviews it.
    applied = [i for i, r in enumerate(result.results) if r.succeeded]
    flags = review.needs_review(
        actor, [review.Captured(ops[i].client_ts, ops[i].payload) for i in applied]
    )
    flagged = {i for i, flag in zip(applied, flags, strict=True) if flag}
    body = {
        "results": [
            {
                "op_id": r.op_id,
                "status": r.status,
                "body": r.body,
                "id_map": r.id_map,
                "replayed": r.replayed,
                "review": index in flagged,
            }
            for index, r in enumerate(result.results)
        ],
        "cursor": str(result.cursor),
        "dry_run": result.dry_run,
    }
    return json_response(200 if result.all_succeeded else 207, body)


def _device_to_sync_as(actor: Actor, requested: str, *, dry_run: bool) -> str:
    """The stored id of the device a batch syncs as (API.md "Sync"): a token issued for a device
    syncs only as it; one issued without syncs only as devices of its own user, and its first
    batch from a new id claims it. A revoked device syncs under no login (401)."""
    if not clean_device_id(requested):
        raise Invalid.field("device_id", "must not be blank")
    if actor.device_id and device_key(actor.device_id) != device_key(requested):
        raise DeviceMismatch(actor.device_id)
    device = get_identity_device(requested)
    if device is None:
        if dry_run:  # a dry run stores nothing: the first real batch claims the id
            return clean_device_id(requested)
        # Recorded as coming from the device, like the batch's ops.
        on_device = replace(actor, device_id=clean_device_id(requested))
        claimed = execute(ClaimDevice(device_id=requested), Context(actor=on_device))
        if claimed.refusal is not None:
            raise claimed.refusal
        # Read back as stored (typed), not from the answer's wire body.
        device = get_identity_device(requested)
        assert device is not None  # claimed just now, or by a concurrent batch
        return device.device_id
    if device.revoked_at is not None:
        # Its tokens are dead already; a fresh login must not sync in its name either.
        raise NotAuthenticated("this device has been revoked")
    if device.user_id != actor.user_id:
        raise DeviceNotYours()
    return device.device_id


def _record_refusals(
    request: HttpRequest,
    actor: Actor,
    device_id: str,
    ops: list[Op],
    results: list[OpResult],
) -> None:
    """Ops refused just now are security events (a conflict over stock or a stale version is
    business as usual, not one), written after the batch, outside its transactions."""
    types = {op.op_id: op.type for op in ops}
    security.record(
        [
            security.Event(
                kind=security.SYNC_OP_REJECTED,
                reason=f"{r.status} {r.refusal.code}: {r.refusal.message}",
                actor=actor.username,
                actor_id=actor.user_id,
                device=device_id,
                address=client_ip(request),
                subject=f"{types.get(r.op_id, '?')} {r.op_id}",
            )
            for r in results
            if r.refusal is not None and not isinstance(r.refusal, Conflict)
        ]
    )


@router.get("/changes", response={200: ChangesOut, **ERRORS})
def sync_changes(request: HttpRequest, params: Query[ChangesQuery]) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "sync.changes")
    since = _clean_since(params.since)
    page = list_changes(scope=feed_scope(actor), since=since, limit=clean_limit(params.limit))
    item_qty = sees_item_qty(actor, get_default_location().id)
    return json_response(
        200,
        {
            "changes": [change_view(entry, item_qty=item_qty) for entry in page.entries],
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
    known = get_identity_device(device_id)  # any spelling of its id
    device = get_device(known.device_id if known is not None else device_id)
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
    return page_response(page, lambda conflict: conflict_view(conflict).wire)


@conflicts_router.get("/{uuid:conflict_id}", response={200: ConflictOut, 404: ErrorOut, **ERRORS})
def retrieve_conflict(request: HttpRequest, conflict_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "conflict.read")
    conflict = get_conflict(conflict_id)
    if conflict is None:
        raise NotFound()
    policy.authorize(actor, "conflict.read", owner_id=conflict.actor_id)
    return json_response(200, conflict_view(conflict).wire)


@conflicts_router.post(
    "/{uuid:conflict_id}/resolve", response={200: dict[str, Any], 404: ErrorOut, **ERRORS}
)
def resolve_conflict(request: HttpRequest, conflict_id: UUID, payload: ResolveIn) -> HttpResponse:
    command = ResolveConflict(
        conflict_id=conflict_id, strategy=payload.strategy, merged=payload.merged
    )
    return to_http(execute(command, context_for(request)))
