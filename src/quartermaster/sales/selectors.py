"""Reads for sales, always scoped by the caller: a sale, its invoice and credit note belong to
the selling location, so staff see only those at their locations (others answer 404)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from uuid import UUID

from django.db.models import F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from quartermaster.core.models import AuditEntry
from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, uuid_key
from quartermaster.core.rows import read_rows, uuid_param
from quartermaster.core.types import Actor
from quartermaster.documents.types import InvoiceDocument
from quartermaster.documents.types import InvoiceLine as InvoiceDocumentLine
from quartermaster.documents.types import MeterReading as BilledMeterReading
from quartermaster.identity.permissions import own_records_only, sees_every_location
from quartermaster.sales import invariants
from quartermaster.sales.models import (
    Allocation,
    CreditNote,
    Customer,
    CustomerAccount,
    DepositMovement,
    Invoice,
    InvoiceLine,
    MeterReading,
    Payment,
    Refund,
    SaleLine,
    SaleTransaction,
)


def get_customers(customer_ids: Iterable[UUID]) -> dict[UUID, Customer]:
    """The customers among `customer_ids`, by id, in one plain statement (their sites are not
    read: a caller that needs them reads them with its other locations)."""
    ids = [uuid_param(customer_id) for customer_id in dict.fromkeys(customer_ids)]
    if not ids:
        return {}
    found = read_rows(Customer, f"id IN ({', '.join(['%s'] * len(ids))})", ids)
    return {customer.pk: customer for customer in found}


def customer_view(customer: Customer) -> dict[str, Any]:
    return {
        "id": str(customer.id),
        "number": customer.number,
        "name": customer.name,
        "phone": customer.phone,
        "site": str(customer.site_id),
        "client_temp_id": customer.client_temp_id or None,
        "created_at": customer.created_at.isoformat(),
        "version": customer.version,
        "user": str(customer.user_id) if customer.user_id else None,
        "payment_terms": customer.payment_terms,
        "credit_limit": None
        if customer.credit_limit_minor is None
        else format_money(customer.credit_limit_minor),
        "meter_installed": customer.meter_installed,
        "meter_rate": format_money(customer.meter_rate_minor),
    }


def get_customer(customer_id: UUID) -> Customer | None:
    return Customer.objects.select_related("site").filter(pk=customer_id).first()


CUSTOMER_ORDER = Keyset(fields=(text_key("name"), uuid_key("id")))


def list_customers(*, page: PageRequest) -> Page[Customer]:
    return CUSTOMER_ORDER.page(Customer.objects.all(), page)


def _visible_sales(actor: Actor) -> QuerySet[SaleTransaction]:
    query = SaleTransaction.objects.all()
    if not sees_every_location(actor):
        query = query.filter(location_id__in=list(actor.location_ids))
    return query


def invoice_view(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> dict[str, Any]:
    """`lines`: the invoice's lines when the caller has them (they are read otherwise)."""
    if lines is None:
        lines = list(invoice.lines.order_by("line_no"))
    return {
        "id": str(invoice.id),
        "number": invoice.number,
        "transaction": str(invoice.sale_id),
        "customer": str(invoice.customer_id),
        "lines": [
            {
                "line": line.line_no,
                "kind": line.kind,
                "item": str(line.item_id),
                "description": line.description,
                "qty": line.qty,
                "unit_price": format_money(line.unit_price_minor),
                "net": format_money(line.net_minor),
                "tax_rate_bp": line.tax_rate_bp,
                "tax": format_money(line.tax_minor),
                "total": format_money(line.total_minor),
            }
            for line in lines
        ],
        "subtotal": format_money(invoice.subtotal_minor),
        "tax": format_money(invoice.tax_minor),
        "deposit": format_money(invoice.deposit_minor),
        "total": format_money(invoice.total_minor),
        "created_at": invoice.created_at.isoformat(),
    }


