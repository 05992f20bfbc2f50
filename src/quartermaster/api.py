"""The HTTP API assembly: routers, default authentication, error handling, OpenAPI."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET
from ninja import NinjaAPI, Redoc, Swagger

from quartermaster import __version__
from quartermaster import health as health_check
from quartermaster.core.api import router as audit_router
from quartermaster.core.api import security_router
from quartermaster.core.http import JsonParser, install_error_handlers, json_response
from quartermaster.dayend.api import router as day_ends_router
from quartermaster.distribution.api import refills_router
from quartermaster.distribution.api import router as loads_router
from quartermaster.identity.api import devices_router as identity_devices_router
from quartermaster.identity.api import router as auth_router
from quartermaster.identity.api import users_router
from quartermaster.identity.auth import BearerAuth
from quartermaster.inspections.api import router as inspections_router
from quartermaster.inspections.api import templates_router
from quartermaster.inventory.api import build_router as build_items_router
from quartermaster.inventory.api import build_stock_router
from quartermaster.journal.api import router as journal_router
from quartermaster.market.api import router as market_router
from quartermaster.media.api import router as media_router
from quartermaster.notifications.api import router as notifications_router
from quartermaster.sales.api import router as sales_router
from quartermaster.sync.api import conflicts_router
from quartermaster.sync.api import devices_router as sync_devices_router
from quartermaster.sync.api import router as sync_router
from quartermaster.sync.catalogue import op_catalogue


class QuartermasterApi(NinjaAPI):
    """The API, whose OpenAPI document also publishes the sync op catalogue (every op type and
    its payload's JSON Schema, from the command registry) under `x-op-catalogue`."""

    def get_openapi_schema(self, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(**kwargs)
        schema["x-op-catalogue"] = op_catalogue()
        return schema


api = QuartermasterApi(
    title="Quartermaster",
    version=__version__,
    description="Offline-first inventory and ledger server. Every endpoint needs a bearer token "
    "except login, refresh, /health, providers' (signed) webhooks and this documentation.",
    urls_namespace="api-v1",
    docs_url="/docs",
    # Swagger UI's script and CSS come from this server's static files (ninja's own copy, as
    # "ninja" is an installed app), not a CDN: the docs work on a LAN without internet.
    docs=Swagger(),
    openapi_url="/openapi.json",
    auth=BearerAuth(),
    parser=JsonParser(),
)
install_error_handlers(api)
api.add_router("/auth", auth_router)
api.add_router("/users", users_router)
api.add_router("/items", build_items_router())
api.add_router("/audit", audit_router)
api.add_router("/security-events", security_router)
api.add_router("", build_stock_router())
api.add_router("", sales_router)
api.add_router("/journal", journal_router)
api.add_router("/loads", loads_router)
api.add_router("/refills", refills_router)
api.add_router("/day-ends", day_ends_router)
api.add_router("/market", market_router)
api.add_router("/templates", templates_router)
api.add_router("/inspections", inspections_router)
api.add_router("/media", media_router)
api.add_router("/notifications", notifications_router)
api.add_router("/sync", sync_router)
api.add_router("/conflicts", conflicts_router)
# /devices: listing and revoking (identity), sync status (sync).
api.add_router("/devices", identity_devices_router)
api.add_router("/devices", sync_devices_router)

# Inventory v2 compatibility: the same item handlers at the root. Not in the OpenAPI document
# (they are aliases), still authenticated.
root_api = NinjaAPI(
    title="Quartermaster root aliases",
    version=__version__,
    urls_namespace="root-aliases",
    docs_url=None,
    openapi_url=None,
    auth=BearerAuth(),
    parser=JsonParser(),
)
install_error_handlers(root_api)
root_api.add_router("/items", build_items_router())


@csrf_exempt
@require_GET
def health(request: HttpRequest) -> HttpResponse:
    # 200 whenever the database answers, a standby included (reads work there): devices
    # choose the server whose `role` is "primary" for their writes.
    found = health_check.check()
    return json_response(200 if found.database == "ok" else 503, found.body())


@csrf_exempt
@require_GET
def redoc(request: HttpRequest) -> HttpResponse:
    """The same OpenAPI document as /api/v1/docs, read as ReDoc lays it out (local assets)."""
    return Redoc().render_page(request, api)
