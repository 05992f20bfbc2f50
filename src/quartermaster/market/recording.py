"""Daily entries: record, edit and void a farmer's delivery, online or from a clerk's tablet
through batch sync (`market.entry.create`, `.update`, `.void`), and price the entries that
waited for a rate when it is posted.

An entry takes the rate in force for its flower, slot and market day when it is recorded; with
none yet it is `awaiting_rate` (rate and gross null) until the admin posts one
(`price_awaiting`, in the posting's transaction, each entry an audited change).

Money and the journal: an entry posts nothing. Flowers are the farmer's goods sold on
consignment, and the agent owes the farmer only what a settlement recognises, net of commission,
fees and advances. An entry's figures also move until then (a rate arrives, a clerk corrects a
quantity, an entry is voided): posted at entry time, each of those would be a reversing entry in
the journal, for money nobody owes yet. So the settlement posts the farmer's whole period at once
(`market.ledger`), and the journal never holds an entry's figures.

Offline edits (seed 004, "merge strategy"): an update carries the `base_version` it was made
on. When the entry moved on since, the quantity merges as a counter: the server applies the
device's delta, `current + (sent - qty at base_version)`, the quantity at each version being kept
in `EntryVersion`; the rate and status are the server's (a device never sends them); flower or
farmer changed on the device and changed otherwise on the server is a conflict record (409).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import F
from django.utils import timezone
from pydantic import Field

from quartermaster.core.commands import BulkCommand, Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import Conflict, DomainError, Invalid, NotFound
from quartermaster.core.numbering import next_numbers
from quartermaster.core.rows import insert_rows, new_row, uuid_param
from quartermaster.core.types import Change, Context, Outcome, Record
from quartermaster.identity.permissions import authorize_entry_change
from quartermaster.market import invariants
from quartermaster.market.invariants import EntryStatus
from quartermaster.market.models import Entry, EntryVersion, Farmer, Flower, RatePosting
from quartermaster.market.notices import entries_recorded
from quartermaster.market.selectors import (
    CurrentSettings,
    current_settings,
    effective_rate,
    entry_view,
    next_posting_date,
)

ENTITY = "market.entry"
SERIES = "ENT"
# A tablet's clock may be off, but not by more than this into the future.
MAX_CLOCK_AHEAD = timedelta(days=1)
EARLIEST_ARRIVAL = datetime(2000, 1, 1, tzinfo=UTC)


class EntrySettled(Conflict):
    code = "entry_settled"


class EntryVoid(Conflict):
    code = "entry_void"


def clean_arrival(value: Any, field: str = "arrived_at") -> datetime:
    """An ISO 8601 time with an offset, not before 2000."""
    if not isinstance(value, str) or len(value) > 40:
        raise Invalid.field(field, "an ISO 8601 time with offset, e.g. 2026-03-01T05:12:00+05:30")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid.field(field, "an ISO 8601 time with offset") from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid.field(field, "must carry a UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except OverflowError as exc:
        raise Invalid.field(field, "out of range") from exc
    if moment < EARLIEST_ARRIVAL:
        raise Invalid.field(field, "not before 2000")
    return moment


def _arrival(arrived_at: str | None, ctx: Context) -> datetime:
    """The entry's arrival: as sent; else, for a sync op, the device's time of capture
    (`client_ts`: an op synced hours later still arrived when it was recorded); else now."""
    now = timezone.now()
    if arrived_at is not None:
        moment = clean_arrival(arrived_at)
    else:
        try:
            moment = clean_arrival(ctx.client_ts, "client_ts") if ctx.client_ts else now
        except Invalid:
            moment = now
    if moment > now + MAX_CLOCK_AHEAD:
        raise Invalid.field("arrived_at", "more than a day in the future")
    return moment


def market_day_and_slot(moment: datetime, settings: CurrentSettings) -> tuple[date, str]:
    local = moment.astimezone(ZoneInfo(settings.timezone))
    return local.date(), invariants.slot_of(local.strftime("%H:%M"), settings.slots)


def today(settings: CurrentSettings | None = None) -> date:
    """The market day now, in the market's timezone."""
    settings = settings or current_settings()
    return timezone.now().astimezone(ZoneInfo(settings.timezone)).date()


