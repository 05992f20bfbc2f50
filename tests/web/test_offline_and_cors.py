"""The back office's styles and the API docs come from this server (no CDN), browsers on
configured origins may call the API, and every API route answers with or without a trailing
slash (issue 10, item 9)."""

from __future__ import annotations

import re

import pytest
from django.test import Client, override_settings

from tests.conftest import Api

pytestmark = pytest.mark.django_db


def test_the_back_office_stylesheet_is_served() -> None:
    response = Client().get("/static/admin/css/base.css")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/css")
    assert b"body" in b"".join(response.streaming_content)  # type: ignore[attr-defined]


@pytest.mark.parametrize("page", ["/api/v1/docs", "/api/v1/redoc"])
def test_the_docs_pages_load_every_asset_from_this_server(page: str) -> None:
    response = Client().get(page)

    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    assert all(asset.startswith("/static/") for asset in assets), assets
    assert "cdn" not in html.lower()
    for asset in assets:
        assert Client().get(asset).status_code == 200, asset


@override_settings(CORS_ALLOWED_ORIGINS=["https://till.example.com"])
def test_a_configured_origin_may_call_the_api_and_read_its_answers(admin: Api) -> None:
    preflight = admin.client.options(
        "/api/v1/items",
        headers={
            "Origin": "https://till.example.com",
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "https://till.example.com"
    allowed_headers = preflight["Access-Control-Allow-Headers"].lower()
    assert "idempotency-key" in allowed_headers and "if-match" in allowed_headers

    reply = admin.get("/api/v1/items", headers={"Origin": "https://till.example.com"})
    assert reply.status == 200
    assert reply.headers["access-control-allow-origin"] == "https://till.example.com"
    assert "idempotent-replayed" in reply.headers["access-control-expose-headers"].lower()

    # A refusal is readable too, or the app cannot tell "log in again" from "offline".
    refused = Api(Client()).get("/api/v1/items", headers={"Origin": "https://till.example.com"})
    assert refused.status == 401
    assert refused.headers["access-control-allow-origin"] == "https://till.example.com"


@override_settings(CORS_ALLOWED_ORIGINS=["https://till.example.com"])
def test_an_unconfigured_origin_gets_no_cors_grant(admin: Api) -> None:
    reply = admin.get("/api/v1/items", headers={"Origin": "https://evil.example.net"})

    assert reply.status == 200
    assert "access-control-allow-origin" not in reply.headers


def test_routes_answer_with_and_without_a_trailing_slash(admin: Api) -> None:
    created = admin.post("/api/v1/items/", {"name": "regulator", "qty": 3})
    assert created.status == 201, created.body
    item_id = created.body["id"]

    assert admin.get(f"/api/v1/items/{item_id}/").body == admin.get(f"/api/v1/items/{item_id}").body
    moved = admin.patch(f"/api/v1/items/{item_id}/qty/", {"delta": 2})
    assert moved.status == 200 and moved.body["qty"] == 5
    assert admin.get("/items/").body == admin.get("/items").body
    assert admin.get("/api/v1/stock/").status == 200
    assert admin.get("/api/v1/auth/me/").body["username"] == "admin"
    assert Client().get("/health/").status_code == 200
    assert Client().get("/api/v1/docs/").status_code == 200
    # Still JSON 404 for what does not exist, spelled either way.
    missing = admin.get("/api/v1/nothing-here/")
    assert missing.status == 404 and missing.body["code"] == "not_found"
