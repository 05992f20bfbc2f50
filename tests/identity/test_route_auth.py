"""Every route refuses a missing or bad bearer token, found by walking the URL configuration and
the OpenAPI document, so routes added later are covered without touching this file.

Public by contract (API.md): POST auth/login, POST auth/refresh, GET /health, GET openapi.json,
GET docs. The back office (/admin/) has its own session login and is checked separately.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from django.conf import settings
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.converters import get_converters

from quartermaster.identity import tokens
from tests.conftest import Api, create_user, login

pytestmark = pytest.mark.django_db

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
PUBLIC = {
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    # self sign-up (issue 10 item 12): off unless QM_SIGNUP=1, and then for nobody signed in
    ("POST", "/api/v1/auth/signup"),
    ("GET", "/health"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
}
# Session-authenticated HTML, not the bearer API: see test_back_office_needs_its_own_login.
# /metrics has its own rule (loopback only, or QM_METRICS_TOKEN): tests/web/test_observability.py.
OWN_LOGIN_PREFIXES = ("/admin/", "/metrics")
# Providers' callbacks (API.md "Notifications"): no bearer token, the provider's signature
# instead; see test_public_routes_answer_without_a_token and tests/notifications.
SIGNED_WEBHOOKS = ("/api/v1/notifications/webhooks/",)
# The local media storage's byte URLs: no bearer token, the URL's own signature and expiry
# instead (as a bucket's presigned URLs); see test_public_routes_answer_without_a_token.
SIGNED_MEDIA = re.compile(r"^/api/v1/media/[^/]+/content$")

SAMPLE_UUID = "3f1f6a8e-5b9e-4c43-9d0e-1f2a3b4c5d6e"
# A path parameter gets the first of these its converter accepts.
SAMPLE_VALUES = (SAMPLE_UUID, "7", "sample")


def _route_to_path(route: str) -> str:
    converters = get_converters()

    def sample(match: re.Match[str]) -> str:
        converter = converters[match.group(1) or "str"]
        for value in SAMPLE_VALUES:
            if re.fullmatch(converter.regex, value):
                return value
        raise AssertionError(f"no sample value for converter {match.group(1)!r}")

    return re.sub(r"<(?:(\w+):)?\w+>", sample, route)


# django-ninja's per-API root, a reverse() anchor that answers 404 to everything.
NON_ENDPOINT_NAMES = {"api-root"}
# The documentation views answer any method with the same public, read-only document.
PUBLIC_DOCUMENTS = {
    *(
        f"{path}{slash}"
        for path in ("/api/v1/openapi.json", "/api/v1/docs", "/api/v1/redoc")
        for slash in ("", "/")
    )
}


def _walk(patterns: list[URLPattern | URLResolver], prefix: str) -> Iterator[str]:
    for entry in patterns:
        route = str(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + route)
        elif entry.name not in NON_ENDPOINT_NAMES:
            yield prefix + route


def url_conf_paths() -> list[str]:
    """Every route in the URL configuration as a concrete path (converters filled in)."""
    paths = set()
    for route in _walk(get_resolver().url_patterns, ""):
        if route.startswith("^") or "(?P" in route:  # regex routes: only the admin has them
            assert ("/" + route.lstrip("^")).startswith(OWN_LOGIN_PREFIXES), route
            continue
        paths.add("/" + _route_to_path(route))
    return sorted(paths)


def openapi_operations() -> list[tuple[str, str]]:
    """(METHOD, concrete path) for every operation in the OpenAPI document."""
    document = Api(Client()).get("/api/v1/openapi.json").body
    operations = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            concrete = path
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    schema = parameter.get("schema", {})
                    value = (
                        SAMPLE_UUID
                        if schema.get("format") == "uuid"
                        else "7"
                        if schema.get("type") == "integer"
                        else "sample"
                    )
                    concrete = concrete.replace("{" + parameter["name"] + "}", value)
            assert "{" not in concrete, concrete
            operations.append((method.upper(), concrete))
    return sorted(operations)


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _claims(user_id: str, **overrides: object) -> dict[str, object]:
    now = datetime.now(UTC)
    claims: dict[str, object] = {
        "iss": tokens.ISSUER,
        "sub": user_id,
        "typ": "access",
        "jti": str(uuid.uuid4()),
        "dev": "",
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
    }
    claims.update(overrides)
    return claims


def bad_tokens(user_id: str, valid_access: str, valid_refresh: str) -> dict[str, str | None]:
    """The ways a bearer token can be wrong, each for a real, active admin."""
    header, payload, signature = valid_access.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged_claims = {**claims, "sub": str(uuid.uuid4())}
    past = datetime.now(UTC) - timedelta(hours=1)
    return {
        "missing": None,
        "expired": jwt.encode(
            _claims(user_id, iat=int(past.timestamp()) - 60, exp=int(past.timestamp())),
            settings.JWT_KEY,
            algorithm="HS256",
        ),
        "tampered payload": f"{header}.{_b64(forged_claims)}.{signature}",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(user_id))}.",
        "wrong key": jwt.encode(
            _claims(user_id), "not-the-server-key-0123456789abcdef", algorithm="HS256"
        ),
        "refresh token as access": valid_refresh,
        "garbage": "not.a.token",
    }


@pytest.fixture
def admin_tokens(db: None) -> tuple[str, str, str]:
    user = create_user("route-admin", "admin")
    pair = login("route-admin")
    return user["id"], pair["access"], pair["refresh"]


@pytest.fixture(autouse=True)
def _no_api_rate_limits(settings: pytest.FixtureRequest) -> None:
    # This test sends many requests from one address; rate limits are tested elsewhere.
    settings.API_REQUESTS_PER_IP = 0  # type: ignore[attr-defined]
    settings.API_REQUESTS_PER_USER = 0  # type: ignore[attr-defined]


def _send(method: str, path: str, token: str | None) -> tuple[int, object]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    reply = Api(Client()).request(method, path, {}, headers=headers)
    return reply.status, reply.body


def test_the_route_walk_finds_the_api_routes() -> None:
    paths = url_conf_paths()
    operations = openapi_operations()

    for expected in ("/api/v1/items", "/api/v1/audit", "/api/v1/devices", "/items", "/health"):
        assert expected in paths
    assert ("GET", "/api/v1/auth/me") in operations
    assert ("POST", "/api/v1/devices/sample/revoke") in operations
    # Every documented operation is a real route.
    for _, path in operations:
        resolve(path)


def test_every_url_conf_route_rejects_every_bad_token(admin_tokens: tuple[str, str, str]) -> None:
    variants = bad_tokens(*admin_tokens)
    failures = []
    for path in url_conf_paths():
        if path.startswith(OWN_LOGIN_PREFIXES + SIGNED_WEBHOOKS) or path in PUBLIC_DOCUMENTS:
            continue
        if SIGNED_MEDIA.match(path):
            continue
        guarded_methods = 0
        for method in METHODS:
            # A route answers with and without a trailing slash alike (urls.either_slash).
            if (method, path.rstrip("/")) in PUBLIC:
                continue
            for name, token in variants.items():
                status, body = _send(method, path, token)
                if status == 405:
                    break  # the route has no such method, whatever the token
                if status != 401 or not isinstance(body, dict) or body.get("code") is None:
                    failures.append((method, path, name, status, body))
            else:
                guarded_methods += 1
        is_public = any(p == path.rstrip("/") for _, p in PUBLIC)
        if guarded_methods == 0 and not is_public:
            failures.append(("*", path, "no method answered 401", None, None))
    assert failures == []


def test_every_openapi_operation_rejects_every_bad_token(
    admin_tokens: tuple[str, str, str],
) -> None:
    variants = bad_tokens(*admin_tokens)
    failures = []
    for method, path in openapi_operations():
        if (method, path) in PUBLIC or path.startswith(SIGNED_WEBHOOKS):
            continue
        for name, token in variants.items():
            status, body = _send(method, path, token)
            if status != 401:
                failures.append((method, path, name, status, body))
    assert failures == []


def test_the_valid_token_the_bad_ones_are_made_from_is_accepted(
    admin_tokens: tuple[str, str, str],
) -> None:
    _, access, _ = admin_tokens

    assert _send("GET", "/api/v1/auth/me", access)[0] == 200


def test_public_routes_answer_without_a_token(db: None) -> None:
    anon = Api(Client())

    assert anon.get("/health").status == 200
    assert anon.get("/api/v1/openapi.json").status == 200
    assert Client().get("/api/v1/docs").status_code == 200
    assert anon.post("/api/v1/auth/login", {"username": "x", "password": "y"}).status == 401
    assert anon.post("/api/v1/auth/refresh", {"refresh": "x"}).status == 401
    unsigned = anon.post("/api/v1/notifications/webhooks/whatsapp", {"object": "x"})
    assert (unsigned.status, unsigned.body["code"]) == (401, "not_authenticated")
    for method in ("GET", "HEAD", "PUT"):
        media = Client().generic(
            method, f"/api/v1/media/{SAMPLE_UUID}/content?expires=9&signature=x"
        )
        assert media.status_code == 403


def test_back_office_needs_its_own_login(admin_tokens: tuple[str, str, str]) -> None:
    _, access, _ = admin_tokens
    client = Client()

    for token in (None, access):
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        response = client.get("/admin/core/auditentry/", headers=headers)
        assert response.status_code == 302
        assert response["Location"].startswith("/admin/login/")
