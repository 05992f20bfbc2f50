"""Reads for the market: flowers, farmers, the settings in force and rates in force on a date.
Market records belong to no location: every role allowed to read them reads them all."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, uuid_key
from quartermaster.market import invariants
from quartermaster.market.invariants import Fee, Slot
from quartermaster.market.models import Farmer, Flower, MarketSettings, RatePosting

FLOWER_ORDER = Keyset(fields=(text_key("code"), uuid_key("id")))
FARMER_ORDER = Keyset(fields=(text_key("number"), uuid_key("id")))


def flower_view(flower: Flower) -> dict[str, Any]:
    return {
        "id": str(flower.id),
        "code": flower.code,
        "name": flower.name,
        "name_ta": flower.name_ta,
        "unit": flower.unit,
        "created_at": flower.created_at.isoformat(),
    }


def get_flower(flower_id: UUID) -> Flower | None:
    return Flower.objects.filter(pk=flower_id).first()


def list_flowers(*, page: PageRequest, flower_id: UUID | None = None) -> Page[Flower]:
    query = Flower.objects.all()
    if flower_id is not None:
        query = query.filter(pk=flower_id)
    return FLOWER_ORDER.page(query, page)


def farmer_view(farmer: Farmer) -> dict[str, Any]:
    return {
        "id": str(farmer.id),
        "number": farmer.number,
        "name": farmer.name,
        "name_ta": farmer.name_ta or None,
        "phone": farmer.phone,
        "whatsapp": farmer.whatsapp or None,
        "language": farmer.language,
        "village": farmer.village or None,
        "commission_bp": farmer.commission_bp,
        "user": str(farmer.user_id) if farmer.user_id else None,
        # Advances and market entries come with the next deliverables: nothing owed yet.
        "advance_outstanding": format_money(0),
        "payable": format_money(0),
        "version": farmer.version,
        "created_at": farmer.created_at.isoformat(),
    }


def get_farmer(farmer_id: UUID) -> Farmer | None:
    return Farmer.objects.filter(pk=farmer_id).first()


def list_farmers(*, page: PageRequest) -> Page[Farmer]:
    return FARMER_ORDER.page(Farmer.objects.all(), page)


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

    def view(self) -> dict[str, Any]:
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


def rate_posting_view(posting: RatePosting) -> dict[str, Any]:
    return {
        "id": str(posting.id),
        "number": posting.number,
        "flower": str(posting.flower_id),
        "date": posting.date.isoformat(),
        "slot": posting.slot,
        "rate": format_money(posting.rate_minor),
        "posted_by": posting.posted_by,
        "posted_at": posting.posted_at.isoformat(),
    }


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
                    "history": [rate_posting_view(posting) for posting in history],
                }
            )
    return results
