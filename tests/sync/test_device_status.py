"""GET /api/v1/devices/{id}/sync-status: contiguous device_seq and the gaps."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api
from tests.sync.helpers import DEVICE, op, send

pytestmark = pytest.mark.django_db

STATUS = f"/api/v1/devices/{DEVICE}/sync-status"


def creates(*seqs: int) -> list[dict[str, Any]]:
    return [op("item.create", {"name": f"item {seq}"}, device_seq=seq) for seq in seqs]


def test_gaps_are_reported_until_the_missing_ops_arrive(admin: Api) -> None:
    send(admin, creates(1, 2, 4, 7))
    gappy = admin.get(STATUS).body

    send(admin, creates(3, 5, 6))
    whole = admin.get(STATUS).body

    assert (gappy["last_contiguous_seq"], gappy["missing"]) == (2, [[3, 3], [5, 6]])
    assert gappy["last_seen"] is not None
    assert (whole["last_contiguous_seq"], whole["missing"]) == (7, [])


def test_rejected_ops_count_as_delivered(admin: Api) -> None:
    send(admin, [op("teleport", device_seq=1), op("item.create", {"name": ""}, device_seq=2)])

    status = admin.get(STATUS).body

    assert (status["last_contiguous_seq"], status["missing"]) == (2, [])


def test_a_device_that_never_sent_seq_one_misses_it(admin: Api) -> None:
    send(admin, creates(3))

    status = admin.get(STATUS).body

    assert (status["last_contiguous_seq"], status["missing"]) == (0, [[1, 2]])


def test_only_the_owner_managers_and_admins_read_it(
    staff: Api, manager: Api, admin: Api, auditor: Api, make_api: Any, default_location_id: str
) -> None:
    send(staff, [op("item.adjust", {"item_id": "x", "delta": 1}, device_seq=1)])
    other_staff = make_api("staff", "other", locations=(default_location_id,))

    assert staff.get(STATUS).status == 200
    assert manager.get(STATUS).status == 200
    assert admin.get(STATUS).status == 200
    assert other_staff.get(STATUS).status == 404
    assert auditor.get(STATUS).status == 403


def test_an_unknown_device_is_404(admin: Api) -> None:
    assert admin.get("/api/v1/devices/nobody/sync-status").status == 404
