"""What the market tells its farmers, through the outbox (notifications.services.notify).

- `notify_farmer`: for a market command handler (an entry recorded, an advance given, a
  settlement paid) to queue a message to the farmer in the handler's own transaction, on the
  farmer's WhatsApp (SMS fallback) in their language.
- `enqueue_farmer_notification`: the one call every market command that tells a farmer
  something makes (an entry recorded, an advance given, a settlement generated, approved or
  paid), in its own transaction: the event's template (`notifications.messages`, English and
  Tamil) with the record's figures, through `notify_farmer`.
- A farmer who sends "balance" or "இருப்பு" from their WhatsApp number is answered with what
  the market owes them, their outstanding advance and their last settlement
  (`market.farmer.balance_reply`). Any other sender is left unanswered (a log line).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar
from uuid import UUID

from django.conf import settings

from quartermaster.core.commands import Command, execute
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.money import format_money
from quartermaster.core.types import SYSTEM_ACTOR, Change, Context, Outcome
from quartermaster.market.invariants import format_qty
from quartermaster.market.models import (
    Advance,
    Entry,
    Farmer,
    Flower,
    Settlement,
    SettlementStatus,
)
from quartermaster.market.selectors import farmer_view, get_farmer
from quartermaster.notifications.invariants import InboundMessage, normalize_text, provider_phone
from quartermaster.notifications.messages import (
    AWAITING_RATE,
    NONE_YET,
    period_words,
    settlement_line,
)
from quartermaster.notifications.services import Addressee, Notice, notify, notify_many

logger = logging.getLogger(__name__)

BALANCE_WORDS = frozenset({"balance", "bal", "இருப்பு"})


def _addressee(farmer: Farmer) -> Addressee:
    return Addressee(
        name=farmer.name_ta if farmer.language == "ta" and farmer.name_ta else farmer.name,
        language=farmer.language,
        whatsapp=farmer.whatsapp,
        phone=farmer.phone,
    )


def notify_farmer(
    farmer: Farmer, *, template: str, params: dict[str, str], dedupe_key: str
) -> list[Change]:
    """Queue `template` to `farmer` inside the calling handler's transaction; add the returned
    changes to the handler's Outcome. `dedupe_key` names the event, e.g.
    f"market.advance:{advance.id}:given": a second call with it queues nothing."""
    return notify(_addressee(farmer), template=template, params=params, dedupe_key=dedupe_key)


def entries_recorded(recorded: Sequence[tuple[Entry, Flower, Farmer]]) -> list[list[Change]]:
    """`enqueue_farmer_notification(ENTRY_RECORDED)` for entries just written, each with its
    flower and farmer as the recording command holds them (nothing is read again), all queued in
    two statements; each entry's changes, in order."""
    notices = []
    for entry, flower, farmer in recorded:
        template, params = _entry_params(entry, flower, farmer.language)
        notices.append(
            Notice(
                _addressee(farmer),
                template,
                {"name": _name_in(farmer.name, farmer.name_ta, farmer.language), **params},
                f"{FarmerEvent.ENTRY_RECORDED}:{entry.pk}",
            )
        )
    return notify_many(notices)


@dataclass(frozen=True)
class FarmerBalance:
    payable: str
    advance_outstanding: str
    last_settlement: str | None


def last_settlement_line(farmer: Farmer) -> str | None:
    """The farmer's last settlement (a cancelled one aside) as one line for a message in their
    language ("STL-000012, 2026-03-01 to 2026-03-15, paid, net Rs 12400.00"), or None before
    the first."""
    last = (
        Settlement.objects.filter(farmer=farmer)
        .exclude(status=SettlementStatus.CANCELLED)
        .order_by("-created_at", "-number")
        .first()
    )
    if last is None:
        return None
    period = _period(last, farmer.language)
    return settlement_line(
        last.number, period, last.status, format_money(last.net_minor), farmer.language
    )


def _period(settlement: Settlement, language: str) -> str:
    start, end = settlement.period_from.isoformat(), settlement.period_to.isoformat()
    return period_words(start, end, language)


class FarmerEvent(StrEnum):
    ENTRY_RECORDED = "market.entry.recorded"
    ADVANCE_RECORDED = "market.advance.recorded"
    SETTLEMENT_GENERATED = "market.settlement.generated"
    SETTLEMENT_APPROVED = "market.settlement.approved"
    SETTLEMENT_PAID = "market.settlement.paid"


def enqueue_farmer_notification(
    *, event: FarmerEvent, farmer_id: UUID, subject_id: str
) -> list[Change]:
    """Tell farmer `farmer_id` about `event` on record `subject_id` (an entry, an advance, a
    settlement), inside the calling command's transaction, in the farmer's language; the
    caller adds the returned changes to its Outcome. Once per event and record."""
    farmer = Farmer.objects.get(pk=farmer_id)
    template, params = _EVENT_MESSAGES[event](subject_id, farmer.language)
    return notify_farmer(
        farmer,
        template=template,
        params={"name": _name_in(farmer.name, farmer.name_ta, farmer.language), **params},
        dedupe_key=f"{event}:{subject_id}",
    )


