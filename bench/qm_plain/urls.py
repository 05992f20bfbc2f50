"""PATCH /api/v1/items/<id>/qty {"delta": int} → 200 {"id", "qty"}; 400 when below zero."""

from __future__ import annotations

import json
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from qm_plain.models import Location, Stock

_default_location: UUID | None = None


def _location_id() -> UUID:
    global _default_location
    if _default_location is None:
        _default_location = Location.objects.values_list("id", flat=True).get(is_default=True)
    return _default_location


def adjust_qty(request: HttpRequest, item_id: UUID) -> HttpResponse:
    if request.method != "PATCH":
        return JsonResponse({"error": "method not allowed"}, status=405)
    try:
        delta = json.loads(request.body)["delta"]
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": "invalid"}, status=400)
    if not isinstance(delta, int) or isinstance(delta, bool):
        return JsonResponse({"error": "invalid"}, status=400)
    rows = Stock.objects.filter(item_id=item_id, location_id=_location_id())
    with transaction.atomic():
        if not rows.filter(qty__gte=-delta).update(qty=F("qty") + delta):
            return JsonResponse({"error": "qty cannot go below 0"}, status=400)
        qty = rows.values_list("qty", flat=True).get()
    return JsonResponse({"id": str(item_id), "qty": qty})


def health(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("health", health),
    path("api/v1/items/<uuid:item_id>/qty", adjust_qty),
]
