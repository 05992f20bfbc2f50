"""The day-end's pure rules: a count against the books, line by line."""

from __future__ import annotations

import uuid
from datetime import date
from zoneinfo import ZoneInfo

import pytest

from quartermaster.core.errors import Invalid
from quartermaster.dayend.invariants import (
    CountedRow,
    StockLine,
    StockRow,
    clean_counted,
    day_bounds,
    local_day_of,
    reconcile_stock,
)

GAS, HOSE = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
KOLKATA = ZoneInfo("Asia/Kolkata")


def test_a_count_is_set_beside_the_books_item_by_item() -> None:
    lines = reconcile_stock(
        [StockRow(GAS, None, 7), StockRow(HOSE, None, 2)],
        [CountedRow(GAS, None, 6, reason="dropped")],
    )

    assert lines == [StockLine(GAS, None, 7, 6, "dropped"), StockLine(HOSE, None, 2, 0)]
    assert [line.difference for line in lines] == [-1, -2]


def test_conditions_are_folded_while_the_books_hold_none() -> None:
    lines = reconcile_stock(
        [StockRow(GAS, None, 7)],
        [CountedRow(GAS, "full", 4), CountedRow(GAS, "empty", 3)],
    )

    assert lines == [StockLine(GAS, None, 7, 7)]


def test_an_item_held_by_condition_is_counted_by_condition() -> None:
    books = [StockRow(GAS, "full", 4), StockRow(GAS, "empty", 3)]

    lines = reconcile_stock(books, [CountedRow(GAS, "full", 4), CountedRow(GAS, "empty", 2)])

    assert lines == [StockLine(GAS, "empty", 3, 2), StockLine(GAS, "full", 4, 4)]
    with pytest.raises(Invalid):
        reconcile_stock(books, [CountedRow(GAS, None, 7)])


@pytest.mark.parametrize(
    "row",
    [
        CountedRow(GAS, None, -1),
        CountedRow(GAS, "half", 1),
        CountedRow(GAS, None, 2, serials=("A1",)),
        CountedRow(GAS, None, 2, serials=("A1", "A1")),
        CountedRow(GAS, None, 1, reason="x" * 501),
    ],
)
def test_a_bad_count_line_is_refused(row: CountedRow) -> None:
    with pytest.raises(Invalid):
        clean_counted([row])


def test_each_item_and_condition_once() -> None:
    with pytest.raises(Invalid):
        clean_counted([CountedRow(GAS, None, 1), CountedRow(GAS, None, 2)])
    assert len(clean_counted([CountedRow(GAS, "full", 1), CountedRow(GAS, "empty", 2)])) == 2


def test_a_capture_time_falls_on_its_local_day() -> None:
    assert local_day_of("2026-12-01T20:00:00Z", KOLKATA) == date(2026, 12, 2)  # 01:30 IST
    assert local_day_of("2026-12-01T10:00:00", KOLKATA) == date(2026, 12, 1)  # no offset: UTC
    assert local_day_of("", KOLKATA) is None
    assert local_day_of("yesterday", KOLKATA) is None
    assert local_day_of("9999-12-31T23:59:59-05:00", KOLKATA) is None
    assert local_day_of("0001-01-01T00:00:00+05:00", ZoneInfo("America/New_York")) is None
    start, end = day_bounds(date(2026, 12, 2), KOLKATA)
    assert (end - start).total_seconds() == 86400
    assert start.isoformat() == "2026-12-02T00:00:00+05:30"
