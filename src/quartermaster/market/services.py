"""Command handlers for the market: flower types, market settings, farmers and rate postings
(the back office's writes, made online by an admin: `syncable = False`); advances and
settlements. Daily entries are `market.recording`; the journal postings `market.ledger`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, ClassVar
from uuid import UUID, uuid4

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import Conflict, Invalid, NotFound
from quartermaster.core.money import PositiveMoney, format_money
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome, Record
from quartermaster.identity.models import Role, User
from quartermaster.market import invariants, ledger, recording
from quartermaster.market.invariants import EntryStatus, FeeKind, FlowerUnit, Language
from quartermaster.market.models import (
    Advance,
    Entry,
    Farmer,
    Flower,
    MarketSettings,
    RatePosting,
    Settlement,
    SettlementStatus,
)
from quartermaster.market.notices import FarmerEvent, enqueue_farmer_notification
from quartermaster.market.selectors import (
    CurrentSettings,
    SettlementView,
    advance_view,
    current_settings,
    entry_view,
    farmer_balances,
    farmer_view,
    flower_view,
    get_flower,
    rate_posting_view,
    settlement_view,
)

# Wire names that collide with `Command.name` (or with a type's name) are aliases.
WIRE_NAMES = ConfigDict(validate_by_name=True, validate_by_alias=True)


class CreateFlower(Command):
    name = "market.flower.create"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    code: str
    flower_name: str = Field(alias="name")
    name_ta: str
    unit: str

    def validated(self) -> CreateFlower:
        return self.model_copy(
            update={
                "code": invariants.clean_code(self.code),
                "flower_name": invariants.clean_text(self.flower_name, "name"),
                "name_ta": invariants.clean_text(self.name_ta, "name_ta"),
                "unit": invariants.clean_choice(self.unit, "unit", FlowerUnit),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        if Flower.objects.filter(code=self.code).exists():
            raise Invalid.field("code", "already exists")
        try:
            with transaction.atomic():
                flower = Flower.objects.create(
                    code=self.code,
                    name=self.flower_name,
                    name_ta=self.name_ta,
                    unit=self.unit,
                    created_by=ctx.actor.username,
                )
        except IntegrityError as exc:  # a concurrent create won the code
            raise Invalid.field("code", "already exists") from exc
        view = flower_view(flower)
        return Outcome(201, view, [Change("market.flower", str(view.id), None, view)])


class SlotIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    starts: str
    ends: str


class FeeIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str
    name: str
    name_ta: str
    kind: str
    value: int | str


class UpdateSettings(Command):
    """Replace the market's settings with a new version; earlier versions stay as they were."""

    name = "market.settings.update"
    syncable: ClassVar[bool] = False
    timezone: str
    slots: tuple[SlotIn, ...]
    commission_bp: int
    fees: tuple[FeeIn, ...] = ()

    def validated(self) -> UpdateSettings:
        invariants.clean_timezone(self.timezone)
        invariants.clean_slots([(slot.code, slot.starts, slot.ends) for slot in self.slots])
        invariants.clean_basis_points(self.commission_bp, "commission_bp")
        fees = invariants.clean_fees(
            [(fee.code, fee.name, fee.name_ta, fee.kind, fee.value) for fee in self.fees]
        )
        return self.model_copy(
            update={
                "slots": tuple(
                    SlotIn(code=slot.code.strip(), starts=slot.starts, ends=slot.ends)
                    for slot in self.slots
                ),
                "fees": tuple(
                    FeeIn(
                        code=fee.code,
                        name=fee.name,
                        name_ta=fee.name_ta,
                        kind=fee.kind,
                        value=fee.value if fee.kind == FeeKind.PERCENT_BP else fee.wire_value(),
                    )
                    for fee in fees
                ),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        before = current_settings().view()
        # The series serialises concurrent changes; the defaults are version 1, never stored.
        version = int(next_number("MKS").rsplit("-", 1)[1]) + 1
        fees = invariants.clean_fees(
            [(fee.code, fee.name, fee.name_ta, fee.kind, fee.value) for fee in self.fees]
        )
        row = MarketSettings.objects.create(
            version=version,
            timezone=self.timezone,
            slots=[slot.model_dump() for slot in self.slots],
            commission_bp=self.commission_bp,
            fees=[
                {
                    "code": fee.code,
                    "name": fee.name,
                    "name_ta": fee.name_ta,
                    "kind": fee.kind,
                    "value": fee.value,
                }
                for fee in fees
            ],
            created_by=ctx.actor.username,
        )
        after = CurrentSettings(row).view()
        return Outcome(200, after, [Change("market.settings", "market", before, after, version)])


def _party_user(user_id: UUID | None, farmer_id: UUID | None = None) -> User | None:
    """The party user a farmer signs in as: must exist, be of role party and be no other
    farmer's."""
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise Invalid.field("user", "unknown user")
    if user.role != Role.PARTY:
        raise Invalid.field("user", "must be a user of role party")
    taken = Farmer.objects.filter(user_id=user_id)
    if farmer_id is not None:
        taken = taken.exclude(pk=farmer_id)
    if taken.exists():
        raise Invalid.field("user", "already linked to another farmer")
    return user


class CreateFarmer(Command):
    name = "market.farmer.create"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    farmer_name: str = Field(alias="name")
    name_ta: str = ""
    phone: str
    whatsapp: str = ""
    language: str
    village: str = ""
    commission_bp: int | None = None
    user: UUID | None = None

    def validated(self) -> CreateFarmer:
        if self.commission_bp is not None:
            invariants.clean_basis_points(self.commission_bp, "commission_bp")
        return self.model_copy(
            update={
                "farmer_name": invariants.clean_text(self.farmer_name, "name"),
                "name_ta": invariants.clean_text(self.name_ta, "name_ta", required=False),
                "phone": invariants.clean_phone(self.phone),
                "whatsapp": invariants.clean_optional_phone(self.whatsapp, "whatsapp"),
                "language": invariants.clean_choice(self.language, "language", Language),
                "village": invariants.clean_text(self.village, "village", required=False),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        user = _party_user(self.user)
        try:
            with transaction.atomic():
                farmer = Farmer.objects.create(
                    number=next_number("FMR"),
                    name=self.farmer_name,
                    name_ta=self.name_ta,
                    phone=self.phone,
                    whatsapp=self.whatsapp,
                    language=self.language,
                    village=self.village,
                    commission_bp=self.commission_bp,
                    user=user,
                    created_by=ctx.actor.username,
                )
        except IntegrityError as exc:  # a concurrent create linked the same user
            raise Invalid.field("user", "already linked to another farmer") from exc
        view = farmer_view(farmer)
        return Outcome(
            201, view, [Change("market.farmer", str(view.id), None, view, farmer.version)]
        )


class UpdateFarmer(VersionedUpdate):
    """Edit a farmer; `base_version` (or If-Match) makes a stale write a 409 conflict. An empty
    string clears an optional text field."""

    name = "market.farmer.update"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    entity: ClassVar[str] = "market.farmer"
    editable: ClassVar[tuple[str, ...]] = (
        "name",
        "name_ta",
        "phone",
        "whatsapp",
        "language",
        "village",
        "commission_bp",
        "user",
    )
    farmer_name: str | None = Field(default=None, alias="name")
    name_ta: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    language: str | None = None
    village: str | None = None
    commission_bp: int | None = None
    user: UUID | None = None

    def validated(self) -> UpdateFarmer:
        super().validated()
        if self.commission_bp is not None:
            invariants.clean_basis_points(self.commission_bp, "commission_bp")
        cleaners: dict[str, Callable[[Any], str]] = {
            "farmer_name": lambda v: invariants.clean_text(v, "name"),
            "name_ta": lambda v: invariants.clean_text(v, "name_ta", required=False),
            "phone": invariants.clean_phone,
            "whatsapp": lambda v: invariants.clean_optional_phone(v, "whatsapp"),
            "language": lambda v: invariants.clean_choice(v, "language", Language),
            "village": lambda v: invariants.clean_text(v, "village", required=False),
        }
        return self.model_copy(
            update={
                field: clean(getattr(self, field))
                for field, clean in cleaners.items()
                if getattr(self, field) is not None
            }
        )

    def proposed(self) -> dict[str, Any]:
        fields = {
            "name": self.farmer_name,
            "name_ta": self.name_ta,
            "phone": self.phone,
            "whatsapp": self.whatsapp,
            "language": self.language,
            "village": self.village,
            "commission_bp": self.commission_bp,
            "user": None if self.user is None else str(self.user),
        }
        return {key: value for key, value in fields.items() if value is not None}

    def load(self, ctx: Context) -> tuple[Record, int]:
        farmer = Farmer.objects.select_for_update().filter(pk=self.id).first()
        if farmer is None:
            raise NotFound()
        return farmer_view(farmer), farmer.version

    def apply(self, ctx: Context, before: Record) -> Outcome:
        values: dict[str, Any] = {"version": F("version") + 1}
        for field, column in (
            ("farmer_name", "name"),
            ("name_ta", "name_ta"),
            ("phone", "phone"),
            ("whatsapp", "whatsapp"),
            ("language", "language"),
            ("village", "village"),
            ("commission_bp", "commission_bp"),
        ):
            if getattr(self, field) is not None:
                values[column] = getattr(self, field)
        if self.user is not None:
            values["user"] = _party_user(self.user, self.id)
        try:
            with transaction.atomic():
                Farmer.objects.filter(pk=self.id).update(**values)
        except IntegrityError as exc:  # a concurrent write linked the same user
            raise Invalid.field("user", "already linked to another farmer") from exc
        farmer = Farmer.objects.get(pk=self.id)
        after = farmer_view(farmer)
        return Outcome(
            200, after, [Change("market.farmer", str(after.id), before, after, farmer.version)]
        )


class PostRate(Command):
    """Post a flower's rate for a slot from a date on. Every posting is kept."""

    name = "market.rate.post"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    flower: UUID
    rate_date: str = Field(alias="date")
    slot: str
    rate_minor: PositiveMoney = Field(alias="rate")

    def validated(self) -> PostRate:
        invariants.clean_date(self.rate_date)
        invariants.check_ceiling(self.rate_minor, "rate")
        return self.model_copy(update={"slot": invariants.clean_code(self.slot, "slot")})

    def handle(self, ctx: Context) -> Outcome:
        flower = get_flower(self.flower)
        if flower is None:
            raise Invalid.field("flower", "unknown flower")
        if self.slot not in {slot.code for slot in current_settings().slots}:
            raise Invalid.field("slot", "not a slot of the market's settings")
        posting = RatePosting.objects.create(
            number=next_number("RAT", width=9),
            flower=flower,
            date=invariants.clean_date(self.rate_date),
            slot=self.slot,
            rate_minor=self.rate_minor,
            posted_by=ctx.actor.username,
        )
        # The entries of this flower and slot that waited for a rate get it now, audited.
        priced = recording.price_awaiting(posting, flower.unit)
        view = rate_posting_view(posting).with_priced_entries(len(priced))
        return Outcome(201, view, [Change("market.rate", str(view.id), None, view), *priced])


# -- advances --

PAYMENT_METHODS = tuple(ledger.METHOD_ACCOUNTS)


def _clean_method(method: Any) -> str:
    if not isinstance(method, str) or method not in PAYMENT_METHODS:
        raise Invalid.field("method", f"one of {', '.join(PAYMENT_METHODS)}")
    return method


class RecordAdvance(Command):
    """Cash (or a transfer) given to a farmer ahead of their flowers, posted to the journal in
    the same transaction; settlements recover it."""

    name = "market.advance.record"
    farmer: UUID
    amount_minor: PositiveMoney = Field(alias="amount")
    method: str
    note: str = ""
    client_temp_id: str = Field(default="", max_length=100)

    def validated(self) -> RecordAdvance:
        invariants.check_ceiling(self.amount_minor, "amount")
        return self.model_copy(
            update={
                "method": _clean_method(self.method),
                "note": invariants.clean_text(self.note, "note", required=False),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        farmer = Farmer.objects.filter(pk=self.farmer).first()
        if farmer is None:
            raise Invalid.field("farmer", "unknown farmer")
        amount = self.amount_minor
        advance_id = uuid4()
        posted = ledger.post_advance(
            advance_id=advance_id,
            farmer_number=farmer.number,
            amount_minor=amount,
            method=self.method,
            ctx=ctx,
        )
        advance = Advance.objects.create(
            id=advance_id,
            number=next_number("ADV"),
            farmer=farmer,
            amount_minor=amount,
            method=self.method,
            note=self.note,
            journal_entry_id=posted.view.id,
            created_by=ctx.actor.username,
            client_temp_id=self.client_temp_id,
        )
        notice = enqueue_farmer_notification(
            event=FarmerEvent.ADVANCE_RECORDED, farmer_id=farmer.pk, subject_id=str(advance.pk)
        )
        view = advance_view(advance)
        outstanding, _ = farmer_balances([farmer.number])[farmer.number]
        body = {**view.wire, "advance_outstanding": format_money(outstanding)}
        return Outcome(
            201,
            body,
            [Change("market.advance", str(view.id), None, view), *posted.changes, *notice],
        )


# -- settlements --

MAX_PERIOD_DAYS = 366
SETTLEMENT = "market.settlement"


class InvalidState(Conflict):
    code = "invalid_state"


class GenerateSettlement(Command):
    """A farmer's settlement for a period: their open (priced, unsettled) entries of the
    period's market days are locked to it; the arithmetic is `invariants.settlement_totals`;
    the journal recognises it at once (`market.ledger`). Entries still awaiting a rate stay
    out (counted in `awaiting_rate_entries`) for a later settlement."""

    name = "market.settlement.generate"
    syncable: ClassVar[bool] = False
    farmer: UUID
    period_from: str
    period_to: str

    def validated(self) -> GenerateSettlement:
        first, last = self.period()
        if first > last:
            raise Invalid.field("period_to", "must not be before period_from")
        if (last - first).days >= MAX_PERIOD_DAYS:
            raise Invalid.field("period_to", f"a period is at most {MAX_PERIOD_DAYS} days")
        return self

    def period(self) -> tuple[date, date]:
        return (
            invariants.clean_date(self.period_from, "period_from"),
            invariants.clean_date(self.period_to, "period_to"),
        )

    def handle(self, ctx: Context) -> Outcome:
        # The farmer's row serialises their settlements: each reads the advances outstanding
        # after the one before it recovered what it could.
        farmer = Farmer.objects.select_for_update(no_key=True).filter(pk=self.farmer).first()
        if farmer is None:
            raise Invalid.field("farmer", "unknown farmer")
        first, last = self.period()
        in_period = Entry.objects.filter(farmer=farmer, market_day__range=(first, last))
        entries = list(
            in_period.filter(status=EntryStatus.OPEN)
            .select_related("flower")
            .select_for_update(of=("self",), no_key=True)
            .order_by("seq")
        )
        if not entries:
            raise Invalid.field("period_to", "no open entry of this farmer in the period")
        settings = current_settings()
        totals = _totals(farmer, entries, settings)
        settlement = _new_settlement(farmer, first, last, entries, totals, settings, ctx)
        changes = _lock_entries(settlement, entries)
        posted = ledger.post_settlement(
            settlement_id=settlement.pk,
            settlement_number=settlement.number,
            farmer_number=farmer.number,
            totals=totals,
            ctx=ctx,
        )
        if posted is not None:
            settlement.posted_entry_id = posted.view.id
            settlement.save(update_fields=["posted_entry_id"])
            changes.extend(posted.changes)
        changes += enqueue_farmer_notification(
            event=FarmerEvent.SETTLEMENT_GENERATED,
            farmer_id=farmer.pk,
            subject_id=str(settlement.pk),
        )
        view = settlement_view(settlement)
        waiting = in_period.filter(status=EntryStatus.AWAITING_RATE).count()
        body = {**view.wire, "awaiting_rate_entries": waiting}
        return Outcome(201, body, [Change(SETTLEMENT, str(view.id), None, view, 1), *changes])


def _totals(
    farmer: Farmer, entries: list[Entry], settings: CurrentSettings
) -> invariants.SettlementTotals:
    commission_bp = settings.commission_bp if farmer.commission_bp is None else farmer.commission_bp
    outstanding, _ = farmer_balances([farmer.number])[farmer.number]
    return invariants.settlement_totals(
        gross=sum(entry.gross_minor or 0 for entry in entries),
        commission_bp=commission_bp,
        fees=settings.fees,
        kg_grams=sum(e.qty_base for e in entries if e.flower.unit == FlowerUnit.KG),
        counted_units=sum(e.qty_base for e in entries if e.flower.unit != FlowerUnit.KG),
        entries=len(entries),
        advance_outstanding=max(outstanding, 0),
    )


def _new_settlement(
    farmer: Farmer,
    first: date,
    last: date,
    entries: list[Entry],
    totals: invariants.SettlementTotals,
    settings: CurrentSettings,
    ctx: Context,
) -> Settlement:
    return Settlement.objects.create(
        number=next_number("STL"),
        farmer=farmer,
        period_from=first,
        period_to=last,
        status=SettlementStatus.DRAFT,
        entry_count=len(entries),
        gross_minor=totals.gross_minor,
        commission_bp=settings.commission_bp
        if farmer.commission_bp is None
        else farmer.commission_bp,
        commission_minor=totals.commission_minor,
        fees=[{"code": code, "amount_minor": amount} for code, amount in totals.fees_minor],
        advance_recovered_minor=totals.advance_recovered_minor,
        net_minor=totals.net_minor,
        created_by=ctx.actor.username,
    )


def _move_entries(entries: list[Entry], status: str, settlement: Settlement | None) -> list[Change]:
    """Set the entries' status and settlement (their rows are held), each an audited change."""
    changes = []
    for entry in entries:
        before = entry_view(entry)
        entry.status = status
        entry.settlement = settlement
        entry.version += 1
        after = entry_view(entry)
        changes.append(Change(recording.ENTITY, str(after.id), before, after, entry.version))
    Entry.objects.bulk_update(entries, ["status", "settlement", "version"], batch_size=500)
    recording.keep_versions(entries)
    return changes


def _lock_entries(settlement: Settlement, entries: list[Entry]) -> list[Change]:
    return _move_entries(entries, EntryStatus.SETTLED, settlement)


def _locked_settlement(ctx: Context, action: str, settlement_id: UUID) -> Settlement:
    """The settlement, its row held; 404 if none (or, for a farmer, not theirs)."""
    settlement = (
        Settlement.objects.select_for_update(of=("self",), no_key=True)
        .select_related("farmer")
        .filter(pk=settlement_id)
        .first()
    )
    if settlement is None:
        raise NotFound()
    policy.authorize(ctx.actor, action, owner_id=settlement.farmer.user_id)
    return settlement


def _require(settlement: Settlement, *states: str) -> None:
    if settlement.status not in states:
        raise InvalidState(
            f"settlement {settlement.number} is {settlement.status}, not {' or '.join(states)}"
        )


def _saved(settlement: Settlement, before: SettlementView, fields: list[str]) -> Change:
    settlement.version += 1
    settlement.save(update_fields=[*fields, "version"])
    after = settlement_view(settlement, with_entries=False)
    return Change(SETTLEMENT, str(after.id), before, after, settlement.version)


class ApproveSettlement(Command):
    """A draft becomes approved: by an admin, a clerk, or the farmer it belongs to."""

    name = "market.settlement.approve"
    id: UUID

    def handle(self, ctx: Context) -> Outcome:
        settlement = _locked_settlement(ctx, self.name, self.id)
        _require(settlement, SettlementStatus.DRAFT)
        before = settlement_view(settlement, with_entries=False)
        settlement.status = SettlementStatus.APPROVED
        settlement.approved_by = ctx.actor.username
        settlement.approved_at = timezone.now()
        change = _saved(settlement, before, ["status", "approved_by", "approved_at"])
        notice = enqueue_farmer_notification(
            event=FarmerEvent.SETTLEMENT_APPROVED,
            farmer_id=settlement.farmer_id,
            subject_id=str(settlement.pk),
        )
        return Outcome(200, settlement_view(settlement), [change, *notice])


class PaySettlement(Command):
    """Pay an approved settlement's net to the farmer: the cash movement posts to the journal."""

    name = "market.settlement.pay"
    syncable: ClassVar[bool] = False
    id: UUID
    method: str

    def validated(self) -> PaySettlement:
        return self.model_copy(update={"method": _clean_method(self.method)})

    def handle(self, ctx: Context) -> Outcome:
        settlement = _locked_settlement(ctx, self.name, self.id)
        _require(settlement, SettlementStatus.APPROVED)
        before = settlement_view(settlement, with_entries=False)
        posted = ledger.post_payment(
            settlement_id=settlement.pk,
            settlement_number=settlement.number,
            farmer_number=settlement.farmer.number,
            net_minor=settlement.net_minor,
            method=self.method,
            ctx=ctx,
        )
        settlement.status = SettlementStatus.PAID
        settlement.payment_method = self.method
        settlement.payment_entry_id = posted.view.id if posted else None
        settlement.paid_by = ctx.actor.username
        settlement.paid_at = timezone.now()
        change = _saved(
            settlement,
            before,
            ["status", "payment_method", "payment_entry_id", "paid_by", "paid_at"],
        )
        notice = enqueue_farmer_notification(
            event=FarmerEvent.SETTLEMENT_PAID,
            farmer_id=settlement.farmer_id,
            subject_id=str(settlement.pk),
        )
        changes = [change, *(posted.changes if posted else []), *notice]
        return Outcome(200, settlement_view(settlement), changes)


class CancelSettlement(Command):
    """Cancel a draft or approved settlement: its journal entry is reversed and its entries are
    open again. A paid one is corrected only by a reversing settlement (409 here)."""

    name = "market.settlement.cancel"
    syncable: ClassVar[bool] = False
    id: UUID
    reason: str

    def validated(self) -> CancelSettlement:
        return self.model_copy(update={"reason": invariants.clean_text(self.reason, "reason")})

    def handle(self, ctx: Context) -> Outcome:
        settlement = _locked_settlement(ctx, self.name, self.id)
        _require(settlement, SettlementStatus.DRAFT, SettlementStatus.APPROVED)
        before = settlement_view(settlement, with_entries=False)
        changes: list[Change] = []
        if settlement.posted_entry_id is not None:
            reversal = ledger.reverse_settlement(
                entry_id=settlement.posted_entry_id, reason=self.reason, ctx=ctx
            )
            settlement.reversal_entry_id = reversal.view.id
            changes.extend(reversal.changes)
        entries = list(
            settlement.entries.select_related("flower")
            .select_for_update(of=("self",), no_key=True)
            .order_by("seq")
        )
        changes.extend(_move_entries(entries, EntryStatus.OPEN, None))
        settlement.status = SettlementStatus.CANCELLED
        settlement.cancel_reason = self.reason
        settlement.cancelled_by = ctx.actor.username
        settlement.cancelled_at = timezone.now()
        change = _saved(
            settlement,
            before,
            ["status", "cancel_reason", "reversal_entry_id", "cancelled_by", "cancelled_at"],
        )
        return Outcome(200, settlement_view(settlement), [change, *changes])
