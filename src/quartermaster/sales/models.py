"""Customers, sale transactions, invoices, credit notes and payments.

Invoices, credit notes and payments are ledger records: written once, never edited or deleted.
A sale transaction is a document whose status moves draft → confirmed → voided; confirming raises
its invoice and voiding its credit note, each with the stock movement, in one transaction.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from quartermaster.inventory.models import Item, Location, Movement
from quartermaster.sales.invariants import (
    CreditNoteKind,
    InvoiceEmailStatus,
    InvoiceLineKind,
    PaymentTerms,
    SaleMode,
    SaleStatus,
)


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    phone = models.CharField(max_length=30, blank=True, default="")
    # Where invoices are e-mailed when a request names no address ("": none on record).
    email = models.CharField(max_length=254, blank=True, default="")
    # Where the goods and cylinders a customer holds sit (a location of kind customer_site).
    site = models.OneToOneField(Location, on_delete=models.PROTECT, related_name="customer")
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    version = models.BigIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    # The party user who signs in as this customer: reads its statement and its feed rows.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="customer",
    )
    # How the customer pays (sales.credit): a cash customer pays at the sale; a credit customer
    # owes up to `credit_limit_minor` (None: no limit).
    payment_terms = models.CharField(
        max_length=10, choices=PaymentTerms.choices, default=PaymentTerms.CREDIT
    )
    credit_limit_minor = models.BigIntegerField(null=True, blank=True)
    # A metered customer is billed (reading - last reading) x meter_rate_minor per unit.
    meter_installed = models.BooleanField(default=False)
    meter_rate_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_limit_minor__isnull=True) | Q(credit_limit_minor__gte=0),
                name="customer_credit_limit_not_negative",
            ),
            models.CheckConstraint(
                condition=Q(meter_rate_minor__gte=0), name="customer_meter_rate_not_negative"
            ),
        ]


class SaleTransaction(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="sales")
    # The selling location: stock leaves from here on confirm.
    location = models.ForeignKey(Location, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=SaleStatus.choices, default=SaleStatus.DRAFT)
    movement = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reversal = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    void_reason = models.CharField(max_length=500, blank=True, default="")
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)
    version = models.BigIntegerField(default=1)


class SaleLine(models.Model):
    sale = models.ForeignKey(SaleTransaction, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    qty = models.BigIntegerField()
    unit_price_minor = models.BigIntegerField()
    serials = models.JSONField(default=list)
    # A metered line: the meter's reading this sale billed up to (sales.credit).
    meter_reading = models.BigIntegerField(null=True, blank=True)
    # How a returnable item is sold: outright (sale), for the customer's empty (exchange), or
    # with a deposit charged (new connection).
    mode = models.CharField(max_length=10, choices=SaleMode.choices, default=SaleMode.SALE)
    # An exchange's empties taken back, by serial (serialized items).
    returned_serials = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sale", "line_no"], name="sale_line_unique"),
            models.CheckConstraint(condition=Q(qty__gt=0), name="sale_line_qty_positive"),
            models.CheckConstraint(
                condition=Q(unit_price_minor__gte=0), name="sale_line_price_not_negative"
            ),
        ]


class Invoice(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    # One invoice per sale, ever: a second confirm cannot raise a second invoice.
    sale = models.OneToOneField(SaleTransaction, on_delete=models.PROTECT, related_name="invoice")
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    subtotal_minor = models.BigIntegerField()
    tax_minor = models.BigIntegerField()
    deposit_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    # Whether the invoice has left the building by e-mail (generated → emailed): a delivery
    # status, not part of the ledger record; its figures and lines are never edited. Kept apart
    # from any payment state of the invoice.
    email_status = models.CharField(
        max_length=10, choices=InvoiceEmailStatus.choices, default=InvoiceEmailStatus.GENERATED
    )
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(
                    total_minor=models.F("subtotal_minor")
                    + models.F("tax_minor")
                    + models.F("deposit_minor")
                ),
                name="invoice_total_adds_up",
            ),
        ]


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    line_no = models.PositiveIntegerField()
    kind = models.CharField(max_length=10, choices=InvoiceLineKind.choices)
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    description = models.CharField(max_length=300)
    qty = models.BigIntegerField()
    unit_price_minor = models.BigIntegerField()
    net_minor = models.BigIntegerField()
    tax_rate_bp = models.PositiveIntegerField()
    tax_minor = models.BigIntegerField()
    total_minor = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invoice", "line_no"], name="invoice_line_unique"),
        ]


class CreditNote(models.Model):
    """A credit to the customer: a voided sale's invoice, or deposits refunded on a return."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    kind = models.CharField(max_length=20, choices=CreditNoteKind.choices)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="credit_notes")
    # At most one void credit note per invoice.
    invoice = models.OneToOneField(
        Invoice, null=True, blank=True, on_delete=models.PROTECT, related_name="credit_note"
    )
    movement = models.ForeignKey(
        Movement, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=500)
    lines = models.JSONField(default=list)
    total_minor = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(total_minor__gt=0), name="credit_note_positive"),
        ]


