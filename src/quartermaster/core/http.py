"""HTTP edge shared by every adapter: JSON error bodies, rendering pipeline responses, contexts.

This is the one place where domain errors, validation errors and framework errors become HTTP.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.utils.datastructures import MultiValueDict
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, AuthorizationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from pydantic import ValidationError as PydanticValidationError

from quartermaster.core import ratelimit
from quartermaster.core.commands import error_response
from quartermaster.core.errors import (
    DomainError,
    Invalid,
    NotAuthenticated,
    PermissionDenied,
    UnsupportedMediaType,
)
from quartermaster.core.failover import retryable_refusal
from quartermaster.core.i18n import say, say_error_body, validation_message
from quartermaster.core.idempotency import MAX_KEY_LENGTH
from quartermaster.core.pagination import Page
from quartermaster.core.schemas import INT63_MAX
from quartermaster.core.types import Actor, Context, Response

logger = logging.getLogger(__name__)
T = TypeVar("T")

JSON_CONTENT_TYPE = "application/json"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> HttpResponse:
    if status == 204:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(
            json.dumps(body, ensure_ascii=False), status=status, content_type=JSON_CONTENT_TYPE
        )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def entity_tag(body: bytes) -> str:
    """A strong validator of a JSON body: its SHA-256, quoted (RFC 9110)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def conditional_json(request: HttpRequest, body: Any) -> HttpResponse:
    """200 with the body and its `ETag`, or 304 with no body when `If-None-Match` names that
    tag (or `*`): a device that has the record already downloads nothing again."""
    content = json.dumps(body, ensure_ascii=False).encode()
    tag = entity_tag(content)
    wanted = request.headers.get("If-None-Match", "")
    # Weak comparison (RFC 9110 13.1.2): W/"x" matches "x" for GET.
    candidates = {part.strip().removeprefix("W/") for part in wanted.split(",")}
    if tag in candidates or "*" in candidates:
        response = HttpResponse(status=304)
    else:
        response = HttpResponse(content, status=200, content_type=JSON_CONTENT_TYPE)
    response["ETag"] = tag
    # Each caller may be shown a different body: caches keep it per token.
    response["Vary"] = "Authorization"
    response["Cache-Control"] = "private, no-cache"
    return response


def page_response(page: Page[T], view: Callable[[T], Any]) -> HttpResponse:
    """One page of a list, as every list answers it: `{"results": [...], "next_cursor"}`."""
    return json_response(
        200, {"results": [view(row) for row in page.rows], "next_cursor": page.next_cursor}
    )


def error_json(error: DomainError) -> HttpResponse:
    rendered = error_response(error)
    return json_response(rendered.status, say_error_body(rendered.body), rendered.headers)


def error_body_json(status: int, message: str, code: str) -> HttpResponse:
    """An error body made here at the edge, said in the request's language."""
    return json_response(status, {"error": say(message), "code": code})


def to_http(response: Response) -> HttpResponse:
    headers = dict(response.headers)
    if response.replayed:
        headers["Idempotent-Replayed"] = "true"
    body = response.body
    if response.status >= 400 and isinstance(body, dict):
        # Said in the caller's language, a replayed answer too: what was stored is English.
        body = say_error_body(body)
    return json_response(response.status, body, headers)


def actor_of(request: HttpRequest) -> Actor:
    actor = getattr(request, "auth", None)
    if not isinstance(actor, Actor):
        raise NotAuthenticated("authentication required")
    return actor


def context_for(request: HttpRequest) -> Context:
    key = request.META.get("HTTP_IDEMPOTENCY_KEY")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise Invalid.field("Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} characters")
    return Context(actor=actor_of(request), idempotency_key=key)


NUL = "\x00"
# What no database here can store as text: NUL (PostgreSQL) and lone UTF-16 surrogates (neither
# can encode them). JSON carries them only as escapes, so a body without one skips the walk.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")


