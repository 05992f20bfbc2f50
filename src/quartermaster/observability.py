"""The `/metrics` page for Prometheus. What is counted per request (the request id, the
metrics by route template, the JSON access-log line) is done by `core.middleware`."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from quartermaster.core.http import json_response


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
