"""Gap-free number series. The counter row is bumped inside the command's transaction, so a
rolled-back command gives its number back and concurrent commands queue on the row."""

from __future__ import annotations

from django.db import connection

# One statement, the same on SQLite (3.35+) and PostgreSQL: create the series at 1 or bump it,
# and read the value back while our row lock is held. Table: core.models.NumberSeries.
_NEXT_VALUE_SQL = (
    "INSERT INTO core_numberseries (name, last_value) VALUES (%s, 1) "
    "ON CONFLICT (name) DO UPDATE SET last_value = core_numberseries.last_value + 1 "
    "RETURNING last_value"
)


def next_number(series: str, *, width: int = 6) -> str:
    """`next_number("TRX")` → `"TRX-000042"`. Must run inside a transaction."""
    with connection.cursor() as cursor:
        cursor.execute(_NEXT_VALUE_SQL, [series])
        (value,) = cursor.fetchone()
    return f"{series}-{value:0{width}d}"
