"""Devices under real concurrency on PostgreSQL: a new device id claimed by several users at
once, in several spellings, ends up owned by exactly one of them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from quartermaster.identity.models import Device
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

SPELLINGS = ("van-9", "VAN-9", "Van-9", "vAN-9")


@pytest.fixture(autouse=True)
def _one_transaction_per_request(settings: Any) -> None:
    # One live server plays several processes: each request commits on its own.
    settings.GROUP_COMMIT = False


def test_users_racing_to_claim_a_new_device_id_leave_one_owner(live_server: Any) -> None:
    base = live_server.url
    tokens = [token_for(base, f"driver{n}", "staff") for n in range(len(SPELLINGS))]

    def claim(index: int) -> int:
        reply = httpx.post(
            f"{base}/api/v1/sync/batch",
            json={"device_id": SPELLINGS[index], "ops": []},
            headers={"Authorization": f"Bearer {tokens[index]}"},
            timeout=60,
        )
        return reply.status_code

    statuses = in_parallel(len(SPELLINGS), claim)

    assert sorted(statuses) == [200, 403, 403, 403]
    [device] = Device.objects.select_related("user")
    assert device.key == "van-9"
    assert device.user.username == f"driver{statuses.index(200)}"


def test_logins_racing_with_one_new_device_id_leave_one_owner(live_server: Any) -> None:
    base = live_server.url
    for n in range(len(SPELLINGS)):
        token_for(base, f"driver{n}", "staff")

    def login(index: int) -> int:
        reply = httpx.post(
            f"{base}/api/v1/auth/login",
            json={
                "username": f"driver{index}",
                "password": "correct horse battery",
                "device_id": SPELLINGS[index],
            },
            timeout=60,
        )
        return reply.status_code

    statuses = in_parallel(len(SPELLINGS), login)

    assert sorted(statuses) == [200, 403, 403, 403]
    [device] = Device.objects.select_related("user")
    assert device.user.username == f"driver{statuses.index(200)}"
