"""Gap-free number series. The counter row is locked and bumped inside the command's transaction,
so a rolled-back command gives its number back and concurrent commands queue on the row."""

from __future__ import annotations

from django.db.models import F

from quartermaster.core.models import NumberSeries


def next_number(series: str, *, width: int = 6) -> str:
    """`next_number("TRX")` → `"TRX-000042"`. Must run inside a transaction."""
    NumberSeries.objects.bulk_create([NumberSeries(name=series)], ignore_conflicts=True)
    NumberSeries.objects.filter(name=series).update(last_value=F("last_value") + 1)
    # Our UPDATE holds the row lock until commit, so this read sees our own increment.
    value = NumberSeries.objects.filter(name=series).values_list("last_value", flat=True).get()
    return f"{series}-{value:0{width}d}"
