"""Pure rules of loads: what a receipt may say about what was dispatched. No database access."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import models

from quartermaster.core.errors import Conflict, Invalid

MAX_REASON_LENGTH = 500


class LoadStatus(models.TextChoices):
    IN_TRANSIT = "in_transit"
    RECEIVED = "received"
    RECEIVED_SHORT = "received_short"


class RefillStatus(models.TextChoices):
    SENT = "sent"
    RECEIVED = "received"
    RECEIVED_SHORT = "received_short"


class RefillAlreadyReceived(Conflict):
    code = "refill_already_received"


class Approval(models.TextChoices):
    """A short receipt worth more than the threshold waits for a manager's approval."""

    NOT_NEEDED = "not_needed"
    PENDING = "pending"
    APPROVED = "approved"


class LoadAlreadyReceived(Conflict):
    code = "load_already_received"


class NothingToApprove(Conflict):
    code = "nothing_to_approve"


@dataclass(frozen=True)
class Dispatched:
    """One line of a load as it left."""

    line_no: int
    item_id: UUID
    qty: int
    serials: tuple[str, ...]


@dataclass(frozen=True)
class Counted:
    """One line of a receipt as the receiver counted it."""

    item_id: UUID
    qty: int
    serials: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class LineOutcome:
    """What became of one dispatched line: received here, short (lost on the way, with why)."""

    line: Dispatched
    received_qty: int
    received_serials: tuple[str, ...]
    short_serials: tuple[str, ...]
    reason: str

    @property
    def short_qty(self) -> int:
        return self.line.qty - self.received_qty


def clean_reason(reason: Any, field: str) -> str:
    if not isinstance(reason, str) or len(reason) > MAX_REASON_LENGTH:
        raise Invalid.field(field, f"a string of at most {MAX_REASON_LENGTH} characters")
    return reason.strip()


def settle_receipt(
    dispatched: Sequence[Dispatched], counted: Sequence[Counted]
) -> list[LineOutcome]:
    """Match a receipt to the load, line by line: every item of the load is counted once (0 if
    none arrived), never more than left, serials only among those dispatched, and a shortage
    says why."""
    by_item = {line.item_id: line for line in dispatched}
    seen: dict[UUID, int] = {}
    outcomes: dict[UUID, LineOutcome] = {}
    for index, count in enumerate(counted):
        where = f"lines[{index}]"
        line = by_item.get(count.item_id)
        if line is None:
            raise Invalid.field(f"{where}.item", "not on this load")
        if count.item_id in seen:
            raise Invalid.field(
                f"{where}.item", f"counted twice (also lines[{seen[count.item_id]}])"
            )
        seen[count.item_id] = index
        outcomes[count.item_id] = _settle_line(line, count, where)
    missing = [line for line in dispatched if line.item_id not in outcomes]
    if missing:
        raise Invalid.field("lines", "count every line of the load (qty 0 when none arrived)")
    return [outcomes[line.item_id] for line in dispatched]


def _settle_line(line: Dispatched, count: Counted, where: str) -> LineOutcome:
    if not 0 <= count.qty <= line.qty:
        raise Invalid.field(f"{where}.qty", f"from 0 to {line.qty} (what was dispatched)")
    received_serials: tuple[str, ...] = ()
    short_serials: tuple[str, ...] = ()
    if line.serials:
        if len(count.serials) != count.qty or len(set(count.serials)) != len(count.serials):
            raise Invalid.field(f"{where}.serials", "name each unit received, once")
        unknown = sorted(set(count.serials) - set(line.serials))
        if unknown:
            raise Invalid.field(f"{where}.serials", f"not on this load: {', '.join(unknown)}")
        received_serials = tuple(s for s in line.serials if s in set(count.serials))
        short_serials = tuple(s for s in line.serials if s not in set(count.serials))
    elif count.serials:
        raise Invalid.field(f"{where}.serials", "this line was dispatched without serials")
    if count.qty < line.qty and not count.reason:
        raise Invalid.field(f"{where}.reason", "say why fewer arrived than left")
    return LineOutcome(line, count.qty, received_serials, short_serials, count.reason)


def shortage_value(outcomes: Sequence[LineOutcome], price_minor: dict[UUID, int]) -> int:
    """The list-price value of what went missing: what decides whether a manager must approve."""
    return sum(o.short_qty * price_minor.get(o.line.item_id, 0) for o in outcomes)
