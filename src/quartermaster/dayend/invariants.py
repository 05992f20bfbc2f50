"""Pure rules of the driver's day-end: what was counted against what the books expect, and
the differences that come of it. No database access.

Stock is keyed by (item, condition). Returnable items carry a condition (full, empty) once
their stock does; until then (and for every other item) the condition is None, and a counted
line's condition is folded into the item's one row. The rule is per item: if the books hold an
item by condition, it is counted by condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from uuid import UUID

from django.db import models

from quartermaster.core.errors import Conflict, Invalid

MAX_LINES = 500
MAX_QTY = 2**62
MAX_REASON_LENGTH = 500
MAX_SERIAL_LENGTH = 100
CONDITIONS = ("full", "empty")
# Payment methods whose money the driver hands in at the day-end, and the journal account
# each sits in until then.
CASH_METHOD, CHEQUE_METHOD = "cash", "cheque"


class DayEndStatus(models.TextChoices):
    OPEN = "open"
    CLOSED = "closed"


class DayClosed(Conflict):
    """The day is closed: its records are locked."""

    code = "day_closed"


class DayEndExists(Conflict):
    code = "day_end_exists"


@dataclass(frozen=True)
class StockRow:
    """Stock of an item at a place, as the ledger has it: `condition` None when the item's stock
    has no condition."""

    item: UUID
    condition: str | None
    qty: int


@dataclass(frozen=True)
class CountedRow:
    """One line of the driver's count; `serials` names the units counted of a serialized item."""

    item: UUID
    condition: str | None
    qty: int
    serials: tuple[str, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class StockLine:
    """An (item, condition) on the day-end: expected by the books, counted by the driver."""

    item: UUID
    condition: str | None
    expected: int
    counted: int
    reason: str = ""

    @property
    def difference(self) -> int:
        """Counted - expected: below 0 is a shortage, above 0 a surplus."""
        return self.counted - self.expected


@dataclass(frozen=True)
class MoneyLine:
    kind: str  # cash | cheques
    expected_minor: int
    counted_minor: int

    @property
    def difference_minor(self) -> int:
        return self.counted_minor - self.expected_minor


def clean_counted(rows: Sequence[CountedRow]) -> tuple[CountedRow, ...]:
    """Each (item, condition) once, quantities 0 or more, reasons and serials bounded."""
    if len(rows) > MAX_LINES:
        raise Invalid.field("counted", f"at most {MAX_LINES} lines")
    seen: set[tuple[UUID, str | None]] = set()
    cleaned = []
    for index, row in enumerate(rows):
        field = f"counted[{index}]"
        if isinstance(row.qty, bool) or not 0 <= row.qty <= MAX_QTY:
            raise Invalid.field(f"{field}.qty", "a whole number, 0 or more")
        if row.condition is not None and row.condition not in CONDITIONS:
            raise Invalid.field(f"{field}.condition", f"one of {', '.join(CONDITIONS)}")
        key = (row.item, row.condition)
        if key in seen:
            raise Invalid.field(f"{field}.item", "each item (and condition) once per count")
        seen.add(key)
        reason = row.reason.strip()
        if len(reason) > MAX_REASON_LENGTH or "\x00" in reason:
            raise Invalid.field(f"{field}.reason", f"at most {MAX_REASON_LENGTH} characters")
        serials = tuple(serial.strip() for serial in row.serials)
        if any(not s or len(s) > MAX_SERIAL_LENGTH or "\x00" in s for s in serials):
            raise Invalid.field(
                f"{field}.serials", f"serials of 1 to {MAX_SERIAL_LENGTH} characters"
            )
        if len(set(serials)) != len(serials):
            raise Invalid.field(f"{field}.serials", "each serial once")
        if serials and len(serials) != row.qty:
            raise Invalid.field(f"{field}.serials", "as many serials as the quantity counted")
        cleaned.append(CountedRow(row.item, row.condition, row.qty, serials, reason))
    return tuple(cleaned)


def reconcile_stock(expected: Sequence[StockRow], counted: Sequence[CountedRow]) -> list[StockLine]:
    """Every (item, condition) the books or the count name, expected beside counted, in item
    order. A condition counted for an item the books hold without one is folded into it."""
    by_condition = {row.item for row in expected if row.condition is not None}
    books: dict[tuple[UUID, str | None], int] = {}
    for held in expected:
        key = (held.item, held.condition)
        books[key] = books.get(key, 0) + held.qty
    count: dict[tuple[UUID, str | None], int] = {}
    reasons: dict[tuple[UUID, str | None], str] = {}
    for index, row in enumerate(counted):
        if row.item in by_condition and row.condition is None:
            raise Invalid.field(
                f"counted[{index}].condition", "this item is counted by condition (full, empty)"
            )
        key = (row.item, row.condition if row.item in by_condition else None)
        count[key] = count.get(key, 0) + row.qty
        if row.reason:
            reasons[key] = "; ".join(filter(None, (reasons.get(key, ""), row.reason)))
    keys = sorted(set(books) | set(count), key=lambda key: (str(key[0]), key[1] or ""))
    return [
        StockLine(
            item,
            condition,
            books.get((item, condition), 0),
            count.get((item, condition), 0),
            reasons.get((item, condition), ""),
        )
        for item, condition in keys
    ]


def day_bounds(day: date, zone: tzinfo) -> tuple[datetime, datetime]:
    """The day's first instant and the next day's, in `zone` (a business day is local)."""
    start = datetime.combine(day, time.min, tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)


def clean_day(day: date, today: date) -> date:
    if day > today:
        raise Invalid.field("date", "a day that has begun (today or before)")
    return day


def local_day_of(client_ts: str, zone: tzinfo) -> date | None:
    """The local day a device's capture time falls on; None for none or an unreadable one (a
    time without an offset is taken as UTC, as the device's clock is)."""
    if not client_ts:
        return None
    try:
        moment = datetime.fromisoformat(client_ts)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(zone).date()
    except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
        return None
