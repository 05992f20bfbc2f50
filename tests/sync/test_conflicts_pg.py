"""Versioned updates under real concurrency on PostgreSQL: writers racing on one base_version."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import Conflict
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_racing_writers_on_one_base_version_one_wins_the_rest_conflict(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'manager', 'manager')}"}
    customer = httpx.post(
        f"{base}/api/v1/customers", json={"name": "Lakshmi"}, headers=headers
    ).json()
    path = f"{base}/api/v1/customers/{customer['id']}"

    def edit(index: int) -> int:
        body = {"name": f"edit {index}", "base_version": 1}
        return httpx.patch(path, json=body, headers=headers, timeout=30).status_code

    statuses = Counter(in_parallel(8, edit))
    assert statuses == {200: 1, 409: 7}
    current = httpx.get(path, headers=headers).json()
    assert current["version"] == 2
    assert Conflict.objects.filter(entity_id=customer["id"], status="open").count() == 7

    # Resolving one conflict from many threads at once: exactly one resolution.
    conflict = Conflict.objects.filter(entity_id=customer["id"]).first()
    assert conflict is not None
    resolve = f"{base}/api/v1/conflicts/{conflict.id}/resolve"

    def settle(index: int) -> int:
        body = {"strategy": "keep_mine"}
        return httpx.post(resolve, json=body, headers=headers, timeout=30).status_code

    assert Counter(in_parallel(6, settle)) == {200: 1, 409: 5}
    assert httpx.get(path, headers=headers).json()["version"] == 3
    assert verify_chain().ok
