"""Gap-free number series. The counter row is bumped inside the command's transaction, so a
rolled-back command gives its number back and concurrent commands queue on the row."""

from __future__ import annotations

from django.db import connection

# One statement, the same on SQLite (3.35+) and PostgreSQL: create the series at `count` or bump
# it by `count`, and read the last value back while our row lock is held.
# Table: core.models.NumberSeries.
_TAKE_VALUES_SQL = (
    "INSERT INTO core_numberseries (name, last_value) VALUES (%s, %s) "
    "ON CONFLICT (name) DO UPDATE SET last_value = core_numberseries.last_value + %s "
    "RETURNING last_value"
)


def next_number(series: str, *, width: int = 6) -> str:
    """`next_number("TRX")` → `"TRX-000042"`. Must run inside a transaction."""
    return next_numbers(series, 1, width=width)[0]


def next_numbers(series: str, count: int, *, width: int = 6) -> list[str]:
    """The next `count` numbers of `series`, in order, taken in one statement."""
    if count <= 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_TAKE_VALUES_SQL, [series, count, count])
        (last,) = cursor.fetchone()
    return [f"{series}-{value:0{width}d}" for value in range(last - count + 1, last + 1)]