def invoice_email_view(invoice: Invoice) -> dict[str, Any]:
    """Whether an invoice has left the building by e-mail (its own record in the chain and the
    feed: the invoice's snapshot stays as it was recorded)."""
    return {
        "invoice": str(invoice.id),
        "number": invoice.number,
        "email_status": invoice.email_status,
        "emailed_at": invoice.emailed_at.isoformat() if invoice.emailed_at else None,
    }


def invoice_wire(invoice: Invoice) -> dict[str, Any]:
    """GET /invoices/{id}: the invoice, with its e-mail status."""
    return {
        **invoice_view(invoice),
        "email_status": invoice.email_status,
        "emailed_at": invoice.emailed_at.isoformat() if invoice.emailed_at else None,
    }


def credit_note_view(note: CreditNote) -> dict[str, Any]:
    return {
        "id": str(note.id),
        "number": note.number,
        "kind": note.kind,
        "customer": str(note.customer_id),
        "invoice": str(note.invoice_id) if note.invoice_id else None,
        "movement": str(note.movement_id) if note.movement_id else None,
        "reason": note.reason,
        "lines": note.lines,
        "total": format_money(note.total_minor),
        "created_at": note.created_at.isoformat(),
    }


def sale_view(sale: SaleTransaction) -> dict[str, Any]:
    invoice = Invoice.objects.filter(sale=sale).first()
    note = CreditNote.objects.filter(invoice=invoice).first() if invoice else None
    return sale_view_of(
        sale,
        list(sale.lines.order_by("line_no")),
        invoice_view(invoice) if invoice else None,
        credit_note_view(note) if note else None,
    )


def sale_view_of(
    sale: SaleTransaction,
    lines: list[SaleLine],
    invoice: dict[str, Any] | None,
    credit_note: dict[str, Any] | None,
) -> dict[str, Any]:
    """The sale on the wire, from parts the caller already holds (no queries)."""
    return {
        "id": str(sale.id),
        "number": sale.number,
        "status": sale.status,
        "customer": str(sale.customer_id),
        "location": str(sale.location_id),
        "lines": [
            {
                "line": line.line_no,
                "item": str(line.item_id),
                "qty": line.qty,
                "unit_price": format_money(line.unit_price_minor),
                "serials": list(line.serials),
                "meter_reading": line.meter_reading,
                **_line_mode(line),
            }
            for line in lines
        ],
        "invoice": invoice,
        "credit_note": credit_note,
        "movement": str(sale.movement_id) if sale.movement_id else None,
        "reversal": str(sale.reversal_id) if sale.reversal_id else None,
        "void_reason": sale.void_reason or None,
        "client_temp_id": sale.client_temp_id or None,
        "created_by": sale.created_by,
        "created_at": sale.created_at.isoformat(),
        "confirmed_at": sale.confirmed_at.isoformat() if sale.confirmed_at else None,
        "voided_at": sale.voided_at.isoformat() if sale.voided_at else None,
        "version": sale.version,
    }


def _line_mode(line: SaleLine) -> dict[str, Any]:
    """An exchange's or a new connection's line says so; an outright sale's line reads as it
    always has (its audit snapshots unchanged)."""
    if line.mode == "sale":
        return {}
    return {"mode": line.mode, "returned_serials": list(line.returned_serials)}


def customer_deposits(customer: Customer) -> dict[str, Any]:
    """The deposits `customer` holds, per item still held, and their sum: the balance of its
    customer_deposits journal account."""
    rows = (
        DepositMovement.objects.filter(customer=customer)
        .values("item_id")
        .annotate(qty=Sum("qty"), amount=Sum("amount_minor"))
        .order_by("item_id")
    )
    held = [
        (str(row["item_id"]), int(row["qty"]), int(row["amount"]))
        for row in rows
        if row["qty"] or row["amount"]
    ]
    return {
        "customer": str(customer.id),
        "balance": format_money(sum(amount for _, _, amount in held)),
        "lines": [
            {"item": item, "qty": qty, "amount": format_money(amount)} for item, qty, amount in held
        ],
    }


