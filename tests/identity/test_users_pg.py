"""The users API under real concurrency on PostgreSQL: two admins removing each other at the
same instant leave one admin, never none."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from django.db import connection, transaction

from quartermaster.core.audit import verify_chain
from quartermaster.identity.models import Role, User
from tests.core.test_concurrency_pg import token_for
from tests.sync.test_sync_pg import lock_waiters

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _one_transaction_per_request(settings: Any) -> None:
    # One live server plays several processes: each request commits on its own.
    settings.GROUP_COMMIT = False


def test_the_last_two_admins_removing_each_other_at_once_leave_one(live_server: Any) -> None:
    """Both requests are held before commit (the test holds the audit chain's head, which
    every write takes last), so each has made its check before either commits: with a check
    that reads without locking the admins, both would pass and no admin would remain."""
    base = live_server.url
    tokens = {name: token_for(base, name, "admin") for name in ("asha", "bala")}
    ids = {user.username: str(user.pk) for user in User.objects.filter(role=Role.ADMIN)}
    changes = [("asha", "bala", {"role": "manager"}), ("bala", "asha", {"is_active": False})]

    def remove(actor: str, target: str, change: dict[str, Any]) -> int:
        reply = httpx.patch(
            f"{base}/api/v1/users/{ids[target]}",
            json=change,
            headers={"Authorization": f"Bearer {tokens[actor]}"},
            timeout=60,
        )
        return reply.status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM core_chainhead WHERE id = 1 FOR UPDATE")
            replies = [pool.submit(remove, *each) for each in changes]
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and lock_waiters() < 2:
                time.sleep(0.02)
            assert lock_waiters() == 2
        statuses = sorted(reply.result() for reply in replies)

    assert statuses == [200, 409]
    assert User.objects.filter(role=Role.ADMIN, is_active=True).count() == 1
    assert verify_chain().ok
