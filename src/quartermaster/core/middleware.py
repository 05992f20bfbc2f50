"""The project's one middleware: what the server does around every request, in one pass.

From the outside in, as seven middlewares did it before (each one more call frame and one more
exception wrapper of Django's per request; folded, and with the back office's own middleware
skipped on API paths (below), a keyed PATCH spends ~0.1 ms less CPU around its view:
bench/RESULTS.md "Issue 9, session 5"):

1. observability: a request id (the caller's `X-Request-ID` when it is sane, else a new one),
   echoed on the answer and bound to every log line of the request; the request's metrics by
   route template; one JSON access-log line;
2. CORS (django-cors-headers' own checks): a preflight is answered here, and every answer,
   refusals included, carries the CORS headers a browser app needs to read it;
3. the language: `Accept-Language` among settings.LANGUAGES (English when it names none),
   active while the request runs, given back in `Content-Language`;
4. JSON errors: every API error leaves as the JSON error body, whatever produced it (router 404,
   405, 500); the admin and the docs page keep their HTML;
5. a request header holding a control character is answered 400 (JSON, naming the header);
6. every API answer 403 is recorded as a security event (core.security);
7. requests per client address (a NUL in the path is a 404 here, before any view could hand it to
   the database).

Headers are read from `request.META`, so no request builds `request.headers` for this. Nothing
here touches the database on a request that succeeds. Sync and async capable: under the HTTP
edge (`quartermaster.edge`) Django runs the chain synchronously; under an ASGI handler the
blocking steps (the rate-limit counter, the security event) run in a thread.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.handlers.exception import response_for_exception
from django.http import HttpRequest, HttpResponse
from django.http.request import HttpHeaders
from django.http.response import HttpResponseBase
from django.utils import translation
from django.utils.cache import patch_vary_headers
from django.utils.deprecation import MiddlewareMixin

from quartermaster.core import metrics, ratelimit, security
from quartermaster.core.errors import DomainError, Invalid
from quartermaster.core.http import (
    JSON_CONTENT_TYPE,
    NUL,
    api_ip_limit,
    client_ip,
    error_body_json,
    error_json,
    not_found_view,
)
from quartermaster.core.i18n import SOURCE_LANGUAGE
from quartermaster.core.types import Actor

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or a client may hand us as a request id: short, printable, no spaces or quotes
# (it is copied into every log line of the request and back into a header).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
# Control characters (but horizontal tab) in a header: no header here has a use for one, and a
# value that holds one would reach keys, logs and stored answers as it came.
_CONTROL_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# The headers WSGI does not prefix with HTTP_ (Django's request.headers includes them too).
_UNPREFIXED_HEADERS = frozenset(HttpHeaders.UNPREFIXED_HEADERS)
# Answers that keep their HTML; answers of these paths that are 403 are security events; paths
# whose requests are not counted against the per-address limit.
HTML_PREFIXES = ("/admin/", "/api/v1/docs", "/api/v1/redoc", "/static/")
API_PREFIXES = ("/api/", "/items")
UNLIMITED_PREFIXES = ("/health", "/static/")
_STATUS_CODES = {
    400: "invalid",
    401: "not_authenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
}

GetResponse = Callable[[HttpRequest], Any]


class RequestMiddleware:
    """Outermost of settings.MIDDLEWARE: it times and labels every answer, refusals by the other
    middleware included."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
        # Only its checks are used (preflight, response headers); the chain is ours.
        self.cors = CorsMiddleware(get_response)
        self.access_log = AccessLog.for_settings()

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        started = time.perf_counter()
        request_id = request_id_of(request.META.get("HTTP_X_REQUEST_ID"))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.cors.check_preflight(request)
            if response is None:
                response = self._answer(request)
            self._finish(request, response, request_id, started)
            return response
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_of(request.META.get("HTTP_X_REQUEST_ID"))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.cors.check_preflight(request)
            if response is None:
                response = await self._answer_async(request)
            self._finish(request, response, request_id, started)
            return response  # type: ignore[return-value]
        finally:
            structlog.contextvars.reset_contextvars(**bound)

    def _answer(self, request: HttpRequest) -> HttpResponse:
        language = language_of(request)
        with speaking(language):
            try:
                response = refusal_of(request) or self._through(request)
            except Exception as exc:  # what Django's wrapper of a middleware would have done
                response = response_for_exception(request, exc)
            response = as_json_error(request, response)
        return with_language(response, language)

    async def _answer_async(self, request: HttpRequest) -> HttpResponse:
        language = language_of(request)
        with speaking(language):
            try:
                response = refusal_before_limits(request)
                if response is None and counts_against_limits(request):
                    response = await sync_to_async(rate_limit_refusal)(request)
                if response is None:
                    response = await self.get_response(request)
                    if _is_security_event(request, response):
                        await sync_to_async(record_security_event)(request, response)
            except Exception as exc:
                response = await sync_to_async(response_for_exception)(request, exc)
            response = as_json_error(request, response)
        return with_language(response, language)

    def _through(self, request: HttpRequest) -> HttpResponse:
        response: HttpResponse = self.get_response(request)
        if _is_security_event(request, response):
            record_security_event(request, response)
        return response

    def _finish(
        self, request: HttpRequest, response: HttpResponseBase, request_id: str, started: float
    ) -> None:
        self._cors_headers(request, response)
        response[REQUEST_ID_HEADER] = request_id
        seconds = time.perf_counter() - started
        route = route_of(request)
        metrics.observe_request(request.method or "", route, response.status_code, seconds)
        if self.access_log is not None:
            self.access_log.write(request, response.status_code, request_id, route, seconds)

    def _cors_headers(self, request: HttpRequest, response: HttpResponseBase) -> None:
        """django-cors-headers' response headers. A request without `Origin` (every one but a
        browser's) only gets `Vary: origin`, which is all the library would add, without it
        building `request.headers` to find no origin there."""
        if request.META.get("HTTP_ORIGIN"):
            self.cors.add_response_headers(request, response)
            return
        enabled = getattr(request, "_cors_enabled", None)  # set by check_preflight
        if enabled if enabled is not None else self.cors.is_enabled(request):
            patch_vary_headers(response, ("origin",))


