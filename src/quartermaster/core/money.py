"""Money is integer minor units inside, a decimal string at the edge. Never float."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

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
