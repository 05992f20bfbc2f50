"""Reads for the market: flowers, farmers, the settings in force, rates in force on a date,
entries, advances, settlements, a farmer's statement and the daily report.

Market records belong to no location: every role allowed to read them reads them all, except a
farmer (a party user), who reads only their own settlements and statement (the api checks it
through identity.permissions with the farmer's user as owner)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum

from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, int_key, text_key, uuid_key
from quartermaster.core.types import View
from quartermaster.journal.selectors import balances_of
from quartermaster.market import invariants
from quartermaster.market.invariants import Fee, Slot
from quartermaster.market.models import (
    Advance,
    Entry,
    Farmer,
    Flower,
    MarketSettings,
    RatePosting,
    Settlement,
)

FLOWER_ORDER = Keyset(fields=(text_key("code"), uuid_key("id")))
FARMER_ORDER = Keyset(fields=(text_key("number"), uuid_key("id")))


def _text_or_none(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _money_or_none(minor: int | None) -> str | None:
    return None if minor is None else format_money(minor)


@dataclass(frozen=True)
class FlowerView(View):
    """A flower. Chain format 1: it began as the wire body of the time and stays as it is; the
    API may rename its fields in `to_wire`, never here."""

    id: UUID
    code: str
    name: str
    name_ta: str
    unit: str
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "code": self.code,
            "name": self.name,
            "name_ta": self.name_ta,
            "unit": self.unit,
            "created_at": self.created_at.isoformat(),
        }


def flower_view(flower: Flower) -> FlowerView:
    return FlowerView(
        flower.id, flower.code, flower.name, flower.name_ta, flower.unit, flower.created_at
    )


def get_flower(flower_id: UUID) -> Flower | None:
    return Flower.objects.filter(pk=flower_id).first()


def list_flowers(*, page: PageRequest, flower_id: UUID | None = None) -> Page[Flower]:
    query = Flower.objects.all()
    if flower_id is not None:
        query = query.filter(pk=flower_id)
    return FLOWER_ORDER.page(query, page)


def advances_account(farmer_number: str) -> str:
    """The journal account of a farmer's outstanding advances (an asset of the agent)."""
    return f"advances_receivable:{farmer_number}"


def payable_account(farmer_number: str) -> str:
    """The journal account of what the agent owes a farmer (a liability)."""
    return f"farmer_payable:{farmer_number}"


def farmer_balances(numbers: list[str]) -> dict[str, tuple[int, int]]:
    """(advance outstanding, payable) in paise per farmer number, from the journal."""
    codes = [advances_account(n) for n in numbers] + [payable_account(n) for n in numbers]
    balances = balances_of(codes)
    return {
        number: (
            balances.get(advances_account(number), 0),
            -balances.get(payable_account(number), 0),
        )
        for number in numbers
    }


@dataclass(frozen=True)
class FarmerView(View):
    """A farmer with the journal's word on their money. Chain format 1: it began as the wire
    body of the time (balances as they stood) and stays as it is."""

    id: UUID
    number: str
    name: str
    name_ta: str
    phone: str
    whatsapp: str
    language: str
    village: str
    commission_bp: int | None
    user_id: UUID | None
    advance_outstanding_minor: int
    payable_minor: int
    version: int
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "name": self.name,
            "name_ta": self.name_ta or None,
            "phone": self.phone,
            "whatsapp": self.whatsapp or None,
            "language": self.language,
            "village": self.village or None,
            "commission_bp": self.commission_bp,
            "user": _text_or_none(self.user_id),
            # The journal's word: advances not yet recovered, settled nets not yet paid.
            "advance_outstanding": format_money(self.advance_outstanding_minor),
            "payable": format_money(self.payable_minor),
            "version": self.version,
            "created_at": self.created_at.isoformat(),
        }


def farmer_view(farmer: Farmer, balances: tuple[int, int] | None = None) -> FarmerView:
    """`balances`: (advance outstanding, payable) when the caller read them for a page."""
    advance, payable = balances or farmer_balances([farmer.number])[farmer.number]
    return FarmerView(
        id=farmer.id,
        number=farmer.number,
        name=farmer.name,
        name_ta=farmer.name_ta,
        phone=farmer.phone,
        whatsapp=farmer.whatsapp,
        language=farmer.language,
        village=farmer.village,
        commission_bp=farmer.commission_bp,
        user_id=farmer.user_id,
        advance_outstanding_minor=advance,
        payable_minor=payable,
        version=farmer.version,
        created_at=farmer.created_at,
    )


