"""Reads for sales, always scoped by the caller: a sale, its invoice and credit note belong to
the selling location, so staff see only those at their locations (others answer 404)."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, replace
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
from quartermaster.core.types import Actor, View
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


@dataclass(frozen=True)
class CustomerView(View):
    """A customer (API.md "Customers"). Chain format 1: it began as the wire body of the time
    and stays as it is; the API may rename its fields in `to_wire`, never here."""

    id: UUID
    number: str
    name: str
    phone: str
    site_id: UUID
    client_temp_id: str
    created_at: datetime
    version: int
    user_id: UUID | None
    payment_terms: str
    credit_limit_minor: int | None
    meter_installed: bool
    meter_rate_minor: int
    # "": none on record (null on the wire and in the chain).
    email: str = ""

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "name": self.name,
            "phone": self.phone,
            "site": str(self.site_id),
            "client_temp_id": self.client_temp_id or None,
            "created_at": self.created_at.isoformat(),
            "version": self.version,
            "user": _text_or_none(self.user_id),
            "payment_terms": self.payment_terms,
            "credit_limit": None
            if self.credit_limit_minor is None
            else format_money(self.credit_limit_minor),
            "meter_installed": self.meter_installed,
            "meter_rate": format_money(self.meter_rate_minor),
            # Added after chain format 1 began: a customer sealed before it has no `email`
            # (core.audit_state compares only the fields a snapshot was sealed with).
            "email": self.email or None,
        }


def customer_view(customer: Customer) -> CustomerView:
    return CustomerView(
        id=customer.id,
        number=customer.number,
        name=customer.name,
        phone=customer.phone,
        site_id=customer.site_id,
        client_temp_id=customer.client_temp_id,
        created_at=customer.created_at,
        version=customer.version,
        user_id=customer.user_id,
        payment_terms=customer.payment_terms,
        credit_limit_minor=customer.credit_limit_minor,
        meter_installed=customer.meter_installed,
        meter_rate_minor=customer.meter_rate_minor,
        email=customer.email,
    )


def _text_or_none(value: UUID | int | None) -> str | None:
    return None if value is None else str(value)


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


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


@dataclass(frozen=True)
class InvoiceLineView:
    """One line of an invoice, as its invoice's encodings carry it."""

    line: int
    kind: str
    item_id: UUID
    description: str
    qty: int
    unit_price_minor: int
    net_minor: int
    tax_rate_bp: int
    tax_minor: int
    total_minor: int

    def snapshot(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "kind": self.kind,
            "item": str(self.item_id),
            "description": self.description,
            "qty": self.qty,
            "unit_price": format_money(self.unit_price_minor),
            "net": format_money(self.net_minor),
            "tax_rate_bp": self.tax_rate_bp,
            "tax": format_money(self.tax_minor),
            "total": format_money(self.total_minor),
        }


@dataclass(frozen=True)
class InvoiceView(View):
    """An invoice (API.md "Invoices"). Chain format 1: it began as the wire body of the time
    and stays as it is; the API may rename its fields in `to_wire`, never here."""

    id: UUID
    number: str
    sale_id: UUID
    customer_id: UUID
    lines: tuple[InvoiceLineView, ...]
    subtotal_minor: int
    tax_minor: int
    deposit_minor: int
    total_minor: int
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "transaction": str(self.sale_id),
            "customer": str(self.customer_id),
            "lines": [line.snapshot() for line in self.lines],
            "subtotal": format_money(self.subtotal_minor),
            "tax": format_money(self.tax_minor),
            "deposit": format_money(self.deposit_minor),
            "total": format_money(self.total_minor),
            "created_at": self.created_at.isoformat(),
        }