def _name_in(name: str, name_ta: str, language: str) -> str:
    return name_ta if language == "ta" and name_ta else name


def _entry_message(entry_id: str, language: str) -> tuple[str, dict[str, str]]:
    entry = Entry.objects.select_related("flower").get(pk=entry_id)
    return _entry_params(entry, entry.flower, language)


def _entry_params(entry: Entry, flower: Flower, language: str) -> tuple[str, dict[str, str]]:
    amount = (
        AWAITING_RATE[language]
        if entry.gross_minor is None
        else f"Rs {format_money(entry.gross_minor)}"
    )
    return "market_entry_recorded", {
        "number": entry.number,
        "flower": _name_in(flower.name, flower.name_ta, language),
        "qty": f"{format_qty(entry.qty_base, flower.unit)} {flower.unit}",
        "amount": amount,
    }


def _advance_message(advance_id: str, language: str) -> tuple[str, dict[str, str]]:
    advance = Advance.objects.select_related("farmer").get(pk=advance_id)
    return "market_advance_recorded", {
        "number": advance.number,
        "amount": format_money(advance.amount_minor),
        "advance_outstanding": format_money(farmer_view(advance.farmer).advance_outstanding_minor),
    }


def _settlement_message(state: str) -> Callable[[str, str], tuple[str, dict[str, str]]]:
    def message(settlement_id: str, language: str) -> tuple[str, dict[str, str]]:
        settlement = Settlement.objects.get(pk=settlement_id)
        return f"market_settlement_{state}", {
            "number": settlement.number,
            "period": _period(settlement, language),
            "net": format_money(settlement.net_minor),
        }

    return message


_EVENT_MESSAGES: dict[FarmerEvent, Callable[[str, str], tuple[str, dict[str, str]]]] = {
    FarmerEvent.ENTRY_RECORDED: _entry_message,
    FarmerEvent.ADVANCE_RECORDED: _advance_message,
    FarmerEvent.SETTLEMENT_GENERATED: _settlement_message("generated"),
    FarmerEvent.SETTLEMENT_APPROVED: _settlement_message("approved"),
    FarmerEvent.SETTLEMENT_PAID: _settlement_message("paid"),
}


def farmer_balance(farmer: Farmer) -> FarmerBalance:
    """From the farmer's view, so the reply says exactly what the API shows."""
    view = farmer_view(farmer)
    return FarmerBalance(
        payable=format_money(view.payable_minor),
        advance_outstanding=format_money(view.advance_outstanding_minor),
        last_settlement=last_settlement_line(farmer),
    )


class ReplyBalance(Command):
    """Answer a farmer's "balance" message (system actor, from the inbound webhook). One reply
    per inbound message: WhatsApp redelivers webhooks, and its message id is the key."""

    name = "market.farmer.balance_reply"
    syncable: ClassVar[bool] = False
    farmer: UUID
    inbound_message_id: str

    def validated(self) -> ReplyBalance:
        if not 0 < len(self.inbound_message_id) <= 150:
            raise Invalid.field("inbound_message_id", "1 to 150 characters")
        return self

    def handle(self, ctx: Context) -> Outcome:
        farmer = get_farmer(self.farmer)
        if farmer is None:
            raise NotFound()
        balance = farmer_balance(farmer)
        changes = notify_farmer(
            farmer,
            template="farmer_balance",
            params={
                "name": farmer.name_ta
                if farmer.language == "ta" and farmer.name_ta
                else farmer.name,
                "payable": balance.payable,
                "advance_outstanding": balance.advance_outstanding,
                "last_settlement": balance.last_settlement or NONE_YET[farmer.language],
            },
            dedupe_key=f"market.balance_reply:{self.inbound_message_id}",
        )
        return Outcome(200, {"queued": bool(changes)}, changes)


def find_farmer_by_whatsapp(sender: str) -> Farmer | None:
    """The farmer whose WhatsApp number is `sender` (E.164 digits), however it was typed in."""
    code = settings.NOTIFY_DEFAULT_COUNTRY_CODE
    for farmer in Farmer.objects.filter(whatsapp__endswith=sender[-8:]).exclude(whatsapp=""):
        if provider_phone(farmer.whatsapp, code) == sender:
            return farmer
    return None


def answer_inbound(message: InboundMessage) -> bool:
    """The market's inbound handler: True when the sender is one of its farmers."""
    if len(message.sender) < 8:
        return False
    farmer = find_farmer_by_whatsapp(message.sender)
    if farmer is None:
        return False
    if normalize_text(message.text) not in BALANCE_WORDS:
        logger.info(
            "WhatsApp message %s from farmer %s: no keyword, not answered",
            message.id,
            farmer.number,
        )
        return True
    response = execute(
        ReplyBalance(farmer=farmer.pk, inbound_message_id=message.id), Context(actor=SYSTEM_ACTOR)
    )
    if response.status >= 300:
        logger.warning("balance reply to farmer %s: %s", farmer.number, response.body)
    return True
