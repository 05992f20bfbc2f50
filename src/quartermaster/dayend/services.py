"""Command handlers for the driver's day-end: count (`day_end.create`) and close
(`day_end.approve`). Both are sync ops: a driver counts the truck in a basement, the count
reaches the server later.

The count reads the books as they stand — stock on the truck from the movement ledger up to the
day's end, cash and cheques from the payments its drivers recorded that day — and stores them
beside what was counted. Closing records every difference in the same transaction: stock short
moves to the loss location with its reason (stock found comes back from it) through the one
stock ledger, and money short (or over) posts to the journal: DR shortages, CR cash / cheques.
A closed day is locked: counting or closing it again is 409 `day_closed`.
"""

from __future__ import annotations

from datetime import date
from typing import Literal
from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import Command
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.money import Money
from quartermaster.core.numbering import next_number
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.dayend import invariants
from quartermaster.dayend.invariants import (
    CountedRow,
    DayClosed,
    DayEndExists,
    DayEndStatus,
    StockLine,
)
from quartermaster.dayend.models import DayEnd, DayEndLine
from quartermaster.dayend.selectors import (
    day_end_view,
    day_zone,
    drivers_of,
    expected_stock,
    find_day_end,
    money_taken,
    serialized_items,
    serials_at,
)
from quartermaster.inventory.invariants import LocationKind, MovementKind
from quartermaster.inventory.ledger import LineSpec, move_stock
from quartermaster.inventory.models import Item, Movement
from quartermaster.inventory.selectors import get_virtual_location
from quartermaster.inventory.services import own_location
from quartermaster.journal.invariants import AccountKind, AccountSpec, PostingLine
from quartermaster.journal.services import open_accounts, post_entry

ENTITY = "day_end"
WIRE_NAMES = ConfigDict(frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True)


class CountLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    condition: Literal["full", "empty"] | None = None
    qty: int
    # A serialized item short on the count names the units counted (the rest are written off).
    serials: tuple[str, ...] = ()
    reason: str = ""


class CreateDayEnd(Command):
    """A truck's count at the end of a day: stock by item (and condition), cash and cheques
    handed in; answered with what the books expected and the differences. Open until a manager
    approves it."""

    name = "day_end.create"
    model_config = WIRE_NAMES
    location: UUID
    day: date = Field(alias="date")
    counted: tuple[CountLine, ...]
    cash_handed_in_minor: Money = Field(alias="cash_handed_in")
    cheques_handed_in_minor: Money = Field(default=0, alias="cheques_handed_in")
    client_temp_id: str = Field(default="", max_length=100)

    def validated(self) -> CreateDayEnd:
        rows = invariants.clean_counted(
            [CountedRow(c.item, c.condition, c.qty, c.serials, c.reason) for c in self.counted]
        )
        lines = tuple(
            line.model_copy(update={"serials": row.serials, "reason": row.reason})
            for line, row in zip(self.counted, rows, strict=True)
        )
        return self.model_copy(update={"counted": lines})

    def rows(self) -> list[CountedRow]:
        return [CountedRow(c.item, c.condition, c.qty, c.serials, c.reason) for c in self.counted]

    def handle(self, ctx: Context) -> Outcome:
        location = own_location(ctx, self.name, self.location, "location")
        zone = day_zone()
        now = timezone.now()
        invariants.clean_day(self.day, now.astimezone(zone).date())
        _known_items([c.item for c in self.counted])
        _refuse_second_count(location.pk, self.day)
        start, end = invariants.day_bounds(self.day, zone)
        counted_at = min(end, now)
        lines = invariants.reconcile_stock(expected_stock(location.pk, counted_at), self.rows())
        missing = _missing_serials(location.pk, lines, self.rows())
        drivers = drivers_of(location.pk)
        taken = money_taken(drivers, start, end)
        try:
            with transaction.atomic():
                day_end = DayEnd.objects.create(
                    number=next_number("DAY"),
                    location=location,
                    day=self.day,
                    drivers=drivers,
                    counted_at=counted_at,
                    expected_cash_minor=taken.cash_minor,
                    expected_cheques_minor=taken.cheques_minor,
                    cash_handed_in_minor=self.cash_handed_in_minor,
                    cheques_handed_in_minor=self.cheques_handed_in_minor,
                    created_by=ctx.actor.username,
                    created_at=now,
                    client_temp_id=self.client_temp_id,
                )
        except IntegrityError as exc:  # a concurrent count of the same truck and day won
            raise DayEndExists("this truck's day is already counted") from exc
        rows = DayEndLine.objects.bulk_create(
            DayEndLine(
                day_end=day_end,
                line_no=index,
                item_id=line.item,
                condition=line.condition or "",
                expected_qty=line.expected,
                counted_qty=line.counted,
                reason=line.reason,
                missing_serials=list(missing.get((line.item, line.condition), ())),
            )
            for index, line in enumerate(lines)
        )
        view = day_end_view(day_end, rows)
        change = Change(ENTITY, str(day_end.pk), None, view, day_end.version, location.pk)
        return Outcome(201, view, [change])


