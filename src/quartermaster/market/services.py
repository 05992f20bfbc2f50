"""Command handlers for the market: flower types, market settings, farmers and rate postings
(the back office's writes, made online by an admin: `syncable = False`); advances and
settlements. Daily entries are `market.recording`; the journal postings `market.ledger`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core.commands import Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.identity.models import Role, User
from quartermaster.market import invariants, recording
from quartermaster.market.invariants import FeeKind, FlowerUnit, Language
from quartermaster.market.models import Farmer, Flower, MarketSettings, RatePosting
from quartermaster.market.selectors import (
    CurrentSettings,
    current_settings,
    farmer_view,
    flower_view,
    get_flower,
    rate_posting_view,
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
        return Outcome(201, view, [Change("market.flower", view["id"], None, view)])


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
        return Outcome(201, view, [Change("market.farmer", view["id"], None, view, farmer.version)])


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

    def load(self, ctx: Context) -> tuple[dict[str, Any], int]:
        farmer = Farmer.objects.select_for_update().filter(pk=self.id).first()
        if farmer is None:
            raise NotFound()
        return farmer_view(farmer), farmer.version

    def apply(self, ctx: Context, before: dict[str, Any]) -> Outcome:
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
            200, after, [Change("market.farmer", after["id"], before, after, farmer.version)]
        )


class PostRate(Command):
    """Post a flower's rate for a slot from a date on. Every posting is kept."""

    name = "market.rate.post"
    syncable: ClassVar[bool] = False
    model_config = WIRE_NAMES
    flower: UUID
    rate_date: str = Field(alias="date")
    slot: str
    rate: str

    def validated(self) -> PostRate:
        invariants.clean_date(self.rate_date)
        invariants.clean_money(self.rate, "rate", positive=True)
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
            rate_minor=invariants.clean_money(self.rate, "rate", positive=True),
            posted_by=ctx.actor.username,
        )
        # The entries of this flower and slot that waited for a rate get it now, audited.
        priced = recording.price_awaiting(posting, flower.unit)
        view = {**rate_posting_view(posting), "priced_entries": len(priced)}
        return Outcome(201, view, [Change("market.rate", view["id"], None, view), *priced])
