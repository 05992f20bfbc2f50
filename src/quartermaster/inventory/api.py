"""HTTP adapters for items. Mounted twice: at /api/v1/items and at the root /items (Inventory v2)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import (
    actor_of,
    base_version_of,
    context_for,
    json_response,
    page_response,
    to_http,
)
from quartermaster.core.pagination import clean_limit
from quartermaster.core.schemas import ErrorOut
from quartermaster.identity.permissions import sees_item_qty
from quartermaster.inventory.schemas import (
    AdjustmentIn,
    AssetOut,
    AssetQuery,
    DistributionIn,
    ItemIn,
    ItemOut,
    ItemPageOut,
    ItemPatchIn,
    ListQuery,
    LocationIn,
    LocationOut,
    LocationPageOut,
    LocationQuery,
    MoveLineIn,
    MovementOut,
    QtyDeltaIn,
    ReceiptIn,
    StockOut,
    StockQuery,
)
from quartermaster.inventory.selectors import (
    ITEM_ORDER,
    LOCATION_ORDER,
    get_default_location,
    get_item,
    get_movement,
    item_view,
    list_assets,
    list_items,
    list_locations,
    list_stock,
    location_view,
)
from quartermaster.inventory.services import (
    AdjustItemQty,
    AdjustLine,
    AdjustStock,
    CreateItem,
    CreateLocation,
    DeleteItem,
    DistributeStock,
    MoveLine,
    ReceiveStock,
    UpdateItem,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 409: ErrorOut, 422: ErrorOut}


def build_router() -> Router:
    """A new router each call: ninja binds a router to one mount point."""
    router = Router(tags=["items"])
    router.add_api_operation("", ["POST"], create_item, response={201: ItemOut, **ERRORS})
    router.add_api_operation("", ["GET"], list_all_items, response={200: ItemPageOut, **ERRORS})
    router.add_api_operation(
        "/{uuid:item_id}", ["GET"], retrieve_item, response={200: ItemOut, 404: ErrorOut, **ERRORS}
    )
    router.add_api_operation(
        # 404 only for a path that is not an item id at all (deleting is idempotent).
        "/{uuid:item_id}",
        ["DELETE"],
        delete_item,
        response={204: None, 404: ErrorOut, **ERRORS},
    )
    router.add_api_operation(
        "/{uuid:item_id}",
        ["PATCH"],
        update_item,
        response={200: ItemOut, 404: ErrorOut, **ERRORS},
    )
    router.add_api_operation(
        "/{uuid:item_id}/qty",
        ["PATCH"],
        adjust_qty,
        response={200: ItemOut, 404: ErrorOut, **ERRORS},
    )
    return router


def create_item(request: HttpRequest, payload: ItemIn) -> HttpResponse:
    # The wire body is the command's: built from it, money is parsed once (core.money.Money).
    command = CreateItem.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


def list_all_items(request: HttpRequest, params: Query[ListQuery]) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "item.read")
    # Refused before any work, as every list does: a bad cursor is a 400 whoever sends it.
    request_page = ITEM_ORDER.request(cursor=params.cursor, limit=params.limit)
    page = list_items(page=request_page)
    qty_shown = sees_item_qty(actor, get_default_location().id)
    return page_response(page, lambda row: _catalogue_wire(item_view(*row).wire, qty_shown))


def retrieve_item(request: HttpRequest, item_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "item.read")
    found = get_item(item_id)
    if found is None:
        raise NotFound()
    qty_shown = sees_item_qty(actor, get_default_location().id)
    return json_response(200, _catalogue_wire(item_view(*found).wire, qty_shown))


def _catalogue_wire(wire: dict[str, Any], qty_shown: bool) -> dict[str, Any]:
    """The catalogue is every reader's; `qty` (stock at the default location) is null for a
    reader who cannot see that location's stock."""
    return wire if qty_shown else {**wire, "qty": None}


def delete_item(request: HttpRequest, item_id: UUID) -> HttpResponse:
    return to_http(execute(DeleteItem(item=item_id), context_for(request)))


def update_item(request: HttpRequest, item_id: UUID, payload: ItemPatchIn) -> HttpResponse:
    """Name, price, unit; `base_version` (or `If-Match`) makes a stale write a 409 conflict."""
    command = UpdateItem.model_validate(
        {
            **payload.model_dump(exclude={"base_version"}),
            "id": item_id,
            "base_version": base_version_of(request, payload.base_version),
        }
    )
    return to_http(execute(command, context_for(request)))


