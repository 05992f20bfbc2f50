"""What the project's middleware costs per request (issue 10, item 10; issue 9, session 5):
`core.middleware.RequestMiddleware` (request id, metrics by route template, the JSON access-log
line, CORS, the language, header checks, JSON errors, security events, the per-address limit)
around a view that does nothing, per call, best of five runs of 50,000. bench/profile_request.py
measures it in a whole keyed PATCH. An end-to-end PATCH loop could not show the
difference on a shared 2-core machine (p50 moved 3-8 ms between rounds), so the cost is measured
where it is paid.

    .venv/bin/python bench/bench_observability.py 2>/dev/null   # the access log goes to stderr
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "quartermaster.settings")
os.environ.setdefault("QM_DATA_DIR", tempfile.mkdtemp(prefix="qm-bench-observability-"))
# The per-address limit would refuse most of 50,000 calls (counted in memory here).
os.environ.setdefault("QM_API_REQUESTS_PER_IP", "0")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.test import RequestFactory  # noqa: E402
from django.urls import resolve  # noqa: E402

from quartermaster.core.middleware import RequestMiddleware  # noqa: E402

CALLS = 50_000


def best_us(call: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(CALLS):
            call()
        best = min(best, (time.perf_counter() - started) / CALLS)
    return best * 1e6


def main() -> None:
    for handler in logging.getLogger().handlers:
        handler.stream = io.StringIO()  # type: ignore[attr-defined]
    request = RequestFactory().patch(
        "/api/v1/items/0b1ee3bc-5ce3-4ca1-9588-a6e7b47af6bd/qty",
        data=b'{"delta": 1}',
        content_type="application/json",
    )
    match = resolve(request.path_info)
    answer = HttpResponse(b"{}")

    def view(r: HttpRequest) -> HttpResponse:
        r.resolver_match = match
        return answer

    print(f"bare view:                       {best_us(lambda: view(request)):6.2f} us")
    for access_log in (False, True):
        settings.ACCESS_LOG = access_log
        middleware = RequestMiddleware(view)
        cost = best_us(lambda m=middleware: m(request))  # type: ignore[misc]
        label = "with" if access_log else "without"
        print(f"middleware {label:>7} access log:   {cost:6.2f} us per request")


if __name__ == "__main__":
    main()
