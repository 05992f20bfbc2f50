"""Per request: a request id (the caller's `X-Request-ID` when it is sane, else a new one),
echoed on the answer and bound to every log line of the request; the request's metrics; one
structured access-log line. And the `/metrics` page for Prometheus.

Kept cheap (the edge and the pipeline are measured to the microsecond, bench/RESULTS.md): no
database access, no URL resolving of its own (the route template is the one Django resolved),
one lock-free context bind, two metric updates.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from quartermaster.core import metrics
from quartermaster.core.http import json_response

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy or a client may hand us as a request id: short, printable, no spaces or quotes
# (it is copied into every log line of the request and back into a header).
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")


def access_logger() -> Any:
    """The access log writes its JSON line straight to stderr (structlog's own writer), not
    through the standard library's handlers and formatter: a tenth of the cost per request
    (measured: ~10 us against ~90 us), and it is one line per request."""
    return structlog.wrap_logger(
        structlog.WriteLogger(sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(),
        ],
    )


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


class ObservabilityMiddleware:
    """Outermost: it times and labels every answer, refusals by the other middleware included."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        wanted = settings.ACCESS_LOG and logging.getLogger("quartermaster.access").isEnabledFor(
            logging.INFO
        )
        self.access_log = access_logger() if wanted else None

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_of(request.META.get("HTTP_X_REQUEST_ID"))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            seconds = time.perf_counter() - started
            route = route_of(request)
            metrics.observe_request(request.method or "", route, response.status_code, seconds)
            if self.access_log is not None:
                self.access_log.info(
                    "request",
                    request_id=request_id,
                    logger="quartermaster.access",
                    method=request.method,
                    path=request.path,  # no query string: old clients put tokens there
                    route=route,
                    status=response.status_code,
                    duration_ms=round(seconds * 1000, 2),
                    client=request.META.get("REMOTE_ADDR"),
                )
            return response
        finally:
            structlog.contextvars.reset_contextvars(**bound)


@csrf_exempt
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus text format. With QM_METRICS_TOKEN set, only for `Authorization: Bearer
    <that token>`; without it, only for a caller on this machine (loopback, and not relayed by
    a proxy on it, whose clients would otherwise all look local)."""
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token = settings.METRICS_TOKEN
    if token:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if hmac.compare_digest(presented.encode(), token.encode()):
            return None
        return json_response(
            401,
            {
                "error": "metrics need the QM_METRICS_TOKEN bearer token",
                "code": "not_authenticated",
            },
        )
    if _is_loopback(request.META.get("REMOTE_ADDR")) and not _relayed(request):
        return None
    return json_response(
        403,
        {
            "error": "metrics are served on this machine only; set QM_METRICS_TOKEN to scrape from elsewhere",
            "code": "permission_denied",
        },
    )


def _is_loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def _relayed(request: HttpRequest) -> bool:
    return any(
        name in request.META
        for name in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")
    )