def adjust_qty(request: HttpRequest, item_id: UUID, payload: QtyDeltaIn) -> HttpResponse:
    command = AdjustItemQty(item=item_id, delta=payload.delta)
    return to_http(execute(command, context_for(request)))


def build_stock_router() -> Router:
    """Locations, stock, receipts, distributions, adjustments, movements, assets."""
    router = Router(tags=["stock"])
    router.add_api_operation(
        "/locations", ["POST"], create_location, response={201: LocationOut, **ERRORS}
    )
    router.add_api_operation(
        "/locations", ["GET"], list_all_locations, response={200: LocationPageOut, **ERRORS}
    )
    router.add_api_operation(
        "/stock", ["GET"], list_all_stock, response={200: list[StockOut], **ERRORS}
    )
    router.add_api_operation(
        "/receipts", ["POST"], receive, response={201: MovementOut, 404: ErrorOut, **ERRORS}
    )
    router.add_api_operation(
        "/distributions", ["POST"], distribute, response={201: MovementOut, 404: ErrorOut, **ERRORS}
    )
    router.add_api_operation(
        "/adjustments", ["POST"], adjust_stock, response={201: MovementOut, 404: ErrorOut, **ERRORS}
    )
    router.add_api_operation(
        "/movements/{uuid:movement_id}",
        ["GET"],
        retrieve_movement,
        response={200: MovementOut, 404: ErrorOut, **ERRORS},
    )
    router.add_api_operation(
        "/assets", ["GET"], list_all_assets, response={200: list[AssetOut], **ERRORS}
    )
    return router


def create_location(request: HttpRequest, payload: LocationIn) -> HttpResponse:
    command = CreateLocation(name=payload.name, kind=payload.kind, receives=payload.receives)
    return to_http(execute(command, context_for(request)))


def list_all_locations(request: HttpRequest, params: Query[LocationQuery]) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "location.read")
    page = list_locations(
        actor=actor,
        kind=params.kind,
        page=LOCATION_ORDER.request(cursor=params.cursor, limit=params.limit),
    )
    return page_response(page, lambda location: location_view(location).wire)


def list_all_stock(request: HttpRequest, params: Query[StockQuery]) -> HttpResponse:
    """A plain list, as API.md shows it; narrow it with ?item= and ?location= (max 500 rows)."""
    actor = actor_of(request)
    policy.authorize(actor, "stock.read")
    limit = clean_limit(params.limit or 500)
    rows = list_stock(actor=actor, item_id=params.item, location_id=params.location, limit=limit)
    return json_response(200, [row.wire for row in rows])


def _move_lines(lines: list[MoveLineIn]) -> tuple[MoveLine, ...]:
    return tuple(
        MoveLine(item=li.item, qty=li.qty, serials=tuple(li.serials), condition=li.condition)
        for li in lines
    )


def receive(request: HttpRequest, payload: ReceiptIn) -> HttpResponse:
    command = ReceiveStock(
        to_location=payload.to_location,
        lines=_move_lines(payload.lines),
        supplier=payload.supplier,
        client_temp_id=payload.client_temp_id,
    )
    return to_http(execute(command, context_for(request)))


def distribute(request: HttpRequest, payload: DistributionIn) -> HttpResponse:
    command = DistributeStock(
        from_location=payload.from_location,
        to_location=payload.to_location,
        lines=_move_lines(payload.lines),
        client_temp_id=payload.client_temp_id,
    )
    return to_http(execute(command, context_for(request)))


def adjust_stock(request: HttpRequest, payload: AdjustmentIn) -> HttpResponse:
    command = AdjustStock(
        location=payload.location,
        lines=tuple(
            AdjustLine(
                item=li.item, delta=li.delta, serials=tuple(li.serials), condition=li.condition
            )
            for li in payload.lines
        ),
        reason=payload.reason,
    )
    return to_http(execute(command, context_for(request)))


def retrieve_movement(request: HttpRequest, movement_id: UUID) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "movement.read")
    view = get_movement(actor=actor, movement_id=movement_id)
    if view is None:
        raise NotFound()
    return json_response(200, view.wire)


def list_all_assets(request: HttpRequest, params: Query[AssetQuery]) -> HttpResponse:
    actor = actor_of(request)
    policy.authorize(actor, "asset.read")
    rows = list_assets(
        actor=actor,
        item_id=params.item,
        location_id=params.location,
        serial=params.serial,
        customer_id=params.customer,
        limit=clean_limit(params.limit or 500),
    )
    return json_response(200, [row.wire for row in rows])
