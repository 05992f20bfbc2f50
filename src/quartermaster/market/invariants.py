"""Pure market rules: cleaning of names, codes and phone numbers; market settings (timezone,
time slots, commission, fees); rates. No database access.

Default slots are coded `s1`, `s2`, `s3` (04:00-06:00, 06:00-08:00, 08:00-10:00 in the market's
timezone): short, stable codes that devices carry, with the times as the human meaning.
"""

from __future__ import annotations

import re
import unicodedata
import zoneinfo
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from django.db import models

from quartermaster.core.errors import Invalid
from quartermaster.core.money import format_money, parse_money

MAX_NAME_LENGTH = 200
MAX_CODE_LENGTH = 30
BASIS_POINTS = 10_000
MAX_SLOTS = 24
MAX_FEES = 20
# A rate or fee is at most a hundred crore rupees: sums over a settlement stay inside 64 bits.
MAX_AMOUNT_MINOR = 10**11

CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
PHONE = re.compile(r"\+?[0-9]{8,15}")
HOUR_MINUTE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
# Zero-width characters that are not in category Cf (which is refused as a whole).
ZERO_WIDTH = frozenset({"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"})


class FlowerUnit(models.TextChoices):
    KG = "kg"
    PIECE = "piece"
    BUNDLE = "bundle"


class Language(models.TextChoices):
    EN = "en"
    TA = "ta"


class FeeKind(models.TextChoices):
    PERCENT_BP = "percent_bp"
    PER_UNIT = "per_unit"
    PER_ENTRY = "per_entry"


def clean_text(value: Any, field: str, *, required: bool = True) -> str:
    """Strip, NFC-normalise (a Tamil name typed on two keyboards is one name), and refuse control
    and zero-width characters, which make equal-looking names differ."""
    if not isinstance(value, str):
        raise Invalid.field(field, "must be a string")
    text = unicodedata.normalize("NFC", value.strip())
    if not text:
        if required:
            raise Invalid.field(field, "must not be blank")
        return ""
    if len(text) > MAX_NAME_LENGTH:
        raise Invalid.field(field, f"at most {MAX_NAME_LENGTH} characters")
    for char in text:
        if char in ZERO_WIDTH or unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise Invalid.field(field, "must not contain control or zero-width characters")
    return text


def clean_code(value: Any, field: str = "code") -> str:
    if not isinstance(value, str):
        raise Invalid.field(field, "must be a string")
    code = value.strip()
    if not code or len(code) > MAX_CODE_LENGTH or not CODE.fullmatch(code):
        raise Invalid.field(
            field,
            f"1 to {MAX_CODE_LENGTH} letters, digits, '_' or '-', starting with one of the first two",
        )
    return code


def clean_choice(value: Any, field: str, choices: type[models.TextChoices]) -> str:
    if not isinstance(value, str) or value not in choices.values:
        raise Invalid.field(field, f"one of {', '.join(choices.values)}")
    return value


def clean_phone(value: Any, field: str = "phone") -> str:
    """Digits with an optional leading '+', 8 to 15 digits (E.164 allows at most 15)."""
    if not isinstance(value, str) or not PHONE.fullmatch(value.strip()):
        raise Invalid.field(field, "8 to 15 digits, optionally after a leading '+'")
    return value.strip()


def clean_optional_phone(value: Any, field: str) -> str:
    if isinstance(value, str) and not value.strip():
        return ""
    return clean_phone(value, field)