def get_sale(*, actor: Actor, sale_id: UUID) -> SaleTransaction | None:
    return _visible_sales(actor).filter(pk=sale_id).first()


def get_invoice(*, actor: Actor, invoice_id: UUID) -> Invoice | None:
    return Invoice.objects.filter(pk=invoice_id, sale__in=_visible_sales(actor)).first()


def get_credit_note(*, actor: Actor, credit_note_id: UUID) -> CreditNote | None:
    note = CreditNote.objects.filter(pk=credit_note_id).first()
    if note is None or sees_every_location(actor):
        return note
    if note.invoice_id and get_invoice(actor=actor, invoice_id=note.invoice_id) is not None:
        return note
    if note.movement_id and note.movement is not None:
        touched = note.movement.lines.values_list("to_location_id", flat=True)
        if set(touched) & set(actor.location_ids):
            return note
    return None


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "id": str(payment.id),
        "number": payment.number,
        "customer": str(payment.customer_id),
        "amount": format_money(payment.amount_minor),
        "method": payment.method,
        "client_temp_id": payment.client_temp_id or None,
        "created_by": payment.created_by,
        "created_at": payment.created_at.isoformat(),
    }


def _statement_documents(
    customer: Customer, actor: Actor
) -> tuple[QuerySet[Invoice], QuerySet[CreditNote]]:
    """The customer's invoices and credit notes the actor may see: all of them for unscoped
    roles and for the customer's own party user; for staff, those of their locations (the same
    rule as reading one invoice or credit note: `get_invoice`, `get_credit_note`)."""
    invoices = Invoice.objects.filter(customer=customer)
    notes = CreditNote.objects.filter(customer=customer)
    if sees_every_location(actor) or own_records_only(actor, "statement.read"):
        return invoices, notes
    locations = list(actor.location_ids)
    visible_notes = Q(invoice__sale__location_id__in=locations) | Q(
        invoice__isnull=True, movement__lines__to_location_id__in=locations
    )
    return (
        invoices.filter(sale__location_id__in=locations),
        notes.filter(pk__in=CreditNote.objects.filter(visible_notes).values("pk")),
    )


def customer_statement(customer: Customer, *, actor: Actor) -> dict[str, Any]:
    """Invoices and refunds (debits), credit notes and payments (credits) in time order, with
    the running balance the customer owes after each (negative: we owe them); then the open
    invoices and their ageing, and the customer's unapplied credit. Invoices and credit notes
    are those `actor` may see; payments and refunds belong to the customer, not a location."""
    invoices, notes = _statement_documents(customer, actor)
    balance = 0
    debits = credits = 0
    rows = []
    for at, _, number, extra, debit, credit in _statement_entries(customer, invoices, notes):
        balance += debit - credit
        debits += debit
        credits += credit
        rows.append(
            {
                **extra,
                "number": number,
                "date": at.isoformat(),
                "debit": format_money(debit),
                "credit": format_money(credit),
                "balance": format_money(balance),
            }
        )
    visible = set(invoices.values_list("id", flat=True))
    items = [item for item in open_items(customer.pk) if item.invoice_id in visible]
    return {
        "customer": customer_view(customer),
        "entries": rows,
        "total_debit": format_money(debits),
        "total_credit": format_money(credits),
        "balance": format_money(balance),
        **open_items_and_aging(items, now=timezone.now()),
        "credit": format_money(customer_credit(customer.pk)),
    }


_StatementEntry = tuple[Any, int, str, dict[str, Any], int, int]


