"""Money is integer minor units inside, a decimal string at the edge. Never float."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, ValidationInfo
from pydantic_core import PydanticCustomError

MINOR_UNITS_PER_MAJOR = 100
# Far above any real invoice, far below the 64-bit columns money is stored in.
MAX_MINOR_UNITS = 10**17


# ASCII digits only: Decimal() also takes "1e3", "1_000", Arabic-Indic and fullwidth digits,
# and "1e999999999"
# (which costs it seconds to multiply out). 18 integer digits is far above MAX_MINOR_UNITS.
_PLAIN_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]+)?")


def parse_money(text: str) -> int:
    """`"12.50"` → 1250. Raises ValueError for anything that is not a plain decimal with ≤ 2 places."""
    if not isinstance(text, str) or not _PLAIN_DECIMAL.fullmatch(text.strip()):
        raise ValueError('must be a decimal string such as "12.50"')
    try:
        amount = Decimal(text.strip())
    except InvalidOperation as exc:  # unreachable after the pattern; kept as the last guard
        raise ValueError('must be a decimal string such as "12.50"') from exc
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise ValueError("at most 2 decimal places")
    minor = int(amount * MINOR_UNITS_PER_MAJOR)
    if abs(minor) > MAX_MINOR_UNITS:
        raise ValueError("amount is too large")
    return minor


def format_money(minor_units: int) -> str:
    """1250 → `"12.50"`; -5 → `"-0.05"`. Integer arithmetic: exact, and cheap enough for the
    views of a whole sync batch."""
    major, minor = divmod(abs(int(minor_units)), MINOR_UNITS_PER_MAJOR)
    return f"{'-' if minor_units < 0 else ''}{major}.{minor:02d}"


def _format_optional(minor_units: int | None) -> str | None:
    return None if minor_units is None else format_money(minor_units)


def _wire_money(
    minimum_minor: int, below_minimum: str
) -> Callable[[Any, ValidationInfo], int | None]:
    def parse(value: Any, info: ValidationInfo) -> int | None:
        if value is None:  # only a field typed `... | None` is answered None; others refuse it
            return None
        if info.mode == "python" and type(value) is int:
            minor = value  # built in code from minor units (a JSON payload never takes this branch)
        elif isinstance(value, str):
            try:
                minor = parse_money(value)
            except ValueError as exc:
                raise PydanticCustomError("money", str(exc)) from exc
        else:  # from JSON, an integer would be ambiguous (rupees or paise?)
            raise PydanticCustomError("money", 'must be a decimal string such as "12.50"')
        if abs(minor) > MAX_MINOR_UNITS:
            raise PydanticCustomError("money", "amount is too large")
        if minor < minimum_minor:
            raise PydanticCustomError("money", below_minimum)
        return minor

    return parse


# Typed money for commands: the wire's decimal string is parsed once, where the command is
# built (REST or sync alike), into integer minor units the handler uses as they are; dumped as
# JSON it is the wire's string again, so a command's fingerprint is the same as its request's.
Money = Annotated[
    int,
    BeforeValidator(_wire_money(0, "must be 0 or more")),
    PlainSerializer(format_money, return_type=str, when_used="json"),
]
PositiveMoney = Annotated[
    int,
    BeforeValidator(_wire_money(1, "must be more than 0")),
    PlainSerializer(format_money, return_type=str, when_used="json"),
]
# An optional edit of an amount (PATCH): absent is None, present is parsed as `Money`.
MoneyEdit = Annotated[
    int | None,
    BeforeValidator(_wire_money(0, "must be 0 or more")),
    PlainSerializer(_format_optional, return_type=str | None, when_used="json"),
]