def _unstorable_at(value: Any, path: str) -> tuple[str, str] | None:
    """(path, why) of the first string or key holding NUL or a lone surrogate, or None."""
    if isinstance(value, str):
        return (path, _why_unstorable(value)) if _UNSTORABLE.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if _UNSTORABLE.search(str(key)):
                return here, _why_unstorable(str(key))
            found = _unstorable_at(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _unstorable_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _why_unstorable(text: str) -> str:
    if NUL in text:
        return "must not contain NUL characters"
    return "must not contain lone surrogates (invalid UTF-16 escapes)"


class JsonParser(Parser):
    """ninja's JSON parser, refusing NUL characters (and lone surrogates, which no database here
    can encode) in bodies and query strings with a 400 that
    names the field. PostgreSQL text cannot hold NUL (SQLite can), and no field here has a use
    for one: without this, the same request is a 400 on one database and a 500 on the other."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        refuse_non_json(request.content_type, request.content_params)
        data: Any = super().parse_body(request)
        if not _UNSTORABLE_ESCAPE.search(request.body):
            # Nothing to look for: a 100-op batch is not walked value by value.
            return data
        found = _unstorable_at(data, "")
        if found is not None:
            where, why = found
            raise Invalid.field(where or "body", why)
        return data

    def parse_querydict(
        self, data: MultiValueDict[str, Any], list_fields: list[str], request: HttpRequest
    ) -> dict[str, Any]:
        result = super().parse_querydict(data, list_fields, request)
        found = _unstorable_at(result, "")
        if found is not None:
            raise Invalid.field(*found)
        return result


def refuse_non_json(media_type: str | None, params: dict[str, str] | None) -> None:
    """UnsupportedMediaType (415) unless the body is declared JSON in UTF-8, or not declared at
    all (`application/json`, or a `+json` type such as `application/merge-patch+json`).

    Without this a `text/plain` or form body holding JSON was parsed as JSON anyway: a body a
    proxy or a browser form treats as something else must not change anything here."""
    media_type = (media_type or "").strip().lower()
    if media_type and media_type != JSON_CONTENT_TYPE and not media_type.endswith("+json"):
        raise UnsupportedMediaType(
            f"the body must be JSON (Content-Type: {JSON_CONTENT_TYPE}), not {media_type}"
        )
    charset = (params or {}).get("charset", "utf-8").strip().lower()
    if charset not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"a JSON body is UTF-8, not {charset}")


def validation_fields(errors: list[dict[str, Any]]) -> dict[str, str]:
    """Pydantic/ninja error list → {"field": "message"}; locations drop the 'body'/'path' prefix."""
    fields: dict[str, str] = {}
    for error in errors:
        location = [
            str(part) for part in error.get("loc", ()) if part not in ("body", "path", "query")
        ]
        # ninja nests the body under the parameter name ("payload"); keep the field path after it.
        if len(location) > 1:
            location = location[1:]
        name = ".".join(location) or "body"
        fields.setdefault(name, str(error.get("msg", "invalid")))
    return fields


def install_error_handlers(api: NinjaAPI) -> None:
    def on_domain_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        assert isinstance(exc, DomainError)
        return error_json(exc)

    def on_validation_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        assert isinstance(exc, NinjaValidationError)
        fields = validation_fields(list(exc.errors))
        return error_json(Invalid(validation_message(fields), fields=fields))

    def on_command_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        # A command refusing a wire value as it is built (its typed fields parse money once).
        assert isinstance(exc, PydanticValidationError)
        return error_json(Invalid.from_errors(exc.errors()))

    def on_authentication_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        response = error_json(NotAuthenticated("authentication required"))
        response["WWW-Authenticate"] = "Bearer"
        return response

    def on_authorization_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        return error_json(PermissionDenied("permission denied"))

    def on_http_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        assert isinstance(exc, HttpError)
        if isinstance(exc.__cause__, DomainError):  # e.g. JsonParser's, wrapped by ninja
            return error_json(exc.__cause__)
        code = {400: "invalid", 404: "not_found", 405: "method_not_allowed"}.get(
            exc.status_code, "error"
        )
        return error_body_json(exc.status_code, str(exc.message), code)

    def on_too_large(request: HttpRequest, exc: Exception) -> HttpResponse:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return error_body_json(
            413,
            f"request body larger than {limit} bytes: send fewer ops per batch",
            "payload_too_large",
        )

    def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        refusal = retryable_refusal(exc)
        if refusal is not None:  # a failover or cache outage: retryable, not a fault of ours
            logger.warning("%s on %s %s: %s", refusal.code, request.method, request.path, exc)
            return error_json(refusal)
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_body_json(500, "internal server error", "server_error")

    handlers: list[tuple[type[Exception], Any]] = [
        (DomainError, on_domain_error),
        (NinjaValidationError, on_validation_error),
        (PydanticValidationError, on_command_error),
        (AuthenticationError, on_authentication_error),
        (AuthorizationError, on_authorization_error),
        (HttpError, on_http_error),
        (RequestDataTooBig, on_too_large),
        (Exception, on_unexpected),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)


def client_ip(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the X-Forwarded-For entry the nearest of
    TRUSTED_PROXY_HOPS proxies saw (entries further left are the client's own claim)."""
    hops = settings.TRUSTED_PROXY_HOPS
    if hops > 0:
        forwarded = [
            part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        ]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return str(request.META.get("REMOTE_ADDR") or "unknown")


def api_ip_limit() -> ratelimit.Limit:
    return ratelimit.Limit("api-ip", settings.API_REQUESTS_PER_IP, settings.API_REQUEST_WINDOW_S)


def api_user_limit() -> ratelimit.Limit:
    return ratelimit.Limit(
        "api-user", settings.API_REQUESTS_PER_USER, settings.API_REQUEST_WINDOW_S
    )


def not_found_view(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return error_body_json(404, "not_found", "not_found")


def server_error_view(request: HttpRequest) -> HttpResponse:
    # Django calls this while handling the exception, so it is still the current one.
    refusal = retryable_refusal(sys.exc_info()[1])
    if refusal is not None:
        return error_json(refusal)
    return error_body_json(500, "internal server error", "server_error")


def base_version_of(request: HttpRequest, body_value: int | None) -> int | None:
    """The version a write was based on: the body's `base_version` or an `If-Match: "<n>"`
    header (weak tags accepted). Both given and different → 400."""
    header = request.headers.get("If-Match")
    if header is None:
        return body_value
    tag = header.strip()
    if tag.startswith("W/"):
        tag = tag[2:]
    tag = tag.strip('"')
    # isascii: int() would take other scripts' digits; the length cap keeps int() cheap.
    if not (tag.isascii() and tag.isdigit() and len(tag) <= 19) or int(tag) > INT63_MAX:
        raise Invalid.field("If-Match", 'must be a version, e.g. "3"')
    version = int(tag)
    if body_value is not None and body_value != version:
        raise Invalid.field("If-Match", "differs from base_version")
    return version