def get_farmer(farmer_id: UUID) -> Farmer | None:
    return Farmer.objects.filter(pk=farmer_id).first()


def list_farmers(*, page: PageRequest) -> Page[FarmerView]:
    found = FARMER_ORDER.page(Farmer.objects.all(), page)
    balances = farmer_balances([farmer.number for farmer in found.rows])
    return found.map(lambda farmer: farmer_view(farmer, balances[farmer.number]))


class CurrentSettings:
    """The settings in force: the latest version row, or the defaults (version 1, never stored)
    before the first change."""

    def __init__(self, row: MarketSettings | None) -> None:
        if row is None:
            self.version = 1
            self.timezone = invariants.DEFAULT_TIMEZONE
            self.slots: tuple[Slot, ...] = invariants.DEFAULT_SLOTS
            self.commission_bp = invariants.DEFAULT_COMMISSION_BP
            self.fees: tuple[Fee, ...] = ()
            self.created_at: str | None = None
        else:
            self.version = row.version
            self.timezone = row.timezone
            self.slots = tuple(Slot(**slot) for slot in row.slots)
            self.commission_bp = row.commission_bp
            self.fees = tuple(Fee(**fee) for fee in row.fees)
            self.created_at = row.created_at.isoformat()

    def view(self) -> SettingsView:
        return SettingsView(
            self.timezone, self.slots, self.commission_bp, self.fees, self.version, self.created_at
        )


@dataclass(frozen=True)
class SettingsView(View):
    """The market's settings in force. Chain format 1: it began as the wire body of the time
    and stays as it is."""

    timezone: str
    slots: tuple[Slot, ...]
    commission_bp: int
    fees: tuple[Fee, ...]
    version: int
    created_at: str | None

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "timezone": self.timezone,
            "slots": [
                {"code": slot.code, "starts": slot.starts, "ends": slot.ends} for slot in self.slots
            ],
            "commission_bp": self.commission_bp,
            "fees": [
                {
                    "code": fee.code,
                    "name": fee.name,
                    "name_ta": fee.name_ta,
                    "kind": fee.kind,
                    "value": fee.wire_value(),
                }
                for fee in self.fees
            ],
            "version": self.version,
            "created_at": self.created_at,
        }


def current_settings() -> CurrentSettings:
    return CurrentSettings(MarketSettings.objects.order_by("-version").first())


@dataclass(frozen=True)
class RatePostingView(View):
    """A rate posted for a flower and slot. Chain format 1: it began as the wire body of the
    time and stays as it is (with `priced_entries` when it was posted: the entries it priced)."""

    id: UUID
    number: str
    flower_id: UUID
    date: date
    slot: str
    rate_minor: int
    posted_by: str
    posted_at: datetime
    priced_entries: int | None = None

    def with_priced_entries(self, count: int) -> RatePostingView:
        return replace(self, priced_entries=count)

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        priced = {} if self.priced_entries is None else {"priced_entries": self.priced_entries}
        return {
            "id": str(self.id),
            "number": self.number,
            "flower": str(self.flower_id),
            "date": self.date.isoformat(),
            "slot": self.slot,
            "rate": format_money(self.rate_minor),
            "posted_by": self.posted_by,
            "posted_at": self.posted_at.isoformat(),
        } | priced


def rate_posting_view(posting: RatePosting) -> RatePostingView:
    return RatePostingView(
        id=posting.id,
        number=posting.number,
        flower_id=posting.flower_id,
        date=posting.date,
        slot=posting.slot,
        rate_minor=posting.rate_minor,
        posted_by=posting.posted_by,
        posted_at=posting.posted_at,
    )


