"""The current rows of each audited table as the snapshots the chain seals, for
`audit verify --state` (core.audit_state). Built by the same view functions the handlers use,
so a row nobody touched outside the pipeline reads exactly as its last audit entry. Each table
is read with `.iterator()` (lines prefetched a chunk at a time), so only the snapshots are held.

Covered (entity types):
- inventory: location, item, stock, movement, asset;
- sales: customer, sale, invoice, invoice_email, credit_note, payment, refund, allocation,
  customer_deposit (deposit movements), meter_reading;
- journal: journal_entry, journal_account (`journal verify` checks the balances besides);
- market: market.flower, market.farmer, market.settings, market.rate, market.entry,
  market.advance, market.settlement;
- distribution: load, refill; dayend: day_end;
- inspections: inspection.template, inspection, inspection.held_update;
- media, notification, conflict;
- identity: device (not its last-seen, which every request moves without an entry).

Not covered: user, user.password, session and cluster.primary (docs/audit-proofs.md says why).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import Model, Prefetch, QuerySet

from quartermaster.core.audit_state import Snapshot, StateReader
from quartermaster.core.conflicts import conflict_view
from quartermaster.core.models import Conflict
from quartermaster.core.types import View
from quartermaster.dayend.models import DayEnd, DayEndLine
from quartermaster.dayend.selectors import day_end_view
from quartermaster.distribution.models import Load, LoadLine, Refill, RefillLine
from quartermaster.distribution.refills import refill_view
from quartermaster.distribution.selectors import load_view
from quartermaster.identity.models import Device
from quartermaster.identity.selectors import device_view
from quartermaster.inspections.models import HeldUpdate, Inspection, Template, TemplateVersion
from quartermaster.inspections.selectors import held_view, inspection_view, template_view
from quartermaster.inventory.models import Asset, Item, Location, Movement, MovementLine, Stock
from quartermaster.inventory.selectors import (
    asset_view,
    item_view,
    location_view,
    movement_view,
    stock_view,
)
from quartermaster.journal.models import Account
from quartermaster.journal.selectors import account_ref, every_entry, opened_account_view
from quartermaster.market.models import Advance, Farmer, Flower, RatePosting, Settlement
from quartermaster.market.models import Entry as MarketEntry
from quartermaster.market.selectors import (
    advance_view,
    current_settings,
    entry_view,
    farmer_view,
    flower_view,
    rate_posting_view,
    settlement_view,
)
from quartermaster.media.models import MediaAsset
from quartermaster.media.selectors import media_view
from quartermaster.notifications.models import Notification
from quartermaster.notifications.selectors import notification_view
from quartermaster.sales.models import (
    Allocation,
    CreditNote,
    Customer,
    DepositMovement,
    Invoice,
    InvoiceLine,
    MeterReading,
    Payment,
    Refund,
    SaleTransaction,
)
from quartermaster.sales.selectors import (
    allocation_view,
    credit_note_view,
    customer_view,
    deposit_movement_view,
    invoice_email_view,
    invoice_view,
    meter_reading_view,
    payment_view,
    refund_view,
    sale_view,
)

CHUNK = 500
M = TypeVar("M", bound=Model)


def _by_pk(rows: QuerySet[M], view: Callable[[M], View]) -> dict[str, Snapshot]:
    """Each row, by its primary key as text (the entity id its changes name), as `view` seals
    it; read a chunk at a time."""
    return {str(row.pk): view(row).snapshot for row in rows.iterator(chunk_size=CHUNK)}


def _lines(model: type[Model]) -> Prefetch[str, Any, str]:
    return Prefetch("lines", queryset=model._default_manager.order_by("line_no"))


# -- inventory --


def _locations() -> dict[str, Snapshot]:
    return _by_pk(Location.objects.all(), location_view)


def _items() -> dict[str, Snapshot]:
    return _by_pk(Item.objects.filter(deleted_at__isnull=True), lambda row: item_view(row, 0))


def _stock() -> dict[str, Snapshot]:
    views = (
        stock_view(row.item_id, row.location_id, row.qty, row.condition)
        for row in Stock.objects.all().iterator(chunk_size=CHUNK)
    )
    return {view.key: view.snapshot for view in views}


def _movements() -> dict[str, Snapshot]:
    rows = Movement.objects.prefetch_related(_lines(MovementLine))
    return _by_pk(rows, lambda row: movement_view(row, row.lines.all()))


def _assets() -> dict[str, Snapshot]:
    return _by_pk(Asset.objects.all(), asset_view)


# -- sales --


def _customers() -> dict[str, Snapshot]:
    return _by_pk(Customer.objects.all(), customer_view)


def _sales() -> dict[str, Snapshot]:
    return _by_pk(SaleTransaction.objects.all(), sale_view)


def _invoices() -> dict[str, Snapshot]:
    rows = Invoice.objects.prefetch_related(_lines(InvoiceLine))
    return _by_pk(rows, lambda row: invoice_view(row, list(row.lines.all())))


def _invoice_emails() -> dict[str, Snapshot]:
    return _by_pk(Invoice.objects.all(), invoice_email_view)


def _credit_notes() -> dict[str, Snapshot]:
    return _by_pk(CreditNote.objects.all(), credit_note_view)


def _payments() -> dict[str, Snapshot]:
    return _by_pk(Payment.objects.all(), payment_view)


def _refunds() -> dict[str, Snapshot]:
    return _by_pk(Refund.objects.all(), refund_view)


def _allocations() -> dict[str, Snapshot]:
    return _by_pk(Allocation.objects.all(), allocation_view)


def _deposit_movements() -> dict[str, Snapshot]:
    return _by_pk(DepositMovement.objects.all(), deposit_movement_view)


def _meter_readings() -> dict[str, Snapshot]:
    return _by_pk(MeterReading.objects.all(), meter_reading_view)


# -- journal --


def _journal_entries() -> dict[str, Snapshot]:
    return {str(view.id): view.snapshot for view in every_entry()}


def _journal_accounts() -> dict[str, Snapshot]:
    return _by_pk(Account.objects.all(), lambda row: opened_account_view(account_ref(row)))


# -- market --


def _flowers() -> dict[str, Snapshot]:
    return _by_pk(Flower.objects.all(), flower_view)


def _farmers() -> dict[str, Snapshot]:
    # The balances are the journal's (derived): not read here, not compared.
    return _by_pk(Farmer.objects.all(), lambda row: farmer_view(row, (0, 0)))


def _market_settings() -> dict[str, Snapshot]:
    return {"market": current_settings().view().snapshot}


def _rates() -> dict[str, Snapshot]:
    return _by_pk(RatePosting.objects.all(), rate_posting_view)


def _market_entries() -> dict[str, Snapshot]:
    return _by_pk(MarketEntry.objects.select_related("flower"), entry_view)


def _advances() -> dict[str, Snapshot]:
    return _by_pk(Advance.objects.all(), advance_view)


def _settlements() -> dict[str, Snapshot]:
    # With its entries: the snapshot sealed at generation names them (a later state change's
    # does not, and is compared on what it has).
    return _by_pk(Settlement.objects.all(), settlement_view)


# -- distribution, day-end --


def _loads() -> dict[str, Snapshot]:
    rows = Load.objects.prefetch_related(_lines(LoadLine))
    return _by_pk(rows, lambda row: load_view(row, list(row.lines.all())))


def _refills() -> dict[str, Snapshot]:
    rows = Refill.objects.prefetch_related(_lines(RefillLine))
    return _by_pk(rows, lambda row: refill_view(row, list(row.lines.all())))


def _day_ends() -> dict[str, Snapshot]:
    rows = DayEnd.objects.prefetch_related(_lines(DayEndLine))
    return _by_pk(rows, lambda row: day_end_view(row, list(row.lines.all())))


# -- inspections, media, notifications, conflicts --


def _templates() -> dict[str, Snapshot]:
    # A template reads as its latest version, as every handler seals it.
    latest = {
        (row.template_id, row.version): row
        for row in TemplateVersion.objects.all().iterator(chunk_size=CHUNK)
    }
    return _by_pk(
        Template.objects.all(), lambda row: template_view(row, latest[row.pk, row.latest_version])
    )


def _inspections() -> dict[str, Snapshot]:
    # Soft-deleted: its delete seals no `after`, so a deleted row is not in the table's reading
    # (one undeleted behind the pipeline is "deleted in the chain, still in the table").
    return _by_pk(Inspection.objects.filter(deleted_at__isnull=True), inspection_view)


def _held_updates() -> dict[str, Snapshot]:
    rows = HeldUpdate.objects.all().iterator(chunk_size=CHUNK)
    return {f"{row.inspection_id}:{row.device_seq}": held_view(row).snapshot for row in rows}


def _media() -> dict[str, Snapshot]:
    return _by_pk(MediaAsset.objects.all(), media_view)


def _notifications() -> dict[str, Snapshot]:
    return _by_pk(Notification.objects.all(), notification_view)


def _conflicts() -> dict[str, Snapshot]:
    return _by_pk(Conflict.objects.all(), conflict_view)


def _devices() -> dict[str, Snapshot]:
    return _by_pk(Device.objects.select_related("user"), device_view)


def _never_emailed(snapshot: Snapshot) -> bool:
    return snapshot.get("emailed_at") is None and snapshot.get("email_status") == "generated"


def _always(_snapshot: Snapshot) -> bool:
    return True


READERS = [
    # Migrations seed the default and virtual locations and a customer's site is made with the
    # customer: rows without entries of their own. Those with entries must still match them.
    StateReader("location", _locations, blank=_always),
    StateReader("item", _items, derived=frozenset({"qty"})),
    StateReader("stock", _stock, blank=lambda snapshot: snapshot.get("qty") == 0),
    StateReader("movement", _movements),
    StateReader("asset", _assets),
    StateReader("customer", _customers),
    # `payment`: the payment taken with the sale, as answered, sealed once with it; the payment
    # and its allocations are records of their own.
    StateReader("sale", _sales, derived=frozenset({"payment"})),
    StateReader("invoice", _invoices),
    # An invoice has e-mail entries only once it is sent (or its sending fails).
    StateReader("invoice_email", _invoice_emails, blank=_never_emailed),
    StateReader("credit_note", _credit_notes),
    StateReader("payment", _payments),
    StateReader("refund", _refunds),
    StateReader("allocation", _allocations),
    StateReader("customer_deposit", _deposit_movements),
    StateReader("meter_reading", _meter_readings),
    StateReader("journal_entry", _journal_entries),
    # An account is sealed by the entry that opens it only when that entry posts to it: one
    # opened alongside (a market advance opens the farmer's payable, first posted to by the
    # settlement) has no entry of its own. Those sealed must still match.
    StateReader("journal_account", _journal_accounts, blank=_always),
    StateReader("market.flower", _flowers),
    # A farmer's balances are the journal's word as it stood: postings move them, not entries.
    StateReader("market.farmer", _farmers, derived=frozenset({"advance_outstanding", "payable"})),
    # The defaults (never stored, `created_at` None) until the first change.
    StateReader(
        "market.settings", _market_settings, blank=lambda snapshot: snapshot["created_at"] is None
    ),
    # `priced_entries`: what the posting priced as it was posted, sealed once, never a column.
    StateReader("market.rate", _rates, derived=frozenset({"priced_entries"})),
    StateReader("market.entry", _market_entries),
    StateReader("market.advance", _advances),
    StateReader("market.settlement", _settlements),
    StateReader("load", _loads),
    StateReader("refill", _refills),
    StateReader("day_end", _day_ends),
    StateReader("inspection.template", _templates),
    StateReader("inspection", _inspections),
    StateReader("inspection.held_update", _held_updates),
    StateReader("media", _media),
    StateReader("notification", _notifications),
    StateReader("conflict", _conflicts),
    # Each request moves a device's last-seen (so `online`) without an entry, and its user's
    # rename its `username`: compared are its id, owner, first-seen and revocation.
    StateReader("device", _devices, derived=frozenset({"last_seen_at", "online", "username"})),
]