def _statement_entries(
    customer: Customer, invoices: QuerySet[Invoice], notes: QuerySet[CreditNote]
) -> list[_StatementEntry]:
    """(time, kind order, number, fields, debit, credit) of each document, in time order."""
    entries: list[_StatementEntry] = []
    for invoice in invoices:
        entries.append(
            (
                invoice.created_at,
                0,
                invoice.number,
                {"type": "invoice", "id": str(invoice.id), "transaction": str(invoice.sale_id)},
                invoice.total_minor,
                0,
            )
        )
    for note in notes:
        entries.append(
            (
                note.created_at,
                1,
                note.number,
                {"type": "credit_note", "id": str(note.id), "kind": note.kind},
                0,
                note.total_minor,
            )
        )
    for payment in Payment.objects.filter(customer=customer):
        entries.append(
            (
                payment.created_at,
                2,
                payment.number,
                {"type": "payment", "id": str(payment.id), "method": payment.method},
                0,
                payment.amount_minor,
            )
        )
    for refund in Refund.objects.filter(customer=customer):
        entries.append(
            (
                refund.created_at,
                3,
                refund.number,
                {"type": "refund", "id": str(refund.id), "method": refund.method},
                refund.amount_minor,
                0,
            )
        )
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    return entries


@dataclass(frozen=True)
class OpenInvoice:
    """An invoice of a customer with money still owed on it."""

    invoice_id: UUID
    number: str
    created_at: datetime
    total_minor: int
    paid_minor: int

    @property
    def open_minor(self) -> int:
        return self.total_minor - self.paid_minor


# What has been applied to an invoice, summed over its allocations.
_PAID = Coalesce(Sum("allocations__amount_minor"), 0)


def open_items(customer_id: UUID) -> list[OpenInvoice]:
    """The customer's open invoices, oldest first: not voided (no credit note), not fully paid."""
    rows = (
        Invoice.objects.filter(customer_id=customer_id, credit_note__isnull=True)
        .annotate(paid=_PAID)
        .filter(paid__lt=F("total_minor"))
        .order_by("created_at", "number")
        .values_list("id", "number", "created_at", "total_minor", "paid")
    )
    return [OpenInvoice(*row) for row in rows]


def open_items_and_aging(items: list[OpenInvoice], *, now: datetime) -> dict[str, Any]:
    """The statement's `open_items` and `aging`: what is open, by whole days since each invoice
    was raised (0-30, 31-60, 61-90, over 90)."""
    aging = dict.fromkeys(invariants.AGING_BUCKETS, 0)
    rows = []
    for item in items:
        age = max(0, (now - item.created_at).days)
        aging[invariants.aging_bucket(age)] += item.open_minor
        rows.append(
            {
                "invoice": str(item.invoice_id),
                "number": item.number,
                "date": item.created_at.isoformat(),
                "age_days": age,
                "total": format_money(item.total_minor),
                "amount_paid": format_money(item.paid_minor),
                "open": format_money(item.open_minor),
            }
        )
    return {
        "open_items": rows,
        "aging": {bucket: format_money(minor) for bucket, minor in aging.items()},
    }


def customer_credit(customer_id: UUID) -> int:
    """Money received or credited and not yet applied to an invoice."""
    found = CustomerAccount.objects.filter(pk=customer_id).values_list("credit_minor", flat=True)
    return int(found[0]) if found else 0


def invoice_payment_state(invoice: Invoice) -> dict[str, Any]:
    """What has been applied to the invoice and whether it is paid: `payment_status` is
    `open`, `paid`, or `void` (a credit note cancelled it)."""
    paid = (
        Invoice.objects.filter(pk=invoice.pk).annotate(paid=_PAID).values_list("paid", flat=True)
    )[0]
    if CreditNote.objects.filter(invoice=invoice).exists():
        status = "void"
    else:
        status = "paid" if paid >= invoice.total_minor else "open"
    return {"amount_paid": format_money(paid), "payment_status": status}


def allocation_view(allocation: Allocation) -> dict[str, Any]:
    return {
        "id": str(allocation.id),
        "customer": str(allocation.customer_id),
        "invoice": str(allocation.invoice_id),
        "payment": str(allocation.payment_id) if allocation.payment_id else None,
        "amount": format_money(allocation.amount_minor),
        "created_at": allocation.created_at.isoformat(),
    }


