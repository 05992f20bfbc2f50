"""HTTP adapters for items. Mounted twice: at /api/v1/items and at the root /items (Inventory v2)."""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router

from quartermaster.core import policy
from quartermaster.core.commands import execute
from quartermaster.core.errors import NotFound
from quartermaster.core.http import actor_of, context_for, json_response, to_http
from quartermaster.core.pagination import clean_limit, decode_cursor, encode_cursor
from quartermaster.core.schemas import ErrorOut
from quartermaster.inventory.schemas import ItemIn, ItemOut, ItemPageOut, ListQuery, QtyDeltaIn
from quartermaster.inventory.selectors import get_item, item_view, list_items
from quartermaster.inventory.services import AdjustItemQty, CreateItem, DeleteItem

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
        "/{uuid:item_id}", ["DELETE"], delete_item, response={204: None, **ERRORS}
    )
    router.add_api_operation(
        "/{uuid:item_id}/qty",
        ["PATCH"],
        adjust_qty,
        response={200: ItemOut, 404: ErrorOut, **ERRORS},
    )
    return router


def create_item(request: HttpRequest, payload: ItemIn) -> HttpResponse:
    command = CreateItem(
        name=payload.name,
        qty=payload.qty,
        price=payload.price,
        unit=payload.unit,
        tracking=payload.tracking,
    )
    return to_http(execute(command, context_for(request)))


def list_all_items(request: HttpRequest, params: Query[ListQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "item.read")
    limit = clean_limit(params.limit)
    position = decode_cursor(params.cursor)
    after = (
        (str(position[0]), str(position[1]))
        if isinstance(position, list) and len(position) == 2
        else None
    )
    rows = list_items(after=after, limit=limit)
    next_cursor = (
        encode_cursor([rows[-1][0].name, str(rows[-1][0].id)]) if len(rows) == limit else None
    )
    return json_response(
        200, {"results": [item_view(item, qty) for item, qty in rows], "next_cursor": next_cursor}
    )


def retrieve_item(request: HttpRequest, item_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "item.read")
    found = get_item(item_id)
    if found is None:
        raise NotFound()
    return json_response(200, item_view(*found))


def delete_item(request: HttpRequest, item_id: UUID) -> HttpResponse:
    return to_http(execute(DeleteItem(item_id=item_id), context_for(request)))


def adjust_qty(request: HttpRequest, item_id: UUID, payload: QtyDeltaIn) -> HttpResponse:
    command = AdjustItemQty(item_id=item_id, delta=payload.delta)
    return to_http(execute(command, context_for(request)))
