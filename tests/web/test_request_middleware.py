"""The request path's one project middleware (core.middleware) and the back office's own: the
same answers as the seven middlewares they replaced, in both of Django's handler modes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import structlog
from asgiref.sync import async_to_sync, iscoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.test import AsyncClient, Client, RequestFactory
from django.utils.module_loading import import_string

from quartermaster.core.middleware import access_line
from tests.conftest import Api

pytestmark = pytest.mark.django_db

PROJECT_MIDDLEWARE = (
    "quartermaster.core.middleware.RequestMiddleware",
    "quartermaster.core.middleware.BackOfficeSessionMiddleware",
    "quartermaster.core.middleware.BackOfficeAuthenticationMiddleware",
    "quartermaster.core.middleware.BackOfficeMessageMiddleware",
)


def test_the_access_line_is_the_one_structlog_wrote_key_for_key() -> None:
    fields: dict[str, Any] = {
        "method": "PATCH",
        "path": '/api/v1/items/ü"',
        "route": "api/v1/items/<uuidstr:item_id>/qty",
        "status": 200,
        "duration_ms": 1.25,
        "client": None,
    }
    # What `observability.access_logger()` was: structlog's own writer and these processors.
    written = io.StringIO()
    before = structlog.wrap_logger(
        structlog.WriteLogger(written),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
    )
    before.info("request", request_id="req-1", logger="quartermaster.access", **fields)

    ours = json.loads(access_line(request_id="req-1", **fields))
    theirs = json.loads(written.getvalue())

    assert list(ours) == list(theirs)
    assert {k: v for k, v in ours.items() if k != "timestamp"} == {
        k: v for k, v in theirs.items() if k != "timestamp"
    }
    assert ours["timestamp"].endswith("Z") and ours["timestamp"][:10] == theirs["timestamp"][:10]


def test_the_api_answers_without_the_back_office_session(admin: Api) -> None:
    """The back office signs in with a cookie session; that session means nothing to the API,
    which answers it without touching sessions (no cookie set, no `Vary: Cookie`)."""
    client = Client()
    client.force_login(_admin_user())
    assert client.get("/admin/").status_code == 200

    refused = client.get("/api/v1/items")
    served = admin.get("/api/v1/items")

    assert refused.status_code == 401
    assert "Set-Cookie" not in refused.headers and "Cookie" not in refused.headers["Vary"]
    assert served.status == 200 and "set-cookie" not in served.headers
    assert served.headers["vary"].split(", ")[:2] == ["Accept-Language", "origin"]


@pytest.mark.parametrize("middleware", PROJECT_MIDDLEWARE)
def test_the_project_middleware_runs_async_around_an_async_handler(middleware: str) -> None:
    """Sync and async capable: around an async handler it is a coroutine function itself, so
    Django's async chain needs no thread hop for it (the HTTP edge runs the chain synchronously,
    where nothing is adapted at all; WhiteNoise, sync only, is what an ASGI chain hops at)."""

    async def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse(b'{"ok": true}', content_type="application/json")

    wrapped = import_string(middleware)(answer)
    response = async_to_sync(wrapped)(
        RequestFactory().get("/api/v1/nothing", headers={"X-Request-ID": "req-7"})
    )

    assert iscoroutinefunction(wrapped)
    assert response.status_code == 200
    if middleware.endswith("RequestMiddleware"):
        assert response["X-Request-ID"] == "req-7"
        assert response["Content-Language"] == "en"


def test_under_an_asgi_handler_the_answers_are_the_same() -> None:
    client = AsyncClient()

    missing = async_to_sync(client.get)(
        "/api/v1/no-such-thing", headers={"X-Request-ID": "req-async", "Accept-Language": "ta"}
    )
    malformed = async_to_sync(client.get)("/api/v1/items", headers={"X-Anything": "a\x01b"})

    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert missing["X-Request-ID"] == "req-async"
    assert missing["Content-Language"] == "ta"
    assert missing["Vary"] == "Accept-Language, origin"
    assert malformed.status_code == 400
    assert malformed.json()["fields"] == {"X-Anything": "must not contain control characters"}


def _admin_user() -> Any:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username="admin")