def rates_on(flowers: list[Flower], slots: tuple[Slot, ...], on: date) -> list[dict[str, Any]]:
    """For each flower and slot: the rate in force on `on` (None before the first posting) and
    every posting for that flower and slot, newest first."""
    postings: dict[tuple[UUID, str], list[RatePosting]] = {}
    query = RatePosting.objects.filter(flower__in=[flower.pk for flower in flowers])
    for posting in query.order_by("-number"):
        postings.setdefault((posting.flower_id, posting.slot), []).append(posting)
    results = []
    for flower in flowers:
        for slot in slots:
            history = postings.get((flower.pk, slot.code), [])
            current = invariants.effective_posting(
                [
                    (posting.date, int(posting.number.rsplit("-", 1)[1]), posting)
                    for posting in history
                ],
                on,
            )
            results.append(
                {
                    "flower": str(flower.pk),
                    "flower_code": flower.code,
                    "slot": slot.code,
                    "rate": format_money(current.rate_minor) if current else None,
                    "effective_from": current.date.isoformat() if current else None,
                    "posting": str(current.pk) if current else None,
                    "history": [rate_posting_view(posting).wire for posting in history],
                }
            )
    return results


# -- entries --

ENTRY_ORDER = Keyset(fields=(int_key("seq"),), descending=True)


def effective_rate(flower_id: UUID, slot: str, on: date) -> RatePosting | None:
    """The posting in force for a flower and slot on a market day (`invariants.effective_posting`
    as one indexed query): the latest date ≤ `on`, on that date the last posted. Rate numbers
    have a fixed width, so their text sorts in posting order."""
    return (
        RatePosting.objects.filter(flower_id=flower_id, slot=slot, date__lte=on)
        .order_by("-date", "-number")
        .first()
    )


def next_posting_date(flower_id: UUID, slot: str, after: date) -> date | None:
    """The first date after `after` with a posting for this flower and slot: where the reign
    of a posting dated `after` ends."""
    return (
        RatePosting.objects.filter(flower_id=flower_id, slot=slot, date__gt=after)
        .order_by("date")
        .values_list("date", flat=True)
        .first()
    )


@dataclass(frozen=True)
class FlowerEntryView(View):
    """A farmer's flowers brought in (an entry). Chain format 1: it began as the wire body of
    the time and stays as it is."""

    id: UUID
    number: str
    farmer_id: UUID
    flower_id: UUID
    unit: str
    qty_base: int
    arrived_at: datetime
    market_day: date
    slot: str
    rate_minor: int | None
    gross_minor: int | None
    status: str
    settlement_id: UUID | None
    void_reason: str
    version: int
    created_by: str
    client_temp_id: str

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "farmer": str(self.farmer_id),
            "flower": str(self.flower_id),
            "unit": self.unit,
            "qty": invariants.format_qty(self.qty_base, self.unit),
            "arrived_at": self.arrived_at.isoformat(),
            "market_day": self.market_day.isoformat(),
            "slot": self.slot,
            "rate": _money_or_none(self.rate_minor),
            "gross": _money_or_none(self.gross_minor),
            "status": self.status,
            "settlement": _text_or_none(self.settlement_id),
            "void_reason": self.void_reason or None,
            "version": self.version,
            "created_by": self.created_by,
            "client_temp_id": self.client_temp_id or None,
        }


def entry_view(entry: Entry, unit: str | None = None) -> FlowerEntryView:
    """An entry as a view. `unit`: the flower's, when known."""
    return FlowerEntryView(
        id=entry.id,
        number=entry.number,
        farmer_id=entry.farmer_id,
        flower_id=entry.flower_id,
        unit=unit or entry.flower.unit,
        qty_base=entry.qty_base,
        arrived_at=entry.arrived_at,
        market_day=entry.market_day,
        slot=entry.slot,
        rate_minor=entry.rate_minor,
        gross_minor=entry.gross_minor,
        status=entry.status,
        settlement_id=entry.settlement_id,
        void_reason=entry.void_reason,
        version=entry.version,
        created_by=entry.created_by,
        client_temp_id=entry.client_temp_id,
    )


def get_entry(entry_id: UUID) -> Entry | None:
    return Entry.objects.select_related("flower").filter(pk=entry_id).first()


def list_entries(
    *,
    page: PageRequest,
    market_day: date | None = None,
    farmer_id: UUID | None = None,
    status: str | None = None,
) -> Page[Entry]:
    """Entries newest first, narrowed by market day, farmer and status when given."""
    query = Entry.objects.select_related("flower")
    if market_day is not None:
        query = query.filter(market_day=market_day)
    if farmer_id is not None:
        query = query.filter(farmer_id=farmer_id)
    if status is not None:
        query = query.filter(status=status)
    return ENTRY_ORDER.page(query, page)


