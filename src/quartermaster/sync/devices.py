"""The device a batch comes from: whose it is, and which of its op sequence numbers arrived.

Each op may carry the device's `device_seq`; the server notes the seq of every op with a final
answer (an op answered 5xx is still missing), so the device status names the gaps.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone

from quartermaster.core.types import Actor
from quartermaster.identity.errors import DeviceNotYours
from quartermaster.sync import invariants
from quartermaster.sync.models import DeviceSyncState


def register_device(actor: Actor, device_id: str) -> DeviceSyncState:
    """The device's sync state, created on first contact; DeviceNotYours for another's."""
    with transaction.atomic():
        device, _ = DeviceSyncState.objects.get_or_create(
            device_id=device_id, defaults={"user_id": actor.user_id}
        )
    if device.user_id != actor.user_id:
        raise DeviceNotYours()
    return device


def record_device_seqs(device_id: str, seqs: Sequence[int | None]) -> None:
    """Note the device_seq of every op with a final result (a 5xx op is still missing)."""
    with transaction.atomic():
        device = DeviceSyncState.objects.select_for_update().get(pk=device_id)
        delivered = [seq for seq in seqs if seq is not None]
        if delivered:
            device.seen_seq_ranges = invariants.add_seqs(device.seen_seq_ranges, delivered)
        device.last_seen = timezone.now()
        device.save(update_fields=["seen_seq_ranges", "last_seen"])