def invoice_view(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> InvoiceView:
    """`lines`: the invoice's lines when the caller has them (they are read otherwise)."""
    if lines is None:
        lines = list(invoice.lines.order_by("line_no"))
    return InvoiceView(
        id=invoice.id,
        number=invoice.number,
        sale_id=invoice.sale_id,
        customer_id=invoice.customer_id,
        lines=tuple(
            InvoiceLineView(
                line=line.line_no,
                kind=line.kind,
                item_id=line.item_id,
                description=line.description,
                qty=line.qty,
                unit_price_minor=line.unit_price_minor,
                net_minor=line.net_minor,
                tax_rate_bp=line.tax_rate_bp,
                tax_minor=line.tax_minor,
                total_minor=line.total_minor,
            )
            for line in lines
        ),
        subtotal_minor=invoice.subtotal_minor,
        tax_minor=invoice.tax_minor,
        deposit_minor=invoice.deposit_minor,
        total_minor=invoice.total_minor,
        created_at=invoice.created_at,
    )


@dataclass(frozen=True)
class InvoiceEmailView(View):
    """Whether an invoice has left the building by e-mail (its own record in the chain and the
    feed: the invoice's snapshot stays as it was recorded). Chain format 1, as on the wire."""

    invoice_id: UUID
    number: str
    email_status: str
    emailed_at: datetime | None

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "invoice": str(self.invoice_id),
            "number": self.number,
            "email_status": self.email_status,
            "emailed_at": _iso_or_none(self.emailed_at),
        }


def invoice_email_view(invoice: Invoice) -> InvoiceEmailView:
    return InvoiceEmailView(invoice.id, invoice.number, invoice.email_status, invoice.emailed_at)


def invoice_wire(invoice: Invoice) -> dict[str, Any]:
    """GET /invoices/{id}: the invoice, with its e-mail status."""
    return {
        **invoice_view(invoice).wire,
        "email_status": invoice.email_status,
        "emailed_at": _iso_or_none(invoice.emailed_at),
    }


@dataclass(frozen=True)
class CreditNoteView(View):
    """A credit note (API.md "Credit notes"). Chain format 1: it began as the wire body of the
    time and stays as it is; the API may rename its fields in `to_wire`, never here."""

    id: UUID
    number: str
    kind: str
    customer_id: UUID
    invoice_id: UUID | None
    movement_id: UUID | None
    reason: str
    # As stored with the note (an invoice's line snapshots, or the deposits refunded).
    lines: tuple[dict[str, Any], ...]
    total_minor: int
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "kind": self.kind,
            "customer": str(self.customer_id),
            "invoice": _text_or_none(self.invoice_id),
            "movement": _text_or_none(self.movement_id),
            "reason": self.reason,
            "lines": [dict(line) for line in self.lines],
            "total": format_money(self.total_minor),
            "created_at": self.created_at.isoformat(),
        }


def credit_note_view(note: CreditNote) -> CreditNoteView:
    return CreditNoteView(
        id=note.id,
        number=note.number,
        kind=note.kind,
        customer_id=note.customer_id,
        invoice_id=note.invoice_id,
        movement_id=note.movement_id,
        reason=note.reason,
        lines=tuple(note.lines),
        total_minor=note.total_minor,
        created_at=note.created_at,
    )


def sale_view(sale: SaleTransaction) -> SaleView:
    invoice = Invoice.objects.filter(sale=sale).first()
    note = CreditNote.objects.filter(invoice=invoice).first() if invoice else None
    return sale_view_of(
        sale,
        list(sale.lines.order_by("line_no")),
        invoice_view(invoice) if invoice else None,
        credit_note_view(note) if note else None,
    )


@dataclass(frozen=True)
class SaleLineView:
    """One line of a sale, as its sale's encodings carry it."""

    line: int
    item_id: UUID
    qty: int
    unit_price_minor: int
    serials: tuple[str, ...]
    meter_reading: int | None
    mode: str
    returned_serials: tuple[str, ...]

    def snapshot(self) -> dict[str, Any]:
        """An exchange's or a new connection's line says so; an outright sale's line reads as
        it always has (its audit snapshots unchanged)."""
        body: dict[str, Any] = {
            "line": self.line,
            "item": str(self.item_id),
            "qty": self.qty,
            "unit_price": format_money(self.unit_price_minor),
            "serials": list(self.serials),
            "meter_reading": self.meter_reading,
        }
        if self.mode != "sale":
            body |= {"mode": self.mode, "returned_serials": list(self.returned_serials)}
        return body