def rate_for(flower: Flower, slot: str, day: date) -> RatePosting | None:
    """The rate in force; when there is none, read again holding the flower's row. A rate
    posting holds that row while it prices the waiting entries (`price_awaiting`), so an entry
    is either seen by the posting or sees the posting: none is left waiting beside a rate.
    FOR NO KEY UPDATE, not FOR UPDATE: every entry insert takes a key-share lock on its
    flower's row (the foreign key), which FOR UPDATE would block, a deadlock measured on
    PostgreSQL (an entry holding the number series waits for the flower, whose holder waits
    for the series)."""
    posting = effective_rate(flower.pk, slot, day)
    if posting is None:
        Flower.objects.select_for_update(no_key=True).filter(pk=flower.pk).first()
        posting = effective_rate(flower.pk, slot, day)
    return posting


def _priced(posting: RatePosting | None, qty_base: int, unit: str) -> dict[str, Any]:
    if posting is None:
        return {
            "rate_minor": None,
            "gross_minor": None,
            "rate_posting": None,
            "status": EntryStatus.AWAITING_RATE,
        }
    return {
        "rate_minor": posting.rate_minor,
        "gross_minor": invariants.gross_minor(qty_base, unit, posting.rate_minor),
        "rate_posting": posting,
        "status": EntryStatus.OPEN,
    }


def _farmer(farmer_id: UUID) -> Farmer:
    farmer = Farmer.objects.filter(pk=farmer_id).first()
    if farmer is None:
        raise Invalid.field("farmer", "unknown farmer")
    return farmer


def _flower(flower_id: UUID) -> Flower:
    flower = Flower.objects.filter(pk=flower_id).first()
    if flower is None:
        raise Invalid.field("flower", "unknown flower")
    return flower


def keep_versions(entries: list[Entry]) -> None:
    """Keep what each entry holds at its (new) version."""
    EntryVersion.objects.bulk_create([_keep_version(entry) for entry in entries], batch_size=500)


def _keep_version(entry: Entry) -> EntryVersion:
    return EntryVersion(
        entry_id=entry.pk,
        version=entry.version,
        qty_base=entry.qty_base,
        flower_id=entry.flower_id,
        farmer_id=entry.farmer_id,
    )


class CreateEntry(BulkCommand):
    """Record a delivery: its slot and market day from `arrived_at`, its rate if posted."""

    # One body (`record_entries`) for one entry (REST, an op alone) and a run of them (batch
    # sync, group commit). The docstring above is the op's description in the op catalogue.

    name = "market.entry.create"
    farmer: UUID
    flower: UUID
    qty: int | str
    arrived_at: str | None = None
    client_temp_id: str = Field(default="", max_length=100)

    def validated(self) -> CreateEntry:
        invariants.check_qty_shape(self.qty)
        if self.arrived_at is not None:
            clean_arrival(self.arrived_at)
        return self

    @classmethod
    def run_many(
        cls, commands: Sequence[Any], contexts: Sequence[Context], *, alone: bool
    ) -> list[Outcome | DomainError]:
        return record_entries(commands, contexts)


@dataclass
class _NewEntry:
    """An entry of the run that passed its checks: what it will be written with."""

    index: int
    command: CreateEntry
    ctx: Context
    farmer: Farmer
    flower: Flower
    qty_base: int
    arrived: datetime
    day: date
    slot: str


def record_entries(
    commands: Sequence[CreateEntry], contexts: Sequence[Context]
) -> list[Outcome | DomainError]:
    """Record `commands` in order, each answering the Outcome or the error it would alone:

    1. one read each of the run's farmers, flowers and the settings, then each entry checked
       as `market.entry.create` always has (unknown farmer, unknown flower, quantity, arrival);
       one that fails answers its error and writes nothing;
    2. the rate of each (flower, slot, market day) the run needs, once; where none is posted,
       the flowers' rows held in one ordered statement and read again (`rate_for`);
    3. one block of ENT numbers, then one INSERT (PostgreSQL: COPY) each for the entries and
       their first versions, and one each for the farmers' notices and outbox messages.

    Nothing the entries write depends on each other, so each is exactly what it would be alone;
    the pipeline writes their idempotency records, audit entries and feed rows in bulk."""
    answers: list[Outcome | DomainError | None] = [None] * len(commands)
    farmers = Farmer.objects.in_bulk({command.farmer for command in commands})
    flowers = Flower.objects.in_bulk({command.flower for command in commands})
    settings = current_settings()
    passed: list[_NewEntry] = []
    for index, (command, ctx) in enumerate(zip(commands, contexts, strict=True)):
        try:
            passed.append(_check(index, command, ctx, farmers, flowers, settings))
        except DomainError as error:
            answers[index] = error
    postings = rates_for({(new.flower.pk, new.slot, new.day) for new in passed})
    for new, outcome in zip(passed, _write(passed, postings), strict=True):
        answers[new.index] = outcome
    return [answer for answer in answers if answer is not None]