def _refuse_second_count(location_id: UUID, day: date) -> None:
    existing = find_day_end(location_id, day)
    if existing is None:
        return
    if existing.status == DayEndStatus.CLOSED:
        raise DayClosed(f"{existing.number}: the day {day} is closed; its records are locked")
    raise DayEndExists(f"{existing.number} already counts this truck's day {day}")


def _known_items(item_ids: list[UUID]) -> None:
    known = set(Item.objects.filter(pk__in=item_ids).values_list("pk", flat=True))
    for index, item in enumerate(item_ids):
        if item not in known:
            raise Invalid.field(f"counted[{index}].item", "unknown item")


def _missing_serials(
    location_id: UUID, lines: list[StockLine], counted: list[CountedRow]
) -> dict[tuple[UUID, str | None], tuple[str, ...]]:
    """For each (item, condition) of a serialized item counted short: the units on the truck's
    register in that condition that were not counted (they are what is written off). A
    returnable item's full and empty units are told apart: a full one missing is not an empty
    one missing. A serialized unit can only be short: one found on a truck that the register
    does not have there comes back through its own movement."""
    tracked = serialized_items([line.item for line in lines])
    missing: dict[tuple[UUID, str | None], tuple[str, ...]] = {}
    for line in lines:
        if line.item not in tracked or not line.difference:
            continue
        # reconcile_stock folds a condition into an item held without one: match it the same way.
        rows = [
            (index, row)
            for index, row in enumerate(counted)
            if row.item == line.item and line.condition in (None, row.condition)
        ]
        field = f"counted[{rows[0][0] if rows else 0}]"
        if line.difference > 0:
            raise Invalid.field(f"{field}.qty", "more units than the truck's register holds")
        named = {serial for _, row in rows for serial in row.serials}
        if len(named) != line.counted:
            raise Invalid.field(f"{field}.serials", "name the units counted of a short item")
        held = serials_at(location_id, line.item, state=line.condition)
        absent = tuple(s for s in held if s not in named)
        if len(absent) != -line.difference:
            raise Invalid.field(f"{field}.serials", "not the units the truck's register holds")
        missing[(line.item, line.condition)] = absent
    return missing


class ApproveDayEnd(Command):
    """A manager closes a truck's day: stock short goes to loss with its reason (stock found
    comes back), money short or over posts to the journal (shortages against cash, cheques),
    and the day is locked."""

    name = "day_end.approve"
    day_end: UUID

    def handle(self, ctx: Context) -> Outcome:
        day_end = DayEnd.objects.select_for_update().filter(pk=self.day_end).first()
        if day_end is None:
            raise NotFound()
        policy.authorize(ctx.actor, self.name, location_id=day_end.location_id)
        if day_end.status == DayEndStatus.CLOSED:
            raise DayClosed(f"{day_end.number} is closed already; its records are locked")
        before = day_end_view(day_end)
        lines = list(day_end.lines.order_by("line_no"))
        loss, found, changes = _record_stock_differences(day_end, lines, ctx)
        entry_id, journal_changes = _post_money_differences(day_end, ctx)
        day_end.status = DayEndStatus.CLOSED
        day_end.closed_by = ctx.actor.username
        day_end.closed_at = timezone.now()
        day_end.loss_movement = loss
        day_end.found_movement = found
        day_end.journal_entry = entry_id
        day_end.version = F("version") + 1
        day_end.save()
        day_end.refresh_from_db(fields=["version"])
        after = day_end_view(day_end, lines)
        change = Change(
            ENTITY, str(day_end.pk), before, after, day_end.version, day_end.location_id
        )
        return Outcome(200, after, [change, *changes, *journal_changes])