@dataclass(frozen=True)
class SaleView(View):
    """A sale with its invoice and credit note (API.md "Transactions"). Chain format 1: it
    began as the wire body of the time and stays as it is (its invoice and credit note as
    their own snapshots); the API may rename its fields in `to_wire`, never here."""

    id: UUID
    number: str
    status: str
    customer_id: UUID
    location_id: UUID
    lines: tuple[SaleLineView, ...]
    invoice: InvoiceView | None
    credit_note: CreditNoteView | None
    movement_id: UUID | None
    reversal_id: UUID | None
    void_reason: str
    client_temp_id: str
    created_by: str
    created_at: datetime
    confirmed_at: datetime | None
    voided_at: datetime | None
    version: int
    # The payment taken with the sale (its body as answered: the payment, its allocations and
    # what stayed unallocated); chain format 1 sealed it with the sale that took it.
    payment: dict[str, Any] | None = None

    def with_payment(self, payment: dict[str, Any]) -> SaleView:
        return replace(self, payment=payment)

    def to_wire(self) -> dict[str, Any]:
        body = self._fields()
        body["invoice"] = None if self.invoice is None else self.invoice.to_wire()
        body["credit_note"] = None if self.credit_note is None else self.credit_note.to_wire()
        return body

    def to_snapshot(self) -> dict[str, Any]:
        body = self._fields()
        body["invoice"] = None if self.invoice is None else self.invoice.to_snapshot()
        body["credit_note"] = None if self.credit_note is None else self.credit_note.to_snapshot()
        return body

    def _fields(self) -> dict[str, Any]:
        """The sale's own fields, in chain format 1's order (invoice and credit note in place)."""
        payment = {} if self.payment is None else {"payment": copy.deepcopy(self.payment)}
        return payment | {
            "id": str(self.id),
            "number": self.number,
            "status": self.status,
            "customer": str(self.customer_id),
            "location": str(self.location_id),
            "lines": [line.snapshot() for line in self.lines],
            "invoice": None,
            "credit_note": None,
            "movement": _text_or_none(self.movement_id),
            "reversal": _text_or_none(self.reversal_id),
            "void_reason": self.void_reason or None,
            "client_temp_id": self.client_temp_id or None,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "confirmed_at": _iso_or_none(self.confirmed_at),
            "voided_at": _iso_or_none(self.voided_at),
            "version": self.version,
        }


def sale_view_of(
    sale: SaleTransaction,
    lines: list[SaleLine],
    invoice: InvoiceView | None,
    credit_note: CreditNoteView | None,
) -> SaleView:
    """The sale as a view, from parts the caller already holds (no queries)."""
    return SaleView(
        id=sale.id,
        number=sale.number,
        status=sale.status,
        customer_id=sale.customer_id,
        location_id=sale.location_id,
        lines=tuple(
            SaleLineView(
                line=line.line_no,
                item_id=line.item_id,
                qty=line.qty,
                unit_price_minor=line.unit_price_minor,
                serials=tuple(line.serials),
                meter_reading=line.meter_reading,
                mode=line.mode,
                returned_serials=tuple(line.returned_serials),
            )
            for line in lines
        ),
        invoice=invoice,
        credit_note=credit_note,
        movement_id=sale.movement_id,
        reversal_id=sale.reversal_id,
        void_reason=sale.void_reason,
        client_temp_id=sale.client_temp_id,
        created_by=sale.created_by,
        created_at=sale.created_at,
        confirmed_at=sale.confirmed_at,
        voided_at=sale.voided_at,
        version=sale.version,
    )


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