def _check(
    index: int,
    command: CreateEntry,
    ctx: Context,
    farmers: dict[Any, Farmer],
    flowers: dict[Any, Flower],
    settings: CurrentSettings,
) -> _NewEntry:
    """What recording an entry checks, in the order it always has."""
    farmer = farmers.get(command.farmer)
    if farmer is None:
        raise Invalid.field("farmer", "unknown farmer")
    flower = flowers.get(command.flower)
    if flower is None:
        raise Invalid.field("flower", "unknown flower")
    qty_base = invariants.parse_qty(command.qty, flower.unit)
    arrived = _arrival(command.arrived_at, ctx)
    day, slot = market_day_and_slot(arrived, settings)
    return _NewEntry(index, command, ctx, farmer, flower, qty_base, arrived, day, slot)


RateKey = tuple[UUID, str, date]


def rates_for(keys: set[RateKey]) -> dict[RateKey, RatePosting | None]:
    """`rate_for` for many (flower, slot, market day) at once: a rate posting holds its
    flower's row while it prices the waiting entries, so where no rate is in force the flowers'
    rows are held (in one statement, in key order: two runs never wait on each other in a
    circle) and the rate read again."""
    found = _rates_in_force(sorted(keys, key=str))
    missing = {flower_id for (flower_id, _, _), posting in found.items() if posting is None}
    if missing:
        held = Flower.objects.select_for_update(no_key=True).filter(pk__in=missing)
        list(held.order_by("pk").values_list("pk", flat=True))
        found.update(_rates_in_force([key for key, posting in found.items() if posting is None]))
    return found


def _rates_in_force(keys: list[RateKey]) -> dict[RateKey, RatePosting | None]:
    """`effective_rate` of each key in one statement (one indexed lookup a key, UNION ALL): a
    run's keys are a few flowers by a few slots, each a round trip otherwise (measured: 15 % of
    a served batch's samples on the busy machine). Postings carry their id and rate only."""
    if not keys:
        return {}
    ops = connection.ops
    one = (
        "SELECT %s, id, rate_minor FROM (SELECT id, rate_minor FROM market_rateposting"
        " WHERE flower_id = %s AND slot = %s AND date <= %s"
        " ORDER BY date DESC, number DESC LIMIT 1) AS k"
    )
    sql = " UNION ALL ".join(f"{one}{index}" for index in range(len(keys)))
    params: list[Any] = []
    for index, (flower_id, slot, day) in enumerate(keys):
        params += [index, uuid_param(flower_id), slot, ops.adapt_datefield_value(day)]
    found: dict[RateKey, RatePosting | None] = dict.fromkeys(keys)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        for index, posting_id, rate_minor in cursor.fetchall():
            found[keys[index]] = RatePosting(id=UUID(str(posting_id)), rate_minor=rate_minor)
    return found


def _write(passed: list[_NewEntry], postings: dict[RateKey, RatePosting | None]) -> list[Outcome]:
    """Write the entries that passed, each table in one statement, and answer each."""
    if not passed:
        return []
    now = timezone.now()
    entries = [
        _entry_row(new, number, postings[(new.flower.pk, new.slot, new.day)], now)
        for new, number in zip(passed, next_numbers(SERIES, len(passed)), strict=True)
    ]
    insert_rows(Entry, entries)
    insert_rows(EntryVersion, [_version_row(entry) for entry in entries])
    notices = entries_recorded(
        [(entry, new.flower, new.farmer) for entry, new in zip(entries, passed, strict=True)]
    )
    outcomes = []
    for entry, new, notice in zip(entries, passed, notices, strict=True):
        view = entry_view(entry, new.flower.unit)
        change = Change(ENTITY, str(view.id), None, view, entry.version)
        outcomes.append(Outcome(201, view, [change, *notice]))
    return outcomes


