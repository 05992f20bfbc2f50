"""HTTP adapters for the market: flowers, settings, farmers, rates."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings as django_settings
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
from quartermaster.core.schemas import ErrorOut
from quartermaster.documents.engine import clean_language
from quartermaster.documents.http import PDF_RESPONSE, DocumentQuery, pdf_response
from quartermaster.documents.render import render_farmer_balance
from quartermaster.market import invariants, services
from quartermaster.market.documents import farmer_balance
from quartermaster.market.schemas import (
    FarmerIn,
    FarmerOut,
    FarmerPageOut,
    FarmerPatchIn,
    FlowerIn,
    FlowerOut,
    FlowerPageOut,
    PageQuery,
    RateIn,
    RatePostingOut,
    RatesOut,
    RatesQuery,
    SettingsIn,
    SettingsOut,
)
from quartermaster.market.selectors import (
    FARMER_ORDER,
    FLOWER_ORDER,
    current_settings,
    farmer_view,
    flower_view,
    get_farmer,
    list_farmers,
    list_flowers,
    rates_on,
)

ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 404: ErrorOut, 409: ErrorOut, 422: ErrorOut}

router = Router(tags=["market"])


@router.post("/flowers", response={201: FlowerOut, **ERRORS})
def create_flower(request: HttpRequest, payload: FlowerIn) -> HttpResponse:
    command = services.CreateFlower(
        code=payload.code, name=payload.name, name_ta=payload.name_ta, unit=payload.unit
    )
    return to_http(execute(command, context_for(request)))


@router.get("/flowers", response={200: FlowerPageOut, **ERRORS})
def list_all_flowers(request: HttpRequest, params: Query[PageQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "market.flower.read")
    page = list_flowers(page=FLOWER_ORDER.request(cursor=params.cursor, limit=params.limit))
    return page_response(page, flower_view)


@router.get("/settings", response={200: SettingsOut, **ERRORS})
def retrieve_settings(request: HttpRequest) -> HttpResponse:
    policy.authorize(actor_of(request), "market.settings.read")
    return json_response(200, current_settings().view())


@router.put("/settings", response={200: SettingsOut, **ERRORS})
def update_settings(request: HttpRequest, payload: SettingsIn) -> HttpResponse:
    """A new version of the settings; every earlier version is kept."""
    command = services.UpdateSettings(
        timezone=payload.timezone,
        slots=tuple(
            services.SlotIn(code=slot.code, starts=slot.starts, ends=slot.ends)
            for slot in payload.slots
        ),
        commission_bp=payload.commission_bp,
        fees=tuple(
            services.FeeIn(
                code=fee.code, name=fee.name, name_ta=fee.name_ta, kind=fee.kind, value=fee.value
            )
            for fee in payload.fees
        ),
    )
    return to_http(execute(command, context_for(request)))


@router.post("/farmers", response={201: FarmerOut, **ERRORS})
def create_farmer(request: HttpRequest, payload: FarmerIn) -> HttpResponse:
    command = services.CreateFarmer(
        name=payload.name,
        name_ta=payload.name_ta,
        phone=payload.phone,
        whatsapp=payload.whatsapp,
        language=payload.language,
        village=payload.village,
        commission_bp=payload.commission_bp,
        user=payload.user,
    )
    return to_http(execute(command, context_for(request)))


@router.get("/farmers", response={200: FarmerPageOut, **ERRORS})
def list_all_farmers(request: HttpRequest, params: Query[PageQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "market.farmer.read")
    page = list_farmers(page=FARMER_ORDER.request(cursor=params.cursor, limit=params.limit))
    return page_response(page, farmer_view)


@router.get("/farmers/{uuid:farmer_id}", response={200: FarmerOut, **ERRORS})
def retrieve_farmer(request: HttpRequest, farmer_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "market.farmer.read")
    farmer = get_farmer(farmer_id)
    if farmer is None:
        raise NotFound()
    return json_response(200, farmer_view(farmer))


@router.patch("/farmers/{uuid:farmer_id}", response={200: FarmerOut, **ERRORS})
def update_farmer(request: HttpRequest, farmer_id: UUID, payload: FarmerPatchIn) -> HttpResponse:
    """`base_version` (or `If-Match`) makes a stale write a 409 `version_conflict`."""
    command = services.UpdateFarmer(
        id=farmer_id,
        name=payload.name,
        name_ta=payload.name_ta,
        phone=payload.phone,
        whatsapp=payload.whatsapp,
        language=payload.language,
        village=payload.village,
        commission_bp=payload.commission_bp,
        user=payload.user,
        base_version=base_version_of(request, payload.base_version),
    )
    return to_http(execute(command, context_for(request)))


@router.post("/rates", response={201: RatePostingOut, **ERRORS})
def post_rate(request: HttpRequest, payload: RateIn) -> HttpResponse:
    command = services.PostRate(
        flower=payload.flower, date=payload.date, slot=payload.slot, rate=payload.rate
    )
    return to_http(execute(command, context_for(request)))


@router.get("/rates", response={200: RatesOut, **ERRORS})
def rates_in_force(request: HttpRequest, params: Query[RatesQuery]) -> HttpResponse:
    """The rate in force on `date` (default: today in the market's timezone) for each flower
    (or `flower`) and slot, with every posting for it; paginated by flower."""
    policy.authorize(actor_of(request), "market.rate.read")
    settings = current_settings()
    if params.date is None:
        on = datetime.now(ZoneInfo(settings.timezone)).date()
    else:
        on = invariants.clean_date(params.date)
    page = list_flowers(
        page=FLOWER_ORDER.request(cursor=params.cursor, limit=params.limit),
        flower_id=params.flower,
    )
    return json_response(
        200,
        {
            "date": on.isoformat(),
            "results": rates_on(page.rows, settings.slots, on),
            "next_cursor": page.next_cursor,
        },
    )


@router.get(
    "/farmers/{uuid:farmer_id}/balance/document",
    response={**ERRORS},
    openapi_extra=PDF_RESPONSE,
)
def farmer_balance_document(
    request: HttpRequest, farmer_id: UUID, params: Query[DocumentQuery]
) -> HttpResponse:
    """The farmer's balance (payable, advance outstanding) as PDF, in `lang` (default: the
    farmer's language); read like their statement: the farmer's own login reads only theirs."""
    actor = actor_of(request)
    policy.authorize(actor, "statement.read")
    farmer = get_farmer(farmer_id)
    if farmer is None:
        raise NotFound()
    policy.authorize(actor, "statement.read", owner_id=farmer.user_id)
    language = clean_language(params.lang, default=farmer.language)
    balance = farmer_balance(farmer, issuer=django_settings.DOCUMENT_ISSUER)
    return pdf_response(render_farmer_balance(balance, language), filename=f"{farmer.number}.pdf")