@dataclass(frozen=True)
class MoneyRecordView(View):
    """A payment or a refund: money the customer paid us or we paid back. Chain format 1: it
    began as the wire body of the time and stays as it is."""

    id: UUID
    number: str
    customer_id: UUID
    amount_minor: int
    method: str
    client_temp_id: str
    created_by: str
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "number": self.number,
            "customer": str(self.customer_id),
            "amount": format_money(self.amount_minor),
            "method": self.method,
            "client_temp_id": self.client_temp_id or None,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


class PaymentView(MoneyRecordView):
    """A payment (API.md "Payments")."""


class RefundView(MoneyRecordView):
    """A refund of the customer's credit."""


def payment_view(payment: Payment) -> PaymentView:
    return PaymentView(
        id=payment.id,
        number=payment.number,
        customer_id=payment.customer_id,
        amount_minor=payment.amount_minor,
        method=payment.method,
        client_temp_id=payment.client_temp_id,
        created_by=payment.created_by,
        created_at=payment.created_at,
    )


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
        "customer": customer_view(customer).wire,
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


@dataclass(frozen=True)
class AllocationView(View):
    """Money applied to an invoice. Chain format 1: it began as the wire body of the time and
    stays as it is."""

    id: UUID
    customer_id: UUID
    invoice_id: UUID
    payment_id: UUID | None
    amount_minor: int
    created_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "customer": str(self.customer_id),
            "invoice": str(self.invoice_id),
            "payment": _text_or_none(self.payment_id),
            "amount": format_money(self.amount_minor),
            "created_at": self.created_at.isoformat(),
        }


def allocation_view(allocation: Allocation) -> AllocationView:
    return AllocationView(
        id=allocation.id,
        customer_id=allocation.customer_id,
        invoice_id=allocation.invoice_id,
        payment_id=allocation.payment_id,
        amount_minor=allocation.amount_minor,
        created_at=allocation.created_at,
    )


def refund_view(refund: Refund) -> RefundView:
    return RefundView(
        id=refund.id,
        number=refund.number,
        customer_id=refund.customer_id,
        amount_minor=refund.amount_minor,
        method=refund.method,
        client_temp_id=refund.client_temp_id,
        created_by=refund.created_by,
        created_at=refund.created_at,
    )


def last_meter_reading(customer_id: UUID) -> int | None:
    found = (
        MeterReading.objects.filter(customer_id=customer_id)
        .order_by("-id")
        .values_list("reading", flat=True)[:1]
    )
    return int(found[0]) if found else None


@dataclass(frozen=True)
class MeterReadingView(View):
    """A customer's meter read. Chain format 1: it began as the wire body of the time and
    stays as it is."""

    id: int
    customer_id: UUID
    reading: int
    previous: int | None
    replaced: bool
    sale_id: UUID | None
    recorded_by: str
    recorded_at: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "customer": str(self.customer_id),
            "reading": self.reading,
            "previous": self.previous,
            "replaced": self.replaced,
            "sale": _text_or_none(self.sale_id),
            "recorded_by": self.recorded_by,
            "recorded_at": self.recorded_at.isoformat(),
        }


def meter_reading_view(row: MeterReading) -> MeterReadingView:
    return MeterReadingView(
        id=row.id,
        customer_id=row.customer_id,
        reading=row.reading,
        previous=row.previous,
        replaced=row.replaced,
        sale_id=row.sale_id,
        recorded_by=row.recorded_by,
        recorded_at=row.recorded_at,
    )


@dataclass(frozen=True)
class DepositMovementView(View):
    """Deposit money taken or paid back on returnable items; audited, never replicated. Chain
    format 1 (its id a number, as the row's): written apart from the wire on purpose."""

    id: int
    customer_id: UUID
    item_id: UUID
    qty: int
    amount_minor: int
    source: str

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "customer": str(self.customer_id),
            "item": str(self.item_id),
            "qty": self.qty,
            "amount": format_money(self.amount_minor),
            "source": self.source,
        }


def deposit_movement_view(row: DepositMovement) -> DepositMovementView:
    return DepositMovementView(
        row.pk, row.customer_id, row.item_id, row.qty, row.amount_minor, row.source
    )


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