def _entry_row(new: _NewEntry, number: str, posting: RatePosting | None, now: datetime) -> Entry:
    priced = _priced(posting, new.qty_base, new.flower.unit)
    return new_row(
        Entry,
        id=uuid4(),
        seq=int(number.rsplit("-", 1)[1]),
        number=number,
        farmer_id=new.farmer.pk,
        flower_id=new.flower.pk,
        qty_base=new.qty_base,
        arrived_at=new.arrived,
        market_day=new.day,
        slot=new.slot,
        rate_minor=priced["rate_minor"],
        gross_minor=priced["gross_minor"],
        rate_posting_id=None if posting is None else posting.pk,
        status=priced["status"],
        settlement_id=None,
        void_reason="",
        version=1,
        created_by=new.ctx.actor.username,
        created_by_id=new.ctx.actor.user_id,
        client_temp_id=new.command.client_temp_id,
        created_at=now,
    )


def _version_row(entry: Entry) -> EntryVersion:
    return new_row(
        EntryVersion,
        id=None,
        entry_id=entry.pk,
        version=entry.version,
        qty_base=entry.qty_base,
        flower_id=entry.flower_id,
        farmer_id=entry.farmer_id,
    )


def locked_entry(ctx: Context, action: str, entry_id: UUID) -> Entry:
    """The entry, its row held; 404 if none, 403 if the actor may not change it, 409 if it is
    settled or void."""
    entry = Entry.objects.select_for_update(no_key=True).filter(pk=entry_id).first()
    if entry is None:
        raise NotFound()
    authorize_entry_change(
        ctx.actor,
        action,
        recorded_by=entry.created_by_id,
        same_market_day=entry.market_day == today(),
    )
    if entry.status == EntryStatus.SETTLED:
        raise EntrySettled(f"entry {entry.number} is in a settlement")
    if entry.status == EntryStatus.VOID:
        raise EntryVoid(f"entry {entry.number} is void")
    return entry


def _save(ctx: Context, entry: Entry, before: Record, values: dict[str, Any]) -> Outcome:
    """Write `values`, bump the version, keep the new version's quantity; the changed entry."""
    Entry.objects.filter(pk=entry.pk).update(version=F("version") + 1, **values)
    entry = Entry.objects.select_related("flower").get(pk=entry.pk)
    EntryVersion.objects.bulk_create([_keep_version(entry)])
    after = entry_view(entry)
    return Outcome(200, after, [Change(ENTITY, str(after.id), before, after, entry.version)])


