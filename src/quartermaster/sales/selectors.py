"""Reads for sales, always scoped by the caller: a sale, its invoice and credit note belong to
the selling location, so staff see only those at their locations (others answer 404)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import tzinfo
from typing import Any
from uuid import UUID

from django.db.models import Q, QuerySet

from quartermaster.core.models import AuditEntry
from quartermaster.core.money import format_money
from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, uuid_key
from quartermaster.core.rows import read_rows, uuid_param
from quartermaster.core.types import Actor
from quartermaster.documents.types import InvoiceDocument, MeterReading
from quartermaster.documents.types import InvoiceLine as InvoiceDocumentLine
from quartermaster.identity.permissions import own_records_only, sees_every_location
from quartermaster.sales.models import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
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
    """Invoices (debits), credit notes and payments (credits) in time order, with the running
    balance the customer owes after each (negative: we owe them). Invoices and credit notes
    are those `actor` may see; payments belong to the customer, not to a location."""
    entries: list[tuple[Any, int, str, dict[str, Any], int, int]] = []
    invoices, notes = _statement_documents(customer, actor)
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
    entries.sort(key=lambda e: (e[0], e[1], e[2]))
    balance = 0
    debits = credits = 0
    rows = []
    for at, _, number, extra, debit, credit in entries:
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
    return {
        "customer": customer_view(customer),
        "entries": rows,
        "total_debit": format_money(debits),
        "total_credit": format_money(credits),
        "balance": format_money(balance),
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


def invoice_meter_reading(invoice: Invoice) -> MeterReading | None:
    """The meter reading an invoice bills: the one place the PDF reads it. Sales do not record
    meter readings yet (metered customers are issue 12, item 4, on another branch): until they
    do, no invoice has one and the PDF shows none."""
    return None