# -- advances and settlements --

ADVANCE_ORDER = Keyset(fields=(text_key("number"), uuid_key("id")), descending=True)
SETTLEMENT_ORDER = Keyset(fields=(text_key("number"), uuid_key("id")), descending=True)


@dataclass(frozen=True)
class AdvanceView(View):
    """Money advanced to a farmer. Chain format 1: it began as the wire body of the time and
    stays as it is."""

    id: UUID
    number: str
    farmer_id: UUID
    amount_minor: int
    method: str
    note: str
    journal_entry_id: UUID
    created_by: str
    created_at: datetime
    client_temp_id: str

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "farmer": str(self.farmer_id),
            "amount": format_money(self.amount_minor),
            "method": self.method,
            "note": self.note or None,
            "journal_entry": str(self.journal_entry_id),
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "client_temp_id": self.client_temp_id or None,
        }


def advance_view(advance: Advance) -> AdvanceView:
    return AdvanceView(
        id=advance.id,
        number=advance.number,
        farmer_id=advance.farmer_id,
        amount_minor=advance.amount_minor,
        method=advance.method,
        note=advance.note,
        journal_entry_id=advance.journal_entry_id,
        created_by=advance.created_by,
        created_at=advance.created_at,
        client_temp_id=advance.client_temp_id,
    )


@dataclass(frozen=True)
class SettledEntryView:
    """An entry as its settlement names it."""

    id: UUID
    number: str
    market_day: date
    slot: str
    flower_id: UUID
    qty: str | int
    rate_minor: int | None
    gross_minor: int | None

    def snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "market_day": self.market_day.isoformat(),
            "slot": self.slot,
            "flower": str(self.flower_id),
            "qty": self.qty,
            "rate": _money_or_none(self.rate_minor),
            "gross": _money_or_none(self.gross_minor),
        }


@dataclass(frozen=True)
class SettlementView(View):
    """A farmer's settlement. Chain format 1: it began as the wire body of the time and stays
    as it is; its entries (`entries` not None) only in the snapshot after generation, state
    changes do not repeat them."""

    id: UUID
    number: str
    farmer_id: UUID
    period_from: date
    period_to: date
    status: str
    entry_count: int
    gross_minor: int
    commission_bp: int
    commission_minor: int
    fees: tuple[tuple[str, int], ...]
    advance_recovered_minor: int
    net_minor: int
    payment_method: str
    cancel_reason: str
    version: int
    created_by: str
    created_at: datetime
    approved_by: str
    approved_at: datetime | None
    paid_by: str
    paid_at: datetime | None
    cancelled_by: str
    cancelled_at: datetime | None
    entries: tuple[SettledEntryView, ...] | None

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": str(self.id),
            "number": self.number,
            "farmer": str(self.farmer_id),
            "period_from": self.period_from.isoformat(),
            "period_to": self.period_to.isoformat(),
            "status": self.status,
            "entry_count": self.entry_count,
            "gross": format_money(self.gross_minor),
            "commission_bp": self.commission_bp,
            "commission": format_money(self.commission_minor),
            "fees": [{"code": code, "amount": format_money(amount)} for code, amount in self.fees],
            "advance_recovered": format_money(self.advance_recovered_minor),
            "net": format_money(self.net_minor),
            "payment_method": self.payment_method or None,
            "cancel_reason": self.cancel_reason or None,
            "version": self.version,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "approved_by": self.approved_by or None,
            "approved_at": _iso_or_none(self.approved_at),
            "paid_by": self.paid_by or None,
            "paid_at": _iso_or_none(self.paid_at),
            "cancelled_by": self.cancelled_by or None,
            "cancelled_at": _iso_or_none(self.cancelled_at),
        }
        if self.entries is not None:
            body["entries"] = [entry.snapshot() for entry in self.entries]
        return body


