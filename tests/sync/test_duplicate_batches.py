"""Two copies of one batch (same device, same op ids) at once: a client retry after a dropped
response while the first copy is still running. Whatever the interleaving, every copy answers
each op with the outcome the server stored for it (or 5xx: "send it again"), never another one.

Deterministic: the second copy is run, through HTTP, from a hook inside the first one at the
moment the race needs (after the first loaded its stored results and temp ids: `sync.memory.load`,
or after its group broke: `sync.units.answer_broken_group`). tests/sync/test_sync_pg.py races real threads on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest

from quartermaster.sync import memory, units
from tests.conftest import Api
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


def make_item(api: Api, name: str, qty: int) -> str:
    reply = api.post("/api/v1/items", {"name": name, "qty": qty})
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def qty(api: Api, item_id: str) -> int:
    return int(api.get(f"/api/v1/items/{item_id}").body["qty"])


def once(
    monkeypatch: pytest.MonkeyPatch,
    module: ModuleType,
    function: str,
    before: bool,
    hook: Callable[[], Any],
) -> None:
    """Run `hook` once, right before (or after) the first call of `module.<function>`."""
    original = getattr(module, function)
    fired: list[bool] = []

    def patched(*args: Any, **kwargs: Any) -> Any:
        first = not fired
        fired.append(True)
        if first and before:
            hook()
        result = original(*args, **kwargs)
        if first and not before:
            hook()
        return result

    monkeypatch.setattr(module, function, patched)


def assert_same_outcomes(late: list[dict[str, Any]], stored: list[dict[str, Any]]) -> None:
    """The late copy answers every op exactly as the server stored it: a replay."""
    for mine, first in zip(late, stored, strict=True):
        assert {**first, "replayed": True} == mine


def test_a_create_applied_by_the_other_copy_still_resolves_its_temp_id(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Race 1: the late copy loaded no temp id (nothing committed yet); the other copy then
    applied the create and the adjustment naming its temp id. The late copy's create replays,
    and its id must feed the batch's temp-id map just like a fresh create's, or the
    adjustment is refused 400 although the server applied it."""
    ops = [
        op("item.create", {"name": "cylinder", "qty": 10}, client_temp_id="temp_1"),
        op("item.adjust", {"item_id": "temp_1", "delta": -3}),
    ]
    first: list[Any] = []
    once(monkeypatch, memory, "load", False, lambda: first.append(send(admin, ops)))

    late = send(admin, ops)

    assert statuses(first[0]) == [201, 200]
    assert statuses(late) == [201, 200]
    assert_same_outcomes(late.body["results"], first[0].body["results"])
    item_id = first[0].body["results"][0]["body"]["id"]
    assert late.body["results"][0]["id_map"] == {"temp_1": item_id}
    assert qty(admin, item_id) == 7  # applied once


def test_a_group_rejection_stored_by_the_other_copy_is_replayed_not_422(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Race 3: the other copy broke the group and stored its members' rejections itself (the
    command of g1 ran, but its 424 was stored after the rollback, outside execute). The late
    copy then runs g1's command: execute must find that record under the same fingerprint it
    uses and replay it, not answer 422 idempotency_key_reused."""
    plenty, empty = make_item(admin, "plenty", 5), make_item(admin, "empty", 0)
    ops = [
        op("item.adjust", {"item_id": plenty, "delta": -1}, group="g"),
        op("item.adjust", {"item_id": empty, "delta": -1}, group="g"),
    ]
    first: list[Any] = []
    once(monkeypatch, memory, "load", False, lambda: first.append(send(admin, ops)))

    late = send(admin, ops)

    assert statuses(first[0]) == [424, 400]
    assert late.body["results"][0]["body"]["code"] == "group_failed"  # not 422
    assert_same_outcomes(late.body["results"], first[0].body["results"])
    assert (qty(admin, plenty), qty(admin, empty)) == (5, 0)


def test_a_broken_group_answers_the_rejections_the_other_copy_stored_first(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Race 2: this copy's group broke on g2 (no stock); before it stored its answers, stock
    changed and the other copy ran the group, broke it on g1 instead, and stored that. Storing
    finds the op ids taken: the answers are the stored ones, not this copy's own."""
    scarce, empty = make_item(admin, "scarce", 1), make_item(admin, "empty", 0)
    ops = [
        op("item.adjust", {"item_id": scarce, "delta": -1}, group="g"),
        op("item.adjust", {"item_id": empty, "delta": -1}, group="g"),
    ]
    first: list[Any] = []

    def meanwhile() -> None:
        assert admin.patch(f"/api/v1/items/{scarce}/qty", {"delta": -1}).status == 200
        assert admin.patch(f"/api/v1/items/{empty}/qty", {"delta": 5}).status == 200
        first.append(send(admin, ops))

    once(monkeypatch, units, "answer_broken_group", True, meanwhile)

    late = send(admin, ops)

    # The other copy broke on g1 (scarce is gone); this one had broken on g2.
    assert statuses(first[0]) == [400, 424]
    assert first[0].body["results"][1]["body"]["failed_op_id"] == ops[0]["op_id"]
    assert_same_outcomes(late.body["results"], first[0].body["results"])
    assert (qty(admin, scarce), qty(admin, empty)) == (0, 5)
    # And the stored outcome stands for every later copy.
    assert_same_outcomes(send(admin, ops).body["results"], first[0].body["results"])
