"""Reads for sync: the change feed (scoped by the caller), device status, stored op results."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db.models import Q

from quartermaster.core.idempotency import OP_SCOPE
from quartermaster.core.models import ChainHead, FeedEntry, IdempotencyRecord
from quartermaster.identity.permissions import FeedScope
from quartermaster.sync.invariants import sequence_status
from quartermaster.sync.models import DeviceSyncState, TempId


def current_feed_seq() -> int:
    """The seq of the last committed feed row (every row at or below it is committed)."""
    return ChainHead.objects.filter(pk=1).values_list("feed_seq", flat=True).first() or 0


@dataclass(frozen=True)
class ChangesPage:
    entries: list[FeedEntry]
    cursor: int
    has_more: bool


def list_changes(*, scope: FeedScope, since: int, limit: int) -> ChangesPage:
    """Visible feed rows after `since`, in commit order.

    The head is read first: every row up to it is committed (the head moves in the same
    transaction as its rows), so when nothing more is visible the cursor may jump to the head
    and the reader never rescans rows it may not see.
    """
    head = current_feed_seq()
    end = max(head, since)
    query = FeedEntry.objects.filter(seq__gt=since, seq__lte=head)
    if scope.empty:
        return ChangesPage(entries=[], cursor=end, has_more=False)
    if not scope.everything:
        query = query.filter(_visible(scope))
        for entity, owner_field in scope.owned_only:
            # Someone else's record of an owned entity: hidden (tombstones carry no owner).
            query = query.exclude(
                Q(entity=entity, op="upsert") & ~Q(**{f"data__{owner_field}": str(scope.owner_id)})
            )
    entries = list(query.order_by("seq")[: limit + 1])
    if len(entries) > limit:
        return ChangesPage(entries=entries[:limit], cursor=entries[limit - 1].seq, has_more=True)
    return ChangesPage(entries=entries, cursor=end, has_more=False)


def _visible(scope: FeedScope) -> Q:
    visible = Q(pk__in=[])
    if scope.location_ids:
        visible |= Q(location_id__in=list(scope.location_ids))
    if scope.unlocated:
        visible |= Q(location_id__isnull=True)
    if scope.catalogue:
        visible |= Q(entity__in=sorted(scope.catalogue))
    if scope.owner_id is not None:
        visible |= Q(owner_id=scope.owner_id)
    return visible


def change_view(entry: FeedEntry, *, item_qty: bool = True) -> dict[str, Any]:
    """`item_qty=False`: an item row's `qty` (stock at the default location) is shown as null,
    for a reader who sees the catalogue but not that location's stock."""
    data = entry.data
    if not item_qty and entry.entity == "item" and isinstance(data, dict) and "qty" in data:
        data = {**data, "qty": None}
    return {
        "seq": entry.seq,
        "entity": entry.entity,
        "id": entry.entity_id,
        "op": entry.op,
        "version": entry.version,
        "data": data,
    }


def get_device(device_id: str) -> DeviceSyncState | None:
    return DeviceSyncState.objects.filter(pk=device_id).first()


def device_status_view(device: DeviceSyncState) -> dict[str, Any]:
    last_contiguous, missing = sequence_status(device.seen_seq_ranges)
    return {
        "device_id": device.device_id,
        "last_contiguous_seq": last_contiguous,
        "missing": missing,
        "last_seen": device.last_seen.isoformat() if device.last_seen else None,
    }


@dataclass(frozen=True)
class StoredAnswer:
    """The final answer stored under an op id."""

    status: int
    body: Any


def stored_op_results(*, owner_id: UUID | None, op_ids: Collection[str]) -> dict[str, StoredAnswer]:
    """op id → its stored answer, for the ops of one batch, in one query."""
    rows = IdempotencyRecord.objects.filter(
        owner_id=owner_id, scope=OP_SCOPE, key__in=list(op_ids)
    ).values_list("key", "status", "body")
    return {key: StoredAnswer(status, body) for key, status, body in rows}


def temp_ids_for_batch(
    *, device_id: str, strings: Collection[str], op_ids: Collection[str]
) -> list[TempId]:
    """The device's temp ids a batch can touch: named in a payload or created by one of its ops."""
    return list(
        TempId.objects.filter(device_id=device_id).filter(
            Q(temp_id__in=list(strings)) | Q(op_id__in=list(op_ids))
        )
    )
