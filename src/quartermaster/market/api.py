"""HTTP adapters for the market: flowers, settings, farmers, rates, daily entries, advances,
settlements, statements and the daily report."""

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
from quartermaster.core.money import format_money, parse_money
from quartermaster.core.schemas import ErrorOut
from quartermaster.core.types import Actor, wire_of
from quartermaster.documents.engine import clean_language
from quartermaster.documents.http import PDF_RESPONSE, DocumentQuery, pdf_response
from quartermaster.documents.render import render_farmer_balance, render_settlement_slip
from quartermaster.identity import permissions
from quartermaster.market import invariants, recording, services
from quartermaster.market.documents import farmer_balance, settlement_slip
from quartermaster.market.exports import Money, Table, download
from quartermaster.market.models import Settlement, SettlementStatus
from quartermaster.market.schemas import (
    AdvanceIn,
    AdvanceOut,
    AdvancePageOut,
    AdvancesQuery,
    DailyReportOut,
    EntriesQuery,
    EntryIn,
    EntryOut,
    EntryPageOut,
    EntryPatchIn,
    FarmerIn,
    FarmerOut,
    FarmerPageOut,
    FarmerPatchIn,
    FlowerIn,
    FlowerOut,
    FlowerPageOut,
    PageQuery,
    PayIn,
    RateIn,
    RatePostedOut,
    RatesOut,
    RatesQuery,
    ReasonIn,
    ReportQuery,
    SettingsIn,
    SettingsOut,
    SettlementIn,
    SettlementOut,
    SettlementPageOut,
    SettlementsQuery,
    StatementOut,
    StatementQuery,
)
from quartermaster.market.selectors import (
    ADVANCE_ORDER,
    ENTRY_ORDER,
    FARMER_ORDER,
    FLOWER_ORDER,
    SETTLEMENT_ORDER,
    advance_view,
    current_settings,
    daily_report,
    entry_view,
    farmer_balances,
    farmer_of_user,
    farmer_statement,
    farmer_view,
    flower_view,
    get_entry,
    get_farmer,
    get_settlement,
    list_advances,
    list_entries,
    list_farmers,
    list_flowers,
    list_settlements,
    rates_on,
    settlement_view,
    statement_line_view,
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
    return page_response(page, lambda flower: flower_view(flower).wire)


@router.get("/settings", response={200: SettingsOut, **ERRORS})
def retrieve_settings(request: HttpRequest) -> HttpResponse:
    policy.authorize(actor_of(request), "market.settings.read")
    return json_response(200, current_settings().view().wire)


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
    return page_response(page, wire_of)


@router.get("/farmers/{uuid:farmer_id}", response={200: FarmerOut, **ERRORS})
def retrieve_farmer(request: HttpRequest, farmer_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "market.farmer.read")
    farmer = get_farmer(farmer_id)
    if farmer is None:
        raise NotFound()
    return json_response(200, farmer_view(farmer).wire)


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


@router.post("/rates", response={201: RatePostedOut, **ERRORS})
def post_rate(request: HttpRequest, payload: RateIn) -> HttpResponse:
    # The wire body is the command's: built from it, the rate is parsed once (core.money).
    command = services.PostRate.model_validate(payload.model_dump())
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


@router.post("/entries", response={201: EntryOut, **ERRORS})
def create_entry(request: HttpRequest, payload: EntryIn) -> HttpResponse:
    """Record a delivery. Its slot and market day come from `arrived_at` in the market's
    timezone; without a rate posted for them yet it is `awaiting_rate`."""
    command = recording.CreateEntry(
        farmer=payload.farmer,
        flower=payload.flower,
        qty=payload.qty,
        arrived_at=payload.arrived_at,
        client_temp_id=payload.client_temp_id,
    )
    return to_http(execute(command, context_for(request)))


@router.get("/entries", response={200: EntryPageOut, **ERRORS})
def list_all_entries(request: HttpRequest, params: Query[EntriesQuery]) -> HttpResponse:
    """Newest first; `date` (a market day), `farmer` and `status` narrow the list."""
    policy.authorize(actor_of(request), "market.entry.read")
    status = (
        None
        if params.status is None
        else invariants.clean_choice(params.status, "status", invariants.EntryStatus)
    )
    page = list_entries(
        page=ENTRY_ORDER.request(cursor=params.cursor, limit=params.limit),
        market_day=None if params.date is None else invariants.clean_date(params.date),
        farmer_id=params.farmer,
        status=status,
    )
    return page_response(page, lambda entry: entry_view(entry).wire)


@router.get("/entries/{uuid:entry_id}", response={200: EntryOut, **ERRORS})
def retrieve_entry(request: HttpRequest, entry_id: UUID) -> HttpResponse:
    policy.authorize(actor_of(request), "market.entry.read")
    entry = get_entry(entry_id)
    if entry is None:
        raise NotFound()
    return json_response(200, entry_view(entry).wire)


@router.patch("/entries/{uuid:entry_id}", response={200: EntryOut, **ERRORS})
def update_entry(request: HttpRequest, entry_id: UUID, payload: EntryPatchIn) -> HttpResponse:
    """Staff: their own entries of the same market day (else 403); in a settlement → 409
    `entry_settled`. A stale `base_version` (or `If-Match`) merges the quantity by its delta."""
    command = recording.UpdateEntry(
        id=entry_id,
        qty=payload.qty,
        flower=payload.flower,
        farmer=payload.farmer,
        base_version=base_version_of(request, payload.base_version),
    )
    return to_http(execute(command, context_for(request)))


@router.post("/entries/{uuid:entry_id}/void", response={200: EntryOut, **ERRORS})
def void_entry(request: HttpRequest, entry_id: UUID, payload: ReasonIn) -> HttpResponse:
    command = recording.VoidEntry(id=entry_id, reason=payload.reason)
    return to_http(execute(command, context_for(request)))


@router.post("/advances", response={201: AdvanceOut, **ERRORS})
def record_advance(request: HttpRequest, payload: AdvanceIn) -> HttpResponse:
    """Money given to a farmer (`method`: cash, bank or upi), posted to the journal at once;
    the answer carries the farmer's `advance_outstanding` after it."""
    command = services.RecordAdvance.model_validate(payload.model_dump())
    return to_http(execute(command, context_for(request)))


@router.get("/advances", response={200: AdvancePageOut, **ERRORS})
def list_all_advances(request: HttpRequest, params: Query[AdvancesQuery]) -> HttpResponse:
    policy.authorize(actor_of(request), "market.advance.read")
    page = list_advances(
        page=ADVANCE_ORDER.request(cursor=params.cursor, limit=params.limit),
        farmer_id=params.farmer,
    )
    return page_response(page, lambda advance: advance_view(advance).wire)


@router.post("/settlements", response={201: SettlementOut, **ERRORS})
def generate_settlement(request: HttpRequest, payload: SettlementIn) -> HttpResponse:
    """A draft settlement of the farmer's open entries of the period (admin)."""
    command = services.GenerateSettlement(
        farmer=payload.farmer, period_from=payload.period_from, period_to=payload.period_to
    )
    return to_http(execute(command, context_for(request)))


@router.get("/settlements", response={200: SettlementPageOut, **ERRORS})
def list_all_settlements(request: HttpRequest, params: Query[SettlementsQuery]) -> HttpResponse:
    """Newest first; a farmer signed in sees only their own."""
    actor = actor_of(request)
    policy.authorize(actor, "market.settlement.read")
    farmer_id = params.farmer
    if permissions.own_records_only(actor, "market.settlement.read"):
        own = farmer_of_user(actor.user_id)
        if own is None or (farmer_id is not None and farmer_id != own.pk):
            return json_response(200, {"results": [], "next_cursor": None})
        farmer_id = own.pk
    status = (
        None
        if params.status is None
        else invariants.clean_choice(params.status, "status", SettlementStatus)
    )
    page = list_settlements(
        page=SETTLEMENT_ORDER.request(cursor=params.cursor, limit=params.limit),
        farmer_id=farmer_id,
        status=status,
    )
    return page_response(
        page, lambda settlement: settlement_view(settlement, with_entries=False).wire
    )


@router.get(
    "/settlements/{uuid:settlement_id}/document",
    response={**ERRORS},
    openapi_extra=PDF_RESPONSE,
)
def settlement_document(
    request: HttpRequest, settlement_id: UUID, params: Query[DocumentQuery]
) -> HttpResponse:
    """The settlement slip as PDF, in `lang` (default: the farmer's language); read like the
    settlement: the farmer's own login reads only theirs."""
    actor = actor_of(request)
    policy.authorize(actor, "market.settlement.read")
    settlement = _readable_settlement(actor, settlement_id)
    language = clean_language(params.lang, default=settlement.farmer.language)
    slip = settlement_slip(settlement, issuer=django_settings.DOCUMENT_ISSUER)
    return pdf_response(render_settlement_slip(slip, language), filename=f"{slip.number}.pdf")


@router.get("/settlements/{uuid:settlement_id}", response={200: SettlementOut, **ERRORS})
def retrieve_settlement(request: HttpRequest, settlement_id: UUID) -> HttpResponse:
    settlement = _readable_settlement(actor_of(request), settlement_id)
    return json_response(200, settlement_view(settlement).wire)


def _readable_settlement(actor: Actor, settlement_id: UUID) -> Settlement:
    """The settlement, if `actor` may read it: a farmer's own login reads only theirs (404)."""
    settlement = get_settlement(settlement_id)
    if settlement is None:
        raise NotFound()
    policy.authorize(actor, "market.settlement.read", owner_id=settlement.farmer.user_id)
    return settlement


@router.post("/settlements/{uuid:settlement_id}/approve", response={200: SettlementOut, **ERRORS})
def approve_settlement(request: HttpRequest, settlement_id: UUID) -> HttpResponse:
    """Admin, clerk, or the farmer it belongs to; only a draft (else 409 `invalid_state`)."""
    command = services.ApproveSettlement(id=settlement_id)
    return to_http(execute(command, context_for(request)))


@router.post("/settlements/{uuid:settlement_id}/pay", response={200: SettlementOut, **ERRORS})
def pay_settlement(request: HttpRequest, settlement_id: UUID, payload: PayIn) -> HttpResponse:
    """Admin; only an approved settlement. The payment posts to the journal."""
    command = services.PaySettlement(id=settlement_id, method=payload.method)
    return to_http(execute(command, context_for(request)))


@router.post("/settlements/{uuid:settlement_id}/cancel", response={200: SettlementOut, **ERRORS})
def cancel_settlement(request: HttpRequest, settlement_id: UUID, payload: ReasonIn) -> HttpResponse:
    """Admin; a draft or approved settlement (a paid one: 409). Its entries are open again."""
    command = services.CancelSettlement(id=settlement_id, reason=payload.reason)
    return to_http(execute(command, context_for(request)))


@router.get("/farmers/{uuid:farmer_id}/statement", response={200: StatementOut, **ERRORS})
def statement(request: HttpRequest, farmer_id: UUID, params: Query[StatementQuery]) -> HttpResponse:
    """Entries, advances, settlements and payments with the running balance (what the agent
    owes the farmer net of advances; entries count once settled). `from`/`to`: market days.
    A farmer reads only their own. `?format=csv|xlsx` downloads it."""
    actor = actor_of(request)
    policy.authorize(actor, "statement.read")
    farmer = get_farmer(farmer_id)
    if farmer is None:
        raise NotFound()
    policy.authorize(actor, "statement.read", owner_id=farmer.user_id)
    since = None if params.date_from is None else invariants.clean_date(params.date_from, "from")
    until = None if params.date_to is None else invariants.clean_date(params.date_to, "to")
    opening, lines, closing = farmer_statement(farmer, since=since, until=until)
    if params.format != "json":
        table = Table(
            f"{farmer.number} statement",
            ("at", "kind", "reference", "description", "qty", "gross", "amount", "balance"),
            [
                (
                    line.at.isoformat(),
                    line.kind,
                    line.reference,
                    line.description,
                    line.qty,
                    None if line.gross_minor is None else Money(line.gross_minor),
                    None if line.amount_minor is None else Money(line.amount_minor),
                    Money(line.balance_minor),
                )
                for line in lines
            ],
        )
        return download(table, f"statement-{farmer.number}", params.format)
    advance, payable = farmer_balances([farmer.number])[farmer.number]
    return json_response(
        200,
        {
            "farmer": str(farmer.pk),
            "number": farmer.number,
            "name": farmer.name,
            "period_from": None if since is None else since.isoformat(),
            "period_to": None if until is None else until.isoformat(),
            "opening_balance": format_money(opening),
            "lines": [statement_line_view(line) for line in lines],
            "balance": format_money(closing),
            "advance_outstanding": format_money(advance),
            "payable": format_money(payable),
        },
    )


@router.get("/reports/daily", response={200: DailyReportOut, **ERRORS})
def daily(request: HttpRequest, params: Query[ReportQuery]) -> HttpResponse:
    """A market day's entries totalled by flower, slot and farmer (void ones left out).
    `?format=csv|xlsx` downloads it, one row per total."""
    policy.authorize(actor_of(request), "market.report.read")
    day = invariants.clean_date(params.date)
    report = daily_report(day)
    if params.format == "json":
        return json_response(200, report)
    rows: list[tuple[str | int | Money | None, ...]] = [
        ("flower", row["code"], row["name"], row["entries"], row["qty"], row["unit"], row["gross"])
        for row in report["by_flower"]
    ]
    rows += [("slot", r["slot"], "", r["entries"], None, "", r["gross"]) for r in report["by_slot"]]
    rows += [
        ("farmer", r["number"], r["name"], r["entries"], None, "", r["gross"])
        for r in report["by_farmer"]
    ]
    rows.append(("total", "", "", report["entries"], None, "", report["gross"]))
    money_rows = [(*row[:6], Money(parse_money(str(row[6])))) for row in rows]
    table = Table(
        f"market {day.isoformat()}",
        ("by", "code", "name", "entries", "qty", "unit", "gross"),
        money_rows,
    )
    return download(table, f"market-{day.isoformat()}", params.format)