def refund_view(refund: Refund) -> dict[str, Any]:
    return {
        "id": str(refund.id),
        "number": refund.number,
        "customer": str(refund.customer_id),
        "amount": format_money(refund.amount_minor),
        "method": refund.method,
        "client_temp_id": refund.client_temp_id or None,
        "created_by": refund.created_by,
        "created_at": refund.created_at.isoformat(),
    }


def last_meter_reading(customer_id: UUID) -> int | None:
    found = (
        MeterReading.objects.filter(customer_id=customer_id)
        .order_by("-id")
        .values_list("reading", flat=True)[:1]
    )
    return int(found[0]) if found else None


def meter_reading_view(row: MeterReading) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "customer": str(row.customer_id),
        "reading": row.reading,
        "previous": row.previous,
        "replaced": row.replaced,
        "sale": str(row.sale_id) if row.sale_id else None,
        "recorded_by": row.recorded_by,
        "recorded_at": row.recorded_at.isoformat(),
    }


def invoice_document(invoice: Invoice, *, issuer: str, zone: tzinfo) -> InvoiceDocument:
    """The invoice as its PDF shows it, its time in `zone`, with the audit entry that recorded
    it (its seq and hash go on the page and in its QR code)."""
    sale = SaleTransaction.objects.only("number").get(pk=invoice.sale_id)
    customer = Customer.objects.only("number", "name", "phone").get(pk=invoice.customer_id)
    recorded = (
        AuditEntry.objects.filter(entity_type="invoice", entity_id=str(invoice.id))
        .order_by("seq")
        .only("seq", "hash")
        .first()
    )
    return InvoiceDocument(
        number=invoice.number,
        issued_at=invoice.created_at.astimezone(zone),
        issuer=issuer,
        customer_number=customer.number,
        customer_name=customer.name,
        customer_phone=customer.phone,
        sale_number=sale.number,
        lines=tuple(
            InvoiceDocumentLine(
                line=line.line_no,
                kind=line.kind,
                description=line.description,
                qty=line.qty,
                unit_price_minor=line.unit_price_minor,
                net_minor=line.net_minor,
                tax_rate_bp=line.tax_rate_bp,
                tax_minor=line.tax_minor,
                total_minor=line.total_minor,
            )
            for line in invoice.lines.order_by("line_no")
        ),
        subtotal_minor=invoice.subtotal_minor,
        tax_minor=invoice.tax_minor,
        deposit_minor=invoice.deposit_minor,
        total_minor=invoice.total_minor,
        audit_seq=recorded.seq if recorded else None,
        audit_hash=recorded.hash if recorded else None,
        meter=invoice_meter_reading(invoice),
    )


def invoice_meter_reading(invoice: Invoice) -> BilledMeterReading | None:
    """The meter reading an invoice bills (a metered sale's), with the rate it was billed at:
    the one place the PDF reads it; None for an invoice of no metered sale."""
    reading = MeterReading.objects.filter(sale_id=invoice.sale_id).order_by("id").last()
    if reading is None:
        return None
    metered = (
        SaleLine.objects.filter(sale_id=invoice.sale_id, meter_reading__isnull=False)
        .order_by("line_no")
        .last()
    )
    return BilledMeterReading(
        previous=reading.previous if reading.previous is not None else reading.reading,
        current=reading.reading,
        rate_minor=metered.unit_price_minor if metered is not None else 0,
        replaced=reading.replaced,
    )


def customers_of_users(user_ids: Iterable[UUID]) -> dict[UUID, UUID]:
    """User id → the customer each signs in as, for those linked (identity.parties)."""
    rows = Customer.objects.filter(user_id__in=list(user_ids)).values_list("user_id", "id")
    return {user_id: customer_id for user_id, customer_id in rows}
