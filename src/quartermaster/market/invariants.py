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
