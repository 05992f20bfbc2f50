"""The URL map. API routes answer with and without a trailing slash: clients written against
other servers add one, and a redirect would lose a POST's body, so each route gets a twin
pattern for the other spelling (after all the originals, so no twin shadows a real route; no
per-request cost). The back office keeps Django's own slashes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.urls import URLPattern, URLResolver, path

from quartermaster.api import api, health, redoc, root_api
from quartermaster.media.api import media_content
from quartermaster.observability import metrics_view

handler404 = "quartermaster.core.http.not_found_view"
handler500 = "quartermaster.core.http.server_error_view"


def either_slash(urls: tuple[list[Any], str, str]) -> tuple[list[Any], str, str]:
    """A ninja API's `urls` with a twin of every route spelled with the other trailing slash."""
    patterns, app_name, namespace = urls
    return [*patterns, *_twins(patterns)], app_name, namespace


def _twins(patterns: list[URLPattern | URLResolver]) -> list[URLPattern]:
    twins = []
    for pattern in patterns:
        route = str(pattern.pattern)
        if not isinstance(pattern, URLPattern) or not route.strip("/"):
            continue
        other = route.rstrip("/") if route.endswith("/") else f"{route}/"
        twins.append(path(other, pattern.callback, pattern.default_args))
    return twins


urlpatterns = [
    path("health", health, name="health"),
    path("health/", health),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/v1/redoc", redoc, name="redoc"),
    path("api/v1/redoc/", redoc),
    # The local media storage's signed byte endpoint: raw bytes, signed URLs, no bearer token.
    path("api/v1/media/<uuid:media_id>/content", media_content, name="media-content"),
    path("api/v1/", either_slash(api.urls)),
    path("", either_slash(root_api.urls)),
]
