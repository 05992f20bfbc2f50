"""NUL characters never reach the database: PostgreSQL text cannot hold them (SQLite can), so
without this the same request would be a 400 on one and a 500 on the other. Found by schemathesis."""

from __future__ import annotations

import pytest

from tests.conftest import Api, audit_count, create_user

pytestmark = pytest.mark.django_db


def test_a_nul_in_a_body_field_is_400_naming_the_field(admin: Api) -> None:
    before = audit_count()

    reply = admin.post("/api/v1/items", {"name": "ap\u0000ple", "qty": 1})

    assert reply.status == 400
    assert reply.body["code"] == "invalid"
    assert reply.body["fields"] == {"name": "must not contain NUL characters"}
    assert audit_count() == before


def test_a_nul_deep_in_a_body_is_400(admin: Api) -> None:
    reply = admin.post(
        "/api/v1/sync/batch",
        {"device_id": "truck-07", "ops": [{"op_id": "1", "type": "x", "payload": {"k": "\u0000"}}]},
    )

    assert reply.status == 400
    assert reply.body["fields"] == {"ops[0].payload.k": "must not contain NUL characters"}


def test_a_nul_in_a_device_id_is_400_at_login_and_sync(admin: Api) -> None:
    create_user("driver", "staff")
    login = Api(admin.client).post(
        "/api/v1/auth/login",
        {"username": "driver", "password": "correct horse battery", "device_id": "t\u0000"},
        headers={"Authorization": ""},
    )
    batch = admin.post("/api/v1/sync/batch", {"device_id": "\u0000", "ops": []})

    assert (login.status, batch.status) == (400, 400)


def test_a_nul_in_the_query_string_is_400(admin: Api) -> None:
    reply = admin.get("/api/v1/audit?actor=a%00b")

    assert reply.status == 400
    assert reply.body["fields"] == {"actor": "must not contain NUL characters"}


def test_a_nul_in_the_path_is_404(admin: Api) -> None:
    for path in ("/api/v1/devices/a%00b", "/api/v1/devices/%00/revoke", "/items/%00"):
        reply = admin.request("POST" if path.endswith("revoke") else "GET", path)
        assert (reply.status, reply.body) == (404, {"error": "not_found", "code": "not_found"})