def clean_basis_points(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BASIS_POINTS:
        raise Invalid.field(field, f"an integer from 0 to {BASIS_POINTS} (basis points)")
    return value


def clean_money(value: Any, field: str, *, positive: bool) -> int:
    try:
        minor = parse_money(value)
    except ValueError as exc:
        raise Invalid.field(field, str(exc)) from exc
    if minor < 0 or (positive and minor == 0):
        raise Invalid.field(field, "must be greater than 0" if positive else "must not be negative")
    if minor > MAX_AMOUNT_MINOR:
        raise Invalid.field(field, f"at most {format_money(MAX_AMOUNT_MINOR)}")
    return minor


def check_ceiling(minor: int, field: str) -> int:
    """An amount already parsed from the wire (`core.money`), within what the market holds."""
    if minor > MAX_AMOUNT_MINOR:
        raise Invalid.field(field, f"at most {format_money(MAX_AMOUNT_MINOR)}")
    return minor


def clean_date(value: Any, field: str = "date") -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise Invalid.field(field, "a date such as 2026-01-31")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid.field(field, "a date such as 2026-01-31") from exc


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def clean_timezone(value: Any) -> str:
    if not isinstance(value, str) or value not in _zones():
        raise Invalid.field("timezone", "an IANA time zone such as Asia/Kolkata")
    return value


@dataclass(frozen=True)
class Slot:
    code: str
    starts: str
    ends: str


@dataclass(frozen=True)
class Fee:
    code: str
    name: str
    name_ta: str
    kind: str
    # Basis points for percent_bp; minor units (paise) for per_unit and per_entry.
    value: int

    def wire_value(self) -> int | str:
        return self.value if self.kind == FeeKind.PERCENT_BP else format_money(self.value)


DEFAULT_TIMEZONE = "Asia/Kolkata"
DEFAULT_SLOTS = (
    Slot("s1", "04:00", "06:00"),
    Slot("s2", "06:00", "08:00"),
    Slot("s3", "08:00", "10:00"),
)
DEFAULT_COMMISSION_BP = 1000


def clean_slots(slots: list[tuple[Any, Any, Any]]) -> tuple[Slot, ...]:
    """(code, starts, ends) triples → slots: HH:MM, each starting before it ends (a slot does not
    cross midnight), in order and not overlapping, codes unique."""
    if not 1 <= len(slots) <= MAX_SLOTS:
        raise Invalid.field("slots", f"1 to {MAX_SLOTS} slots")
    cleaned: list[Slot] = []
    for index, (code, starts, ends) in enumerate(slots):
        where = f"slots[{index}]"
        code = clean_code(code, f"{where}.code")
        for name, value in (("starts", starts), ("ends", ends)):
            if not isinstance(value, str) or not HOUR_MINUTE.fullmatch(value):
                raise Invalid.field(f"{where}.{name}", "a time HH:MM from 00:00 to 23:59")
        if starts >= ends:
            raise Invalid.field(f"{where}.ends", "must be after starts")
        if cleaned and starts < cleaned[-1].ends:
            raise Invalid.field(f"{where}.starts", "slots must be in order and must not overlap")
        if any(slot.code == code for slot in cleaned):
            raise Invalid.field(f"{where}.code", "already used by another slot")
        cleaned.append(Slot(code, starts, ends))
    return tuple(cleaned)


def clean_fees(fees: list[tuple[Any, Any, Any, Any, Any]]) -> tuple[Fee, ...]:
    """(code, name, name_ta, kind, value) → fees; a percent_bp value is basis points (0..10000),
    a per_unit or per_entry value a money string ≥ 0."""
    if len(fees) > MAX_FEES:
        raise Invalid.field("fees", f"at most {MAX_FEES} fees")
    cleaned: list[Fee] = []
    for index, (code, name, name_ta, kind, value) in enumerate(fees):
        where = f"fees[{index}]"
        code = clean_code(code, f"{where}.code")
        if any(fee.code == code for fee in cleaned):
            raise Invalid.field(f"{where}.code", "already used by another fee")
        kind = clean_choice(kind, f"{where}.kind", FeeKind)
        if kind == FeeKind.PERCENT_BP:
            amount = clean_basis_points(value, f"{where}.value")
        elif isinstance(value, str):
            amount = clean_money(value, f"{where}.value", positive=False)
        else:
            raise Invalid.field(f"{where}.value", 'a money string such as "2.50"')
        cleaned.append(
            Fee(
                code=code,
                name=clean_text(name, f"{where}.name"),
                name_ta=clean_text(name_ta, f"{where}.name_ta"),
                kind=kind,
                value=amount,
            )
        )
    return tuple(cleaned)


def effective_posting(postings: list[tuple[date, int, Any]], on: date) -> Any | None:
    """The posting in force on `on`: among (date, posting order, posting) with date ≤ `on`, the
    latest date, and on that date the last posted. A posting holds from its date on until a
    later one for the same flower and slot supersedes it. None before the first posting."""
    held = [posting for posting in postings if posting[0] <= on]
    if not held:
        return None
    return max(held, key=lambda posting: (posting[0], posting[1]))[2]


# -- daily entries --

# A delivery's quantity: up to 100 tonnes of a kg flower, ten million pieces or bundles. With a
# rate of at most MAX_AMOUNT_MINOR per unit, a line's gross stays below 10^16 paise.
MAX_KG_GRAMS = 100_000_000
MAX_COUNT = 10_000_000
GRAMS_PER_KG = 1000
KG_QTY = re.compile(r"[0-9]{1,9}(\.[0-9]{1,3})?")


class EntryStatus(models.TextChoices):
    OPEN = "open"
    AWAITING_RATE = "awaiting_rate"
    SETTLED = "settled"
    VOID = "void"


def check_qty_shape(value: Any, field: str = "qty") -> None:
    """What can be checked before the flower's unit is known: a positive integer, or a decimal
    string with at most 3 places (only a kg flower takes the latter; `parse_qty` decides)."""
    if isinstance(value, bool):
        raise Invalid.field(field, 'a decimal string such as "12.500" (kg) or a whole number')
    if isinstance(value, int):
        if not 0 < value <= MAX_COUNT:
            raise Invalid.field(field, f"a whole number from 1 to {MAX_COUNT}")
        return
    if not isinstance(value, str) or not KG_QTY.fullmatch(value):
        raise Invalid.field(field, 'a decimal string with up to 3 places such as "12.500"')


def parse_qty(value: Any, unit: str, field: str = "qty") -> int:
    """The wire quantity in base units: grams for a kg flower (a decimal string, ≤ 3 places),
    a count for a piece or bundle flower (an integer). Always more than 0."""
    check_qty_shape(value, field)
    if unit == FlowerUnit.KG:
        if not isinstance(value, str):
            raise Invalid.field(field, 'a kg flower\'s qty is a decimal string such as "12.500"')
        whole, _, fraction = value.partition(".")
        grams = int(whole) * GRAMS_PER_KG + int((fraction + "000")[:3])
        if not 0 < grams <= MAX_KG_GRAMS:
            raise Invalid.field(field, f"more than 0 and at most {MAX_KG_GRAMS // GRAMS_PER_KG} kg")
        return grams
    if not isinstance(value, int):
        raise Invalid.field(field, f"a {unit} flower's qty is a whole number")
    return value


def format_qty(qty_base: int, unit: str) -> str | int:
    """Base units → the wire: "12.500" for kg, the count for pieces and bundles."""
    if unit == FlowerUnit.KG:
        kg, grams = divmod(abs(qty_base), GRAMS_PER_KG)
        return f"{'-' if qty_base < 0 else ''}{kg}.{grams:03d}"
    return qty_base


def half_up_div(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (away from zero on .5), for numerator ≥ 0."""
    if numerator < 0:
        return -half_up_div(-numerator, denominator)
    return (2 * numerator + denominator) // (2 * denominator)


def gross_minor(qty_base: int, unit: str, rate_minor: int) -> int:
    """qty x rate, rounded half-up to the paisa once: a kg rate is per kg, qty in grams."""
    if unit == FlowerUnit.KG:
        return half_up_div(qty_base * rate_minor, GRAMS_PER_KG)
    return qty_base * rate_minor


def slot_of(local_time: str, slots: tuple[Slot, ...]) -> str:
    """The slot a local arrival time ("HH:MM") belongs to: the slot that holds it, else the
    last slot that began before it (a farmer after the last slot, or in a gap, sells with the
    slot before), else the first slot (before the market opens, the first slot's rate).
    An entry is never refused for its time: it was recorded offline and cannot be re-sent."""
    chosen = slots[0]
    for slot in slots:
        if slot.starts <= local_time:
            chosen = slot
    return chosen.code


# -- settlements --

# A settlement's gross and each of its charges fit a journal line (journal.invariants).
MAX_SETTLEMENT_MINOR = 10**15


@dataclass(frozen=True)
class SettlementTotals:
    """The settlement arithmetic pinned in API.md, in paise."""

    gross_minor: int
    commission_minor: int
    fees_minor: tuple[tuple[str, int], ...]
    advance_recovered_minor: int
    net_minor: int

    @property
    def fees_total_minor(self) -> int:
        return sum(amount for _, amount in self.fees_minor)


def settlement_totals(
    *,
    gross: int,
    commission_bp: int,
    fees: tuple[Fee, ...],
    kg_grams: int,
    counted_units: int,
    entries: int,
    advance_outstanding: int,
) -> SettlementTotals:
    """gross = sum of entries' gross; commission = gross x bp; a percent_bp fee = gross x value, a
    per_unit fee = total qty x value (kg in kg, pieces and bundles counted), a per_entry fee =
    entries x value; each amount rounded half-up once. advance_recovered = min(outstanding,
    what is left after commission and fees, never below 0); net is the rest."""
    commission = half_up_div(gross * commission_bp, BASIS_POINTS)
    amounts: list[tuple[str, int]] = []
    for fee in fees:
        if fee.kind == FeeKind.PERCENT_BP:
            amount = half_up_div(gross * fee.value, BASIS_POINTS)
        elif fee.kind == FeeKind.PER_UNIT:
            amount = half_up_div(
                (kg_grams + counted_units * GRAMS_PER_KG) * fee.value, GRAMS_PER_KG
            )
        else:
            amount = entries * fee.value
        amounts.append((fee.code, amount))
    if max([gross, *(amount for _, amount in amounts)]) > MAX_SETTLEMENT_MINOR:
        raise Invalid.field("period_to", "the period's amounts are too large: settle a shorter one")
    left = gross - commission - sum(amount for _, amount in amounts)
    recovered = max(0, min(advance_outstanding, left))
    return SettlementTotals(gross, commission, tuple(amounts), recovered, left - recovered)