def settlement_view(settlement: Settlement, *, with_entries: bool = True) -> SettlementView:
    """The settlement as a view; its entries (numbers and figures) only when asked."""
    entries = None
    if with_entries:
        entries = tuple(
            SettledEntryView(
                id=entry.id,
                number=entry.number,
                market_day=entry.market_day,
                slot=entry.slot,
                flower_id=entry.flower_id,
                qty=invariants.format_qty(entry.qty_base, entry.flower.unit),
                rate_minor=entry.rate_minor,
                gross_minor=entry.gross_minor,
            )
            for entry in settlement.entries.select_related("flower").order_by("seq")
        )
    return SettlementView(
        id=settlement.id,
        number=settlement.number,
        farmer_id=settlement.farmer_id,
        period_from=settlement.period_from,
        period_to=settlement.period_to,
        status=settlement.status,
        entry_count=settlement.entry_count,
        gross_minor=settlement.gross_minor,
        commission_bp=settlement.commission_bp,
        commission_minor=settlement.commission_minor,
        fees=tuple((fee["code"], fee["amount_minor"]) for fee in settlement.fees),
        advance_recovered_minor=settlement.advance_recovered_minor,
        net_minor=settlement.net_minor,
        payment_method=settlement.payment_method,
        cancel_reason=settlement.cancel_reason,
        version=settlement.version,
        created_by=settlement.created_by,
        created_at=settlement.created_at,
        approved_by=settlement.approved_by,
        approved_at=settlement.approved_at,
        paid_by=settlement.paid_by,
        paid_at=settlement.paid_at,
        cancelled_by=settlement.cancelled_by,
        cancelled_at=settlement.cancelled_at,
        entries=entries,
    )


def list_advances(*, page: PageRequest, farmer_id: UUID | None = None) -> Page[Advance]:
    query = Advance.objects.all()
    if farmer_id is not None:
        query = query.filter(farmer_id=farmer_id)
    return ADVANCE_ORDER.page(query, page)


def get_settlement(settlement_id: UUID) -> Settlement | None:
    return Settlement.objects.select_related("farmer").filter(pk=settlement_id).first()


def list_settlements(
    *, page: PageRequest, farmer_id: UUID | None = None, status: str | None = None
) -> Page[Settlement]:
    query = Settlement.objects.all()
    if farmer_id is not None:
        query = query.filter(farmer_id=farmer_id)
    if status is not None:
        query = query.filter(status=status)
    return SETTLEMENT_ORDER.page(query, page)


def farmer_of_user(user_id: UUID | None) -> Farmer | None:
    """The farmer a party user signs in as, if any."""
    if user_id is None:
        return None
    return Farmer.objects.filter(user_id=user_id).first()


def farmers_of_users(user_ids: Iterable[UUID]) -> dict[UUID, UUID]:
    """User id → the farmer each signs in as, for those linked (identity.parties)."""
    rows = Farmer.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "id")
    return {user_id: farmer_id for user_id, farmer_id in rows}


# -- a farmer's statement --


@dataclass(frozen=True)
class StatementLine:
    """One line of a statement. `amount_minor`: what it does to the balance (None for an
    entry: a delivery is owed only once a settlement recognises it)."""

    at: datetime
    kind: str
    reference: str
    description: str
    qty: int | str | None
    gross_minor: int | None
    amount_minor: int | None
    balance_minor: int


# Lines of one moment in this order: what was delivered, then what was owed and paid.
_KIND_ORDER = {"entry": 0, "advance": 1, "settlement": 2, "settlement_cancelled": 3, "payment": 4}


def _statement_events(farmer: Farmer) -> list[tuple[datetime, str, str, str, Any, Any, Any]]:
    """(at, kind, reference, description, qty, gross, amount) of every event of a farmer's."""
    events: list[tuple[datetime, str, str, str, Any, Any, Any]] = []
    entries = farmer.entries.exclude(status="void").select_related("flower").order_by("seq")
    for entry in entries.iterator(chunk_size=2000):
        events.append(
            (
                entry.arrived_at,
                "entry",
                entry.number,
                f"{entry.flower.name} ({entry.slot})",
                invariants.format_qty(entry.qty_base, entry.flower.unit),
                entry.gross_minor,
                None,
            )
        )
    for advance in farmer.advances.order_by("number"):
        events.append(
            (
                advance.created_at,
                "advance",
                advance.number,
                advance.note,
                None,
                None,
                -advance.amount_minor,
            )
        )
    for stl in farmer.settlements.order_by("number"):
        owed = stl.net_minor + stl.advance_recovered_minor
        period = f"{stl.period_from.isoformat()} - {stl.period_to.isoformat()}"
        events.append(
            (stl.created_at, "settlement", stl.number, period, None, stl.gross_minor, owed)
        )
        if stl.cancelled_at is not None:
            events.append(
                (
                    stl.cancelled_at,
                    "settlement_cancelled",
                    stl.number,
                    stl.cancel_reason,
                    None,
                    None,
                    -owed,
                )
            )
        if stl.paid_at is not None:
            events.append(
                (stl.paid_at, "payment", stl.number, stl.payment_method, None, None, -stl.net_minor)
            )
    return events


