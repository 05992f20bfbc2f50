"""The device a batch comes from: whose it is, and which of its op sequence numbers arrived.

Each op may carry the device's `device_seq`; the server notes the seq of every op with a final
answer (an op answered 5xx is still missing), so the device status names the gaps.

Two statements a batch, neither in a transaction of its own (each commits alone): the stream is
read when the batch begins (created on first contact), and its ranges are written when it ends,
only if no other batch of the device wrote them meanwhile (`last_seen` is the version: every
write moves it on). A batch that lost that race merges again under a row lock. Three
transactions a batch before (issue 11: one fsync and five round trips fewer a batch).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from quartermaster.core.types import Actor
from quartermaster.identity.errors import DeviceNotYours
from quartermaster.sync import invariants
from quartermaster.sync.models import DeviceSyncState


@dataclass(frozen=True)
class Stream:
    """A device's op stream as a batch found it."""

    device_id: str
    seen_seq_ranges: list[list[int]]
    last_seen: datetime | None


def register_device(actor: Actor, device_id: str) -> Stream:
    """The device's stream, created on first contact; DeviceNotYours for another's."""
    found = (
        DeviceSyncState.objects.filter(pk=device_id)
        .values_list("user_id", "seen_seq_ranges", "last_seen")
        .first()
    )
    if found is None:
        with transaction.atomic():
            device, _ = DeviceSyncState.objects.get_or_create(
                device_id=device_id, defaults={"user_id": actor.user_id}
            )
        found = (device.user_id, device.seen_seq_ranges, device.last_seen)
    owner, ranges, last_seen = found
    if owner != actor.user_id:
        raise DeviceNotYours()
    return Stream(device_id, list(ranges), last_seen)


def record_device_seqs(stream: Stream, seqs: Sequence[int | None]) -> None:
    """Note the device_seq of every op with a final result (a 5xx op is still missing)."""
    delivered = [seq for seq in seqs if seq is not None]
    now = timezone.now()
    ranges = invariants.add_seqs(stream.seen_seq_ranges, delivered)
    written = DeviceSyncState.objects.filter(
        pk=stream.device_id, last_seen=stream.last_seen
    ).update(seen_seq_ranges=ranges, last_seen=now)
    if written:
        return
    with transaction.atomic():  # another batch of the device wrote first: merge into its ranges
        device = DeviceSyncState.objects.select_for_update().get(pk=stream.device_id)
        device.seen_seq_ranges = invariants.add_seqs(device.seen_seq_ranges, delivered)
        device.last_seen = now
        device.save(update_fields=["seen_seq_ranges", "last_seen"])