class Payment(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="payments")
    amount_minor = models.BigIntegerField()
    method = models.CharField(max_length=30)
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="payment_positive"),
        ]


class CustomerAccount(models.Model):
    """A customer's money, kept by guarded UPDATEs (sales.credit), never read-modify-written:
    `balance_minor` is what the customer owes net (invoices - credit notes - payments + refunds;
    negative: we owe them); `credit_minor` is money received or credited and not yet allocated
    to an invoice. Always `balance = open amounts of invoices - credit`."""

    customer = models.OneToOneField(
        Customer, primary_key=True, on_delete=models.PROTECT, related_name="account"
    )
    balance_minor = models.BigIntegerField(default=0)
    credit_minor = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(credit_minor__gte=0), name="customer_account_credit_not_negative"
            ),
        ]


class Allocation(models.Model):
    """Money applied to an invoice, append-only: from a payment (`payment` set) or from the
    customer's credit (an overpayment, a credit note). An invoice's amount paid is the sum."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="allocations")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="allocations")
    payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.PROTECT, related_name="allocations"
    )
    amount_minor = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="allocation_positive"),
        ]


class Refund(models.Model):
    """Money paid back to a customer out of their credit balance. Append-only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    number = models.CharField(max_length=20, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="refunds")
    amount_minor = models.BigIntegerField()
    method = models.CharField(max_length=30)
    client_temp_id = models.CharField(max_length=100, blank=True, default="")
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount_minor__gt=0), name="refund_positive"),
        ]


class MeterReading(models.Model):
    """A metered customer's meter, read: by a metered sale (`sale` set) or on its own (the
    first reading when a meter is installed, or a replaced meter's). Append-only; the latest
    (highest id) is the one the next sale bills from."""

    id = models.BigAutoField(primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="meter_readings")
    reading = models.BigIntegerField()
    previous = models.BigIntegerField(null=True, blank=True)
    # A new meter: its reading may be below the last one of the meter it replaced.
    replaced = models.BooleanField(default=False)
    sale = models.ForeignKey(
        SaleTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_by = models.CharField(max_length=150)
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(reading__gte=0), name="meter_reading_not_negative"),
        ]


class DepositMovement(models.Model):
    """The deposits a customer holds with us, per item: append-only. A deposit charged on an
    invoice adds (qty, amount); a refund on return, or a voided invoice, takes away. The sum
    per customer is the balance of its `customer_deposits:<customer>` journal account."""

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="deposits")
    item = models.ForeignKey(Item, on_delete=models.PROTECT, related_name="+")
    qty = models.BigIntegerField()
    amount_minor = models.BigIntegerField()
    # What caused it: "invoice:<id>", "void:<invoice id>", "return:<movement id>".
    source = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["customer", "item"])]
        constraints = [
            models.CheckConstraint(
                condition=~Q(qty=0) | ~Q(amount_minor=0), name="deposit_movement_moves_something"
            ),
        ]