def request_id_of(header: str | None) -> str:
    if header is not None and _SANE_REQUEST_ID.fullmatch(header):
        return header
    return os.urandom(16).hex()


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered (`api/v1/items/<uuid:item_id>`), never the raw path: a
    metric label must not grow with every id."""
    match = request.resolver_match
    if match is None or not match.route:
        return metrics.UNMATCHED_ROUTE
    return match.route.rstrip("/") or "/"


# --- the language -------------------------------------------------------------------------


def language_of(request: HttpRequest) -> str:
    """The language the request asked for. Django's LocaleMiddleware would also read a session
    and redirect by URL prefix, none of which this API has; a request that sends no
    Accept-Language (every sync batch, most requests) costs one lookup."""
    if not request.META.get("HTTP_ACCEPT_LANGUAGE"):
        return SOURCE_LANGUAGE
    return translation.get_language_from_request(request) or SOURCE_LANGUAGE


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """`language` active inside, and deactivated afterwards, so a thread of the pool never
    carries one request's language into the next. English is what is active when nothing is,
    and no code here leaves a language active (override, never activate): nothing to do for
    it (get_language() alone costs ~17 us, asgiref's Local)."""
    if language == SOURCE_LANGUAGE:
        yield
        return
    with translation.override(language):
        yield


def with_language(response: HttpResponse, language: str) -> HttpResponse:
    if response.has_header("Vary"):
        patch_vary_headers(response, ("Accept-Language",))
    else:
        response["Vary"] = "Accept-Language"
    response["Content-Language"] = language
    return response


# --- refusals before the view ---------------------------------------------------------------


def refusal_of(request: HttpRequest) -> HttpResponse | None:
    """The answer to a request refused before its view runs, or None: let it through."""
    refusal = refusal_before_limits(request)
    if refusal is None and counts_against_limits(request):
        refusal = rate_limit_refusal(request)
    return refusal


def refusal_before_limits(request: HttpRequest) -> HttpResponse | None:
    """A header holding a control character (400), a NUL in the path (404: no record's id
    holds one, and PostgreSQL could not even look one up)."""
    malformed = malformed_header(request.META)
    if malformed is not None:
        name = _CONTROL_IN_HEADER.sub("?", malformed)
        why = "must not contain control characters"
        return error_json(Invalid(f"header {name}: {why}", fields={name: why}))
    if NUL in request.path:
        return not_found_view(request)
    return None


def counts_against_limits(request: HttpRequest) -> bool:
    return not request.path.startswith(UNLIMITED_PREFIXES) and settings.API_REQUESTS_PER_IP > 0


def rate_limit_refusal(request: HttpRequest) -> HttpResponse | None:
    """429 once the client's address is over its limit: before any view, since guessing tokens
    costs requests too. One counter increment (a Redis round trip when the cache is Redis)."""
    try:
        ratelimit.check(api_ip_limit(), client_ip(request))
    except DomainError as error:
        return error_json(error)
    return None


def malformed_header(meta: dict[str, Any]) -> str | None:
    """The name (as `request.headers` spells it) of the first header holding a control
    character, or None."""
    search = _CONTROL_IN_HEADER.search
    for key, value in meta.items():
        if (key.startswith("HTTP_") or key in _UNPREFIXED_HEADERS) and (
            search(value) or search(key)
        ):
            return HttpHeaders.parse_header_name(key) or key
    return None


# --- after the view ---------------------------------------------------------------------------


def as_json_error(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    """`response`, or for an API error not already JSON the JSON error body of its status."""
    if response.status_code < 400 or request.path.startswith(HTML_PREFIXES):
        return response
    if response.get("Content-Type", "").startswith(JSON_CONTENT_TYPE):
        return response
    status = response.status_code
    code = _STATUS_CODES.get(status, "error")
    message = "not_found" if status == 404 else code.replace("_", " ")
    replacement = error_body_json(status, message, code)
    if response.has_header("Allow"):
        replacement["Allow"] = response["Allow"]
    return replacement


def _is_security_event(request: HttpRequest, response: HttpResponse) -> bool:
    return response.status_code == 403 and request.path.startswith(API_PREFIXES)


def record_security_event(request: HttpRequest, response: HttpResponse) -> None:
    """Who, on which device, from where, asked what, and why it was refused. Written after the
    view answered, outside any command's transaction, and only for refusals."""
    try:
        body = json.loads(response.content)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    actor = getattr(request, "auth", None)
    if not isinstance(actor, Actor):
        actor = None
    event = security.Event(
        kind=security.PERMISSION_DENIED,
        reason=f"{body.get('code', 'permission_denied')}: {body.get('error', '')}",
        actor=actor.username if actor else "",
        actor_id=actor.user_id if actor else None,
        device=actor.device_id if actor else "",
        address=client_ip(request),
        subject=f"{request.method} {request.path}",
    )
    security.record([event])


# --- the access log ---------------------------------------------------------------------------


class AccessLog:
    """One JSON line per request, written straight to stderr: the line structlog's processors
    (level, ISO timestamp in UTC, JSON) made before, key for key, for about half the cost
    (measured: 8-11 us here, 16-17 us through structlog's chain), and not through the standard
    library's handler and formatter (~90 us)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    @classmethod
    def for_settings(cls) -> AccessLog | None:
        """The access log, unless settings.ACCESS_LOG (`serve --no-access-log`) or the
        `quartermaster.access` logger's level turns it off."""
        import logging

        wanted = settings.ACCESS_LOG and logging.getLogger("quartermaster.access").isEnabledFor(
            logging.INFO
        )
        return cls(sys.stderr) if wanted else None

    def write(
        self, request: HttpRequest, status: int, request_id: str, route: str, seconds: float
    ) -> None:
        line = access_line(
            request_id=request_id,
            method=request.method,
            path=request.path,  # no query string: old clients put tokens there
            route=route,
            status=status,
            duration_ms=round(seconds * 1000, 2),
            client=request.META.get("REMOTE_ADDR"),
        )
        with self.lock:
            self.stream.write(line)
            self.stream.flush()


def access_line(**fields: Any) -> str:
    """The access-log line of a request's `fields`, newline included."""
    record = {"request_id": fields.pop("request_id"), "logger": "quartermaster.access", **fields}
    record["event"] = "request"
    record["level"] = "info"
    record["timestamp"] = datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")
    return json.dumps(record) + "\n"


# --- the back office's own middleware -----------------------------------------------------


BACK_OFFICE_PREFIX = "/admin/"


class BackOfficeOnly(MiddlewareMixin):
    """Django's middleware for the back office (the admin at /admin/: a cookie session, its
    user, its messages), skipped on every other path. The API authenticates with bearer tokens
    and never reads `request.session`, `request.user` or messages; built per request anyway,
    these three cost ~40-50 us of CPU a request around a bare view (a session store, a lazy
    user, two message storages and a cookie signer) and added nothing to an API answer. CSRF stays on every path:
    its check is what guards the back office's forms, and it costs ~4 us."""

    def __call__(self, request: HttpRequest) -> Any:
        if request.path_info.startswith(BACK_OFFICE_PREFIX):
            return super().__call__(request)
        # Async or not, the next handler's own answer (a coroutine under an ASGI handler).
        return self.get_response(request)


class BackOfficeSessionMiddleware(BackOfficeOnly, SessionMiddleware):
    pass


class BackOfficeAuthenticationMiddleware(BackOfficeOnly, AuthenticationMiddleware):
    pass


class BackOfficeMessageMiddleware(BackOfficeOnly, MessageMiddleware):
    pass