def farmer_statement(
    farmer: Farmer, *, since: date | None = None, until: date | None = None
) -> tuple[int, list[StatementLine], int]:
    """(opening balance, lines, closing balance) of a farmer between two dates (inclusive, in
    the market's timezone). The balance is what the agent owes the farmer net of advances:
    settlements add what they recognise (net and advance recovered), advances and payments
    take away, a cancelled settlement takes its amount back."""
    zone = ZoneInfo(current_settings().timezone)
    events = sorted(_statement_events(farmer), key=lambda e: (e[0], _KIND_ORDER[e[1]], e[2]))
    opening = 0
    running = 0
    lines: list[StatementLine] = []
    for at, kind, reference, description, qty, gross, amount in events:
        day = at.astimezone(zone).date()
        if until is not None and day > until:
            break
        running += amount or 0
        if since is not None and day < since:
            opening = running
            continue
        lines.append(StatementLine(at, kind, reference, description, qty, gross, amount, running))
    return opening, lines, running


def statement_line_view(line: StatementLine) -> dict[str, Any]:
    return {
        "at": line.at.isoformat(),
        "kind": line.kind,
        "reference": line.reference,
        "description": line.description,
        "qty": line.qty,
        "gross": None if line.gross_minor is None else format_money(line.gross_minor),
        "amount": None if line.amount_minor is None else format_money(line.amount_minor),
        "balance": format_money(line.balance_minor),
    }


# -- the daily report --


def daily_report(day: date) -> dict[str, Any]:
    """A market day's entries (void ones left out) totalled by flower, slot and farmer, in
    the database: one query per table, whatever the number of entries."""
    entries = Entry.objects.filter(market_day=day).exclude(status="void")
    totals = {"entries": Count("id"), "gross": Sum("gross_minor"), "qty": Sum("qty_base")}
    by_flower = entries.values("flower_id", "flower__code", "flower__name", "flower__unit")
    by_slot = entries.values("slot")
    by_farmer = entries.values("farmer_id", "farmer__number", "farmer__name")
    overall = entries.aggregate(entries=Count("id"), gross=Sum("gross_minor"))
    return {
        "date": day.isoformat(),
        "entries": overall["entries"],
        "gross": format_money(overall["gross"] or 0),
        "awaiting_rate": entries.filter(status="awaiting_rate").count(),
        "by_flower": [
            {
                "flower": str(row["flower_id"]),
                "code": row["flower__code"],
                "name": row["flower__name"],
                "unit": row["flower__unit"],
                "entries": row["entries"],
                "qty": invariants.format_qty(row["qty"], row["flower__unit"]),
                "gross": format_money(row["gross"] or 0),
            }
            for row in by_flower.annotate(**totals).order_by("flower__code")
        ],
        "by_slot": [
            {
                "slot": row["slot"],
                "entries": row["entries"],
                "gross": format_money(row["gross"] or 0),
            }
            for row in by_slot.annotate(**totals).order_by("slot")
        ],
        "by_farmer": [
            {
                "farmer": str(row["farmer_id"]),
                "number": row["farmer__number"],
                "name": row["farmer__name"],
                "entries": row["entries"],
                "gross": format_money(row["gross"] or 0),
            }
            for row in by_farmer.annotate(**totals).order_by("farmer__number")
        ],
    }


def farmers_to_settle(first: date, last: date) -> Iterator[UUID]:
    """The farmers with an open entry of a market day in the period, streamed (month-end runs
    one settlement per farmer; no farmer's entries are read here)."""
    query = (
        Entry.objects.filter(status="open", market_day__range=(first, last))
        .values_list("farmer_id", flat=True)
        .distinct()
        .order_by("farmer_id")
    )
    yield from query.iterator(chunk_size=500)
