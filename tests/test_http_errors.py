"""JSON on every path: unknown routes, wrong methods, server errors, health."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from tests.conftest import Api

pytestmark = pytest.mark.django_db


def test_health_is_public_and_reports_the_database(anon: Api) -> None:
    reply = anon.get("/health")

    assert reply.status == 200
    # The embedded database is its own primary; no cluster monitor, no epoch (API.md "Cluster").
    assert reply.body == {
        "status": "ok",
        "database": "ok",
        "role": "primary",
        "epoch": None,
        "cache": "local",
    }


@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/items/x/y/z", "/api/v2/items"])
def test_unknown_routes_are_json_404(anon: Api, path: str) -> None:
    reply = anon.get(path)

    assert reply.status == 404
    assert reply.body == {"error": "not_found", "code": "not_found"}
    assert reply.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/v1/items"), ("POST", "/health"), ("DELETE", "/api/v1/auth/me")],
)
def test_wrong_methods_are_json_405(admin: Api, method: str, path: str) -> None:
    reply = admin.request(method, path, {})

    assert reply.status == 405
    assert reply.body["code"] == "method_not_allowed"


def test_a_server_error_is_json_500(admin: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(item_id: uuid.UUID) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("quartermaster.inventory.api.get_item", broken)
    admin.client.raise_request_exception = False

    reply = admin.get(f"/api/v1/items/{uuid.uuid4()}")

    assert reply.status == 500
    assert reply.body == {"error": "internal server error", "code": "server_error"}
    assert "disk on fire" not in str(reply.body)


def test_docs_and_openapi_are_public() -> None:
    client = Client()

    assert client.get("/api/v1/openapi.json").status_code == 200
    assert client.get("/api/v1/docs").status_code == 200
