"""The statements a write costs: alone, and per command in a batch (issue 9).

A keyed PATCH /items/{id}/qty alone costs 14 statements, each for a promise: the actor (1), the
transaction (2), the key's lookup and stored answer (2), the item with its qty (1), the stock row
locked (1) and its guarded update (1), the movement and its line (2), the chain head locked and
advanced (2), the audit entries (1) and the feed rows (1); on PostgreSQL one more, the key's
advisory lock, which must be taken in a statement before the lookup's (a lookup in the same
statement reads a snapshot from before the lock was granted, and could miss the answer the
lock's previous holder committed). Group commit shares the transaction,
the chain head and the bulk statements of a run among the commands of a batch: 8 concurrent
adjustments cost under 4 statements each.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext

from quartermaster.core.commands import run_together
from quartermaster.core.types import Context
from quartermaster.identity.selectors import load_actor
from quartermaster.inventory.services import AdjustItemQty
from tests.conftest import Api

KEYED_PATCH_ALONE = 14
BATCH_OF_8_PER_COMMAND = 4


def _statements(api: Api, method: str, path: str, body: Any = None, **kw: Any) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        reply = api.request(method, path, body, **kw)
    assert reply.status < 300, reply.body
    return [query["sql"] for query in queries.captured_queries]


def test_a_keyed_qty_patch_alone_runs_within_its_statement_budget(admin: Api) -> None:
    item = admin.post("/api/v1/items", {"name": "Valve", "qty": 10}).body
    path = f"/api/v1/items/{item['id']}/qty"
    admin.patch(path, {"delta": 1}, headers={"Idempotency-Key": str(uuid.uuid4())})  # warm caches

    statements = _statements(
        admin, "PATCH", path, {"delta": -1}, headers={"Idempotency-Key": str(uuid.uuid4())}
    )

    budget = KEYED_PATCH_ALONE + (1 if connection.vendor == "postgresql" else 0)
    assert len(statements) <= budget, "\n".join(statements)


def test_a_batch_of_keyed_adjustments_shares_its_statements(admin: Api) -> None:
    items = [admin.post("/api/v1/items", {"name": f"v{n}", "qty": 10}).body["id"] for n in range(4)]
    actor = load_actor(uuid.UUID(admin.get("/api/v1/auth/me").body["id"]))
    assert actor is not None
    batch = [
        (AdjustItemQty(item=items[n % 4], delta=-1), Context(actor, str(uuid.uuid4())))
        for n in range(8)
    ]

    with CaptureQueriesContext(connection) as queries:
        answers = run_together(batch)

    assert [getattr(answer, "status", None) for answer in answers] == [200] * 8
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) <= 8 * BATCH_OF_8_PER_COMMAND, "\n".join(statements)
