"""The one place market commands hand a farmer's notification to the outbox.

Issue 11 deliverable 6 (the transactional outbox, WhatsApp/SMS adapters, templates per
language) is built apart. Every market command that should tell a farmer something (an entry
recorded, an advance given, a settlement generated, approved or paid) already calls
`enqueue_farmer_notification` here, inside its own transaction, with what the message is about.
When `core.outbox` lands, this function writes the outbox row (same transaction, so a rolled-back
command never sends); until then it records nothing.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID


class FarmerEvent(StrEnum):
    ENTRY_RECORDED = "market.entry.recorded"
    ADVANCE_RECORDED = "market.advance.recorded"
    SETTLEMENT_GENERATED = "market.settlement.generated"
    SETTLEMENT_APPROVED = "market.settlement.approved"
    SETTLEMENT_PAID = "market.settlement.paid"


def enqueue_farmer_notification(*, event: FarmerEvent, farmer_id: UUID, subject_id: str) -> None:
    """Enqueue `event` about record `subject_id` for farmer `farmer_id` (their language and
    WhatsApp number are the farmer's). Must be called inside the command's transaction.

    TODO(outbox): write the outbox row here, keyed by (event, subject_id) for the receiver's
    dedupe. Nothing is sent yet."""
    return None
