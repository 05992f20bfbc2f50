"""The current rows of each audited table as the snapshots the chain seals, for
`audit verify --state` (core.audit_state). Built by the same view functions the handlers use,
so a row nobody touched outside the pipeline reads exactly as its last audit entry.

Covered: locations, items, stock, customers, sales, invoices, credit notes, payments. (The
journal has `journal verify`; market records are not covered yet.)
"""

from __future__ import annotations

from quartermaster.core.audit_state import Snapshot, StateReader
from quartermaster.inventory.models import Item, Location, Stock
from quartermaster.inventory.selectors import item_view, location_view, stock_view
from quartermaster.sales.models import CreditNote, Customer, Invoice, Payment, SaleTransaction
from quartermaster.sales.selectors import (
    credit_note_view,
    customer_view,
    invoice_view,
    payment_view,
    sale_view,
)


def _locations() -> dict[str, Snapshot]:
    return {str(row.pk): location_view(row).snapshot for row in Location.objects.all()}


def _items() -> dict[str, Snapshot]:
    live = Item.objects.filter(deleted_at__isnull=True)
    return {str(row.pk): item_view(row, 0).snapshot for row in live}


def _stock() -> dict[str, Snapshot]:
    views = (
        stock_view(row.item_id, row.location_id, row.qty, row.condition)
        for row in Stock.objects.all()
    )
    return {view.key: view.snapshot for view in views}


def _customers() -> dict[str, Snapshot]:
    return {str(row.pk): customer_view(row).snapshot for row in Customer.objects.all()}


def _sales() -> dict[str, Snapshot]:
    return {str(row.pk): sale_view(row).snapshot for row in SaleTransaction.objects.all()}


def _invoices() -> dict[str, Snapshot]:
    return {
        str(row.pk): invoice_view(row, list(row.lines.order_by("line_no"))).snapshot
        for row in Invoice.objects.all()
    }


def _credit_notes() -> dict[str, Snapshot]:
    return {str(row.pk): credit_note_view(row).snapshot for row in CreditNote.objects.all()}


def _payments() -> dict[str, Snapshot]:
    return {str(row.pk): payment_view(row).snapshot for row in Payment.objects.all()}


READERS = [
    # Migrations seed the default and virtual locations and a customer's site is made with the
    # customer: rows without entries of their own. Those with entries must still match them.
    StateReader("location", _locations, blank=lambda _snapshot: True),
    StateReader("item", _items, derived=frozenset({"qty"})),
    StateReader("stock", _stock, blank=lambda snapshot: snapshot.get("qty") == 0),
    StateReader("customer", _customers),
    StateReader("sale", _sales),
    StateReader("invoice", _invoices),
    StateReader("credit_note", _credit_notes),
    StateReader("payment", _payments),
]