def _record_stock_differences(
    day_end: DayEnd, lines: list[DayEndLine], ctx: Context
) -> tuple[Movement | None, Movement | None, list[Change]]:
    loss_location = get_virtual_location(LocationKind.LOSS).pk
    truck = day_end.location_id
    short = [line for line in lines if line.counted_qty < line.expected_qty]
    over = [line for line in lines if line.counted_qty > line.expected_qty]
    changes: list[Change] = []
    loss = found = None
    if short:
        reasons = "; ".join(
            f"line {line.line_no + 1}: {line.reason or 'counted short'}" for line in short
        )
        moved = move_stock(
            kind=MovementKind.ADJUSTMENT,
            lines=[
                LineSpec(
                    line.item_id,
                    truck,
                    loss_location,
                    line.expected_qty - line.counted_qty,
                    tuple(line.missing_serials),
                    condition=line.condition,
                )
                for line in short
            ],
            actor=ctx.actor.username,
            reason=f"short at day-end {day_end.number} ({day_end.day}): {reasons}"[:500],
            reference=f"day_end:{day_end.number}",
        )
        loss = moved.movement
        changes.extend(moved.changes)
    if over:
        moved = move_stock(
            kind=MovementKind.ADJUSTMENT,
            lines=[
                LineSpec(
                    line.item_id,
                    loss_location,
                    truck,
                    line.counted_qty - line.expected_qty,
                    condition=line.condition,
                )
                for line in over
            ],
            actor=ctx.actor.username,
            reason=f"found at day-end {day_end.number} ({day_end.day})",
            reference=f"day_end:{day_end.number}",
        )
        found = moved.movement
        changes.extend(moved.changes)
    return loss, found, changes


# Where the money handed in sits, by kind; a difference posts against `shortages`.
_MONEY_ACCOUNTS = {
    "cash": AccountSpec("cash", AccountKind.ASSET, "Cash"),
    "cheques": AccountSpec("cheques", AccountKind.ASSET, "Cheques in hand"),
}
_SHORTAGES = AccountSpec("shortages", AccountKind.EXPENSE, "Cash and stock shortages")


def _post_money_differences(day_end: DayEnd, ctx: Context) -> tuple[UUID | None, list[Change]]:
    """Money short: DR shortages, CR cash (or cheques); money over: the reverse. One entry for
    the day, none when the money agrees."""
    differences = {
        "cash": day_end.cash_handed_in_minor - day_end.expected_cash_minor,
        "cheques": day_end.cheques_handed_in_minor - day_end.expected_cheques_minor,
    }
    if not any(differences.values()):
        return None, []
    accounts = open_accounts([_SHORTAGES, *_MONEY_ACCOUNTS.values()])
    shortages = accounts[_SHORTAGES.code]
    lines: list[PostingLine] = []
    for kind, difference in differences.items():
        money = accounts[_MONEY_ACCOUNTS[kind].code]
        if difference < 0:
            memo = f"{kind} short at {day_end.number}"
            lines.append(PostingLine(shortages, debit_minor=-difference, memo=memo))
            lines.append(PostingLine(money, credit_minor=-difference, memo=memo))
        elif difference > 0:
            memo = f"{kind} over at {day_end.number}"
            lines.append(PostingLine(money, debit_minor=difference, memo=memo))
            lines.append(PostingLine(shortages, credit_minor=difference, memo=memo))
    posted = post_entry(
        lines=lines,
        memo=f"day-end {day_end.number} ({day_end.day}): money handed in against payments taken",
        source_type="day_end",
        source_id=str(day_end.pk),
        ctx=ctx,
        action=ApproveDayEnd.name,
    )
    return posted.view.id, posted.changes
