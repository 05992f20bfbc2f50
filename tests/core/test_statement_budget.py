"""The statements one request costs: the hot paths stay within a budget (issue 9)."""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import Api

KEYED_PATCH_BUDGET = 8


def _statements(api: Api, method: str, path: str, body: Any = None, **kw: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        reply = api.request(method, path, body, **kw)
    assert reply.status < 300, reply.body
    return [query["sql"] for query in queries.captured_queries]


def test_a_keyed_qty_patch_runs_within_its_statement_budget(admin: Api) -> None:
    item = admin.post("/api/v1/items", {"name": "Valve", "qty": 10}).body
    path = f"/api/v1/items/{item['id']}/qty"
    admin.patch(path, {"delta": 1}, headers={"Idempotency-Key": str(uuid.uuid4())})  # warm caches

    statements = _statements(
        admin, "PATCH", path, {"delta": -1}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )

    assert len(statements) <= KEYED_PATCH_BUDGET, "\n".join(statements)
