"""Idempotency-Key semantics (API.md "General"): replay, reuse, scoping, stored rejections."""

from __future__ import annotations

import pytest

from tests.conftest import Api, audit_count

pytestmark = pytest.mark.django_db


def make_item(api: Api, qty: int = 10) -> str:
    return api.post("/api/v1/items", {"name": "apple", "qty": qty}).body["id"]


def test_replay_returns_the_same_status_and_body_and_applies_nothing(admin: Api) -> None:
    item_id = make_item(admin)
    key = {"Idempotency-Key": "device-7-op-1"}

    first = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -3}, headers=key)
    entries = audit_count()
    second = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -3}, headers=key)

    assert first.status == second.status == 200
    assert second.body == first.body
    assert "idempotent-replayed" not in first.headers
    assert second.headers["idempotent-replayed"] == "true"
    assert admin.get(f"/api/v1/items/{item_id}").body["qty"] == 7
    assert audit_count() == entries


def test_replayed_create_returns_201_with_the_first_item(admin: Api) -> None:
    key = {"Idempotency-Key": "create-apple"}

    first = admin.post("/api/v1/items", {"name": "apple", "qty": 1}, headers=key)
    second = admin.post("/api/v1/items", {"name": "apple", "qty": 1}, headers=key)

    assert (first.status, second.status) == (201, 201)
    assert second.body["id"] == first.body["id"]
    assert len(admin.get("/api/v1/items").body["results"]) == 1


def test_same_key_with_a_different_body_is_422_and_changes_nothing(admin: Api) -> None:
    item_id = make_item(admin)
    key = {"Idempotency-Key": "k1"}
    admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers=key)
    entries = audit_count()

    reply = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -2}, headers=key)

    assert reply.status == 422
    assert reply.body["code"] == "idempotency_key_reused"
    assert admin.get(f"/api/v1/items/{item_id}").body["qty"] == 9
    assert audit_count() == entries


def test_same_key_on_another_route_is_422(admin: Api) -> None:
    item_id = make_item(admin)
    key = {"Idempotency-Key": "k2"}
    admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers=key)

    reply = admin.delete(f"/api/v1/items/{item_id}", headers=key)

    assert reply.status == 422
    assert admin.get(f"/api/v1/items/{item_id}").status == 200


def test_keys_are_scoped_per_user(admin: Api, manager: Api) -> None:
    item_id = make_item(admin)
    key = {"Idempotency-Key": "shared-key"}

    by_admin = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers=key)
    by_manager = manager.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers=key)

    assert (by_admin.status, by_manager.status) == (200, 200)
    assert "idempotent-replayed" not in by_manager.headers
    assert admin.get(f"/api/v1/items/{item_id}").body["qty"] == 8


def test_a_rejection_is_stored_and_replayed_even_after_the_state_changes(admin: Api) -> None:
    item_id = make_item(admin, qty=1)
    key = {"Idempotency-Key": "too-many"}

    rejected = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -5}, headers=key)
    admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": 10})
    replay = admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -5}, headers=key)

    assert rejected.status == replay.status == 400
    assert replay.body == rejected.body
    assert replay.headers["idempotent-replayed"] == "true"
    assert admin.get(f"/api/v1/items/{item_id}").body["qty"] == 11


def test_an_overlong_key_is_400(admin: Api) -> None:
    item_id = make_item(admin)

    reply = admin.patch(
        f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers={"Idempotency-Key": "x" * 256}
    )

    assert reply.status == 400
    assert "Idempotency-Key" in reply.body["fields"]
    assert admin.get(f"/api/v1/items/{item_id}").body["qty"] == 10


def test_purge_forgets_old_http_keys_but_never_sync_op_ids(admin: Api) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from quartermaster.core.commands import execute
    from quartermaster.core.maintenance import PurgeIdempotencyKeys
    from quartermaster.core.models import IdempotencyRecord
    from quartermaster.core.types import SYSTEM_ACTOR, Context

    item_id = make_item(admin)
    for key in ("old", "recent"):
        admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1}, headers={"Idempotency-Key": key})
    IdempotencyRecord.objects.create(
        owner_id=None, scope="op", key="op-1", fingerprint="x", status=200, body={}
    )
    long_ago = timezone.now() - timedelta(days=31)
    IdempotencyRecord.objects.filter(key__in=["old", "op-1"]).update(created_at=long_ago)

    response = execute(PurgeIdempotencyKeys(), Context(actor=SYSTEM_ACTOR))

    assert response.body["deleted"] == 1
    assert set(IdempotencyRecord.objects.values_list("key", flat=True)) == {"recent", "op-1"}