class UpdateEntry(VersionedUpdate):
    """Change an entry's quantity, flower or farmer. With a stale `base_version` the quantity
    merges by its delta and the other fields merge when only one side changed them; anything
    changed on both sides is a 409 `version_conflict` with a conflict record."""

    name = "market.entry.update"
    entity: ClassVar[str] = ENTITY
    editable: ClassVar[tuple[str, ...]] = ("qty", "flower", "farmer")
    qty: int | str | None = None
    flower: UUID | None = None
    farmer: UUID | None = None

    def validated(self) -> UpdateEntry:
        super().validated()
        if self.qty is not None:
            invariants.check_qty_shape(self.qty)
        if self.qty is None and self.flower is None and self.farmer is None:
            raise Invalid("nothing to change", fields={"qty": "give qty, flower or farmer"})
        return self

    def proposed(self) -> dict[str, Any]:
        fields = {
            "qty": self.qty,
            "flower": None if self.flower is None else str(self.flower),
            "farmer": None if self.farmer is None else str(self.farmer),
        }
        return {key: value for key, value in fields.items() if value is not None}

    def load(self, ctx: Context) -> tuple[Record, int]:
        entry = locked_entry(ctx, self.name, self.id)
        return entry_view(entry), entry.version

    def handle(self, ctx: Context) -> Outcome:
        entry = locked_entry(ctx, self.name, self.id)
        if self.base_version is None or self.base_version == entry.version:
            return self.apply(ctx, entry_view(entry))
        merged = self._merged(entry)
        if merged is None:
            return super().handle(ctx)  # changed on both sides: refused, conflict recorded
        return merged.apply(ctx, entry_view(entry))

    def _merged(self, entry: Entry) -> UpdateEntry | None:
        """This update rebased on the entry as it is now, or None when it cannot be."""
        assert self.base_version is not None
        base = EntryVersion.objects.filter(entry_id=entry.pk, version=self.base_version).first()
        if base is None:
            return None
        if self.flower is not None:
            _flower(self.flower)  # an unknown flower is refused, merged or not
        update: dict[str, Any] = {"base_version": entry.version, "qty": None}
        for name, was, now in (
            ("flower", base.flower_id, entry.flower_id),
            ("farmer", base.farmer_id, entry.farmer_id),
        ):
            mine = getattr(self, name)
            if mine is None or mine == was:
                update[name] = None  # not changed on the device: the server's stands
            elif now not in (was, mine):
                return None  # changed to different values on both sides
        if self.qty is not None:
            device_flower = self.flower or base.flower_id
            final_flower = update.get("flower", self.flower) or entry.flower_id
            units = dict(
                Flower.objects.filter(
                    pk__in={base.flower_id, device_flower, final_flower}
                ).values_list("pk", "unit")
            )
            if len(set(units.values())) != 1:
                return None  # a quantity in another unit than the base's: no delta to take
            unit = units[final_flower]
            qty = entry.qty_base + invariants.parse_qty(self.qty, unit) - base.qty_base
            if qty <= 0:
                return None
            update["qty"] = invariants.format_qty(qty, unit)
        return self.model_copy(update=update)

    def apply(self, ctx: Context, before: Record) -> Outcome:
        entry = Entry.objects.select_related("flower").get(pk=self.id)
        flower = entry.flower if self.flower is None else _flower(self.flower)
        values: dict[str, Any] = {}
        if self.farmer is not None and self.farmer != entry.farmer_id:
            values["farmer"] = _farmer(self.farmer)
        if self.qty is not None:
            qty_base = invariants.parse_qty(self.qty, flower.unit)
        elif flower.unit != entry.flower.unit:
            raise Invalid.field("qty", "give the quantity when the flower's unit changes")
        else:
            qty_base = entry.qty_base
        posting = entry.rate_posting if flower.pk == entry.flower_id else None
        if flower.pk != entry.flower_id:
            values["flower"] = flower
            posting = rate_for(flower, entry.slot, entry.market_day)
        values["qty_base"] = qty_base
        values.update(_priced(posting, qty_base, flower.unit))
        return _save(ctx, entry, before, values)


class VoidEntry(Command):
    """Void an entry (a delivery recorded by mistake); it stays, with its reason."""

    name = "market.entry.void"
    id: UUID
    reason: str

    def validated(self) -> VoidEntry:
        return self.model_copy(update={"reason": _clean_reason(self.reason)})

    def handle(self, ctx: Context) -> Outcome:
        entry = locked_entry(ctx, self.name, self.id)
        entry = Entry.objects.select_related("flower").get(pk=entry.pk)
        before = entry_view(entry)
        return _save(ctx, entry, before, {"status": EntryStatus.VOID, "void_reason": self.reason})


def _clean_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        raise Invalid.field("reason", "a non-blank string of at most 500 characters")
    return reason.strip()


def price_awaiting(posting: RatePosting, unit: str) -> list[Change]:
    """Give the posting's rate to the entries waiting for it: its flower and slot, market days
    from its date up to the next posting's. The flower's row is held first (`rate_for`)."""
    Flower.objects.select_for_update(no_key=True).filter(pk=posting.flower_id).first()
    query = Entry.objects.select_for_update(no_key=True).filter(
        status=EntryStatus.AWAITING_RATE,
        flower_id=posting.flower_id,
        slot=posting.slot,
        market_day__gte=posting.date,
    )
    until = next_posting_date(posting.flower_id, posting.slot, posting.date)
    if until is not None:
        query = query.filter(market_day__lt=until)
    changes: list[Change] = []
    waiting = list(query.order_by("seq"))
    for entry in waiting:
        before = entry_view(entry, unit)
        for field, value in _priced(posting, entry.qty_base, unit).items():
            setattr(entry, field, value)
        entry.version += 1
        after = entry_view(entry, unit)
        changes.append(Change(ENTITY, str(after.id), before, after, entry.version))
    Entry.objects.bulk_update(
        waiting, ["rate_minor", "gross_minor", "rate_posting", "status", "version"], batch_size=500
    )
    keep_versions(waiting)
    return changes
