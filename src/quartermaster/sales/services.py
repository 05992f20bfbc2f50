"""Command handlers for sales: customers, sale transactions (record, confirm, void), returns of
serialized assets (with deposit refunds) and payments.

Confirm, in one transaction: lock the sale row, move its stock to the customer's site through
`inventory.ledger.move_stock` (which locks every stock row in primary-key order), raise the
invoice, mark the sale confirmed. Any failure anywhere rolls all of it back. Void is the mirror
image: a reversing movement and a credit note, never an edit or a delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar
from uuid import UUID, uuid4

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import BulkCommand, Command
from quartermaster.core.conflicts import VersionedUpdate
from quartermaster.core.errors import Conflict, DomainError, Invalid, NotFound
from quartermaster.core.money import MoneyEdit, format_money
from quartermaster.core.numbering import next_number
from quartermaster.core.rows import insert_rows
from quartermaster.core.types import Change, Context, Outcome, Record
from quartermaster.identity.models import Role, User
from quartermaster.identity.permissions import authorize_beyond
from quartermaster.inventory import invariants as inventory_rules
from quartermaster.inventory.invariants import AssetState, Condition, LocationKind, MovementKind
from quartermaster.inventory.ledger import (
    AssetRule,
    LineSpec,
    MoveResult,
    move_stock,
    reversing_lines,
)
from quartermaster.inventory.models import Item, Location
from quartermaster.inventory.services import own_location
from quartermaster.notifications.invariants import clean_email
from quartermaster.notifications.services import queue_email
from quartermaster.sales import credit, invariants, postings, recording
from quartermaster.sales.credit import RecordMeterReading, RecordPayment, RecordRefund, SalePayment
from quartermaster.sales.invariants import CreditNoteKind, InvoiceEmailStatus, SaleStatus
from quartermaster.sales.models import (
    CreditNote,
    Customer,
    Invoice,
    InvoiceLine,
    SaleTransaction,
)
from quartermaster.sales.selectors import (
    InvoiceView,
    credit_note_view,
    customer_view,
    get_customer,
    invoice_email_view,
    invoice_view,
    sale_view,
)

# Payments, refunds and meter readings are commands of sales.credit, named here for the
# modules that import the sales commands from their usual place.
__all__ = ["RecordMeterReading", "RecordPayment", "RecordRefund"]


class InvalidState(Conflict):
    code = "invalid_state"


def _customer_or_invalid(customer_id: UUID, field: str = "customer") -> Customer:
    customer = get_customer(customer_id)
    if customer is None:
        raise Invalid.field(field, "unknown customer")
    return customer


# Wire field names (API.md, and batch-sync payloads validated straight into these commands) are
# kept as aliases where they collide with `Command.name` or read better than the attribute.
WIRE_NAMES = ConfigDict(validate_by_name=True, validate_by_alias=True)


def _party_user(ctx: Context, user_id: UUID, customer_id: UUID | None = None) -> UUID:
    """The party user a customer signs in as: linked by admins only (whoever is linked reads
    the customer's statement); must exist, be of role party and be no other customer's."""
    policy.authorize(ctx.actor, "customer.link_party")
    role = User.objects.filter(pk=user_id).values_list("role", flat=True).first()
    if role is None:
        raise Invalid.field("user", "unknown user")
    if role != Role.PARTY:
        raise Invalid.field("user", "must be a user of role party")
    taken = Customer.objects.filter(user_id=user_id)
    if customer_id is not None:
        taken = taken.exclude(pk=customer_id)
    if taken.exists():
        raise Invalid.field("user", "already linked to another customer")
    return user_id


class CreateCustomer(Command):
    name = "customer.create"
    model_config = WIRE_NAMES
    customer_name: str = Field(alias="name")
    phone: str = ""
    # Where its invoices are e-mailed when a request names no address ("": none).
    email: str = ""
    client_temp_id: str = ""
    user: UUID | None = None

    def validated(self) -> CreateCustomer:
        return self.model_copy(
            update={
                "customer_name": invariants.clean_customer_name(self.customer_name),
                "phone": invariants.clean_phone(self.phone),
                "email": invariants.clean_customer_email(self.email),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        user_id = None if self.user is None else _party_user(ctx, self.user)
        number = next_number("CUS")
        site = Location.objects.create(
            name=f"{number} {self.customer_name}"[:200], kind=LocationKind.CUSTOMER_SITE
        )
        try:
            with transaction.atomic():
                customer = Customer.objects.create(
                    number=number,
                    name=self.customer_name,
                    phone=self.phone,
                    email=self.email,
                    site=site,
                    client_temp_id=self.client_temp_id,
                    user_id=user_id,
                )
        except IntegrityError as exc:  # a concurrent write linked the same user
            raise Invalid.field("user", "already linked to another customer") from exc
        view = customer_view(customer)
        change = Change("customer", str(view.id), None, view, customer.version, owner_id=user_id)
        return Outcome(201, view, [change])


class UpdateCustomer(VersionedUpdate):
    """Edit a customer's name, phone or e-mail address ("" clears it); (managers) its payment
    terms, credit limit and meter; (admins) link the party user who signs in as it."""

    name = "customer.update"
    model_config = WIRE_NAMES
    entity: ClassVar[str] = "customer"
    editable: ClassVar[tuple[str, ...]] = (
        *("name", "phone", "email", "user", "payment_terms", "credit_limit"),
        *("meter_installed", "meter_rate"),
    )
    customer_name: str | None = Field(default=None, alias="name")
    phone: str | None = None
    email: str | None = None
    user: UUID | None = None
    payment_terms: str | None = None
    credit_limit_minor: MoneyEdit = Field(default=None, alias="credit_limit")
    meter_installed: bool | None = None
    meter_rate_minor: MoneyEdit = Field(default=None, alias="meter_rate")

    def validated(self) -> UpdateCustomer:
        super().validated()
        for amount, wire in (
            (self.credit_limit_minor, "credit_limit"),
            (self.meter_rate_minor, "meter_rate"),
        ):
            if amount is not None:
                invariants.check_amount_ceiling(amount, wire)
        return self.model_copy(
            update={
                "customer_name": None
                if self.customer_name is None
                else invariants.clean_customer_name(self.customer_name),
                "phone": None if self.phone is None else invariants.clean_phone(self.phone),
                "email": None
                if self.email is None
                else invariants.clean_customer_email(self.email),
                "payment_terms": None
                if self.payment_terms is None
                else invariants.clean_payment_terms(self.payment_terms),
            }
        )

    def proposed(self) -> dict[str, Any]:
        fields = {
            "name": self.customer_name,
            "phone": self.phone,
            "email": self.email,
            "user": None if self.user is None else str(self.user),
            "payment_terms": self.payment_terms,
            "credit_limit": None
            if self.credit_limit_minor is None
            else format_money(self.credit_limit_minor),
            "meter_installed": self.meter_installed,
            "meter_rate": None
            if self.meter_rate_minor is None
            else format_money(self.meter_rate_minor),
        }
        return {key: value for key, value in fields.items() if value is not None}

    def load(self, ctx: Context) -> tuple[Record, int]:
        customer = Customer.objects.select_for_update().filter(pk=self.id).first()
        if customer is None:
            raise NotFound()
        return customer_view(customer), customer.version

    def _terms(self, ctx: Context) -> dict[str, Any]:
        """How the customer pays and is billed: a manager's decision (staff: 403 needs_manager)."""
        values = {
            "payment_terms": self.payment_terms,
            "credit_limit_minor": self.credit_limit_minor,
            "meter_installed": self.meter_installed,
            "meter_rate_minor": self.meter_rate_minor,
        }
        values = {key: value for key, value in values.items() if value is not None}
        if values:
            authorize_beyond(
                ctx.actor,
                "customer.terms",
                field=next(iter(values)).removesuffix("_minor"),
                message="payment terms, credit limits and meters are set by a manager",
            )
        return values

    def apply(self, ctx: Context, before: Record) -> Outcome:
        values: dict[str, Any] = {"version": F("version") + 1, **self._terms(ctx)}
        if self.customer_name is not None:
            values["name"] = self.customer_name
        if self.phone is not None:
            values["phone"] = self.phone
        if self.email is not None:
            values["email"] = self.email
        if self.user is not None:
            values["user_id"] = _party_user(ctx, self.user, self.id)
        try:
            with transaction.atomic():
                Customer.objects.filter(pk=self.id).update(**values)
        except IntegrityError as exc:  # a concurrent write linked the same user
            raise Invalid.field("user", "already linked to another customer") from exc
        customer = Customer.objects.get(pk=self.id)
        after = customer_view(customer)
        change = Change(
            "customer", str(after.id), before, after, customer.version, owner_id=customer.user_id
        )
        return Outcome(200, after, [change])


class SaleLineIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    # A metered line leaves it out (0): it bills the units used since the last reading.
    qty: int = 0
    # None: the item's own price.
    unit_price_minor: MoneyEdit = Field(default=None, alias="unit_price")
    serials: tuple[str, ...] = ()
    # A metered customer's meter, read at this sale (sales.credit.bill_meters).
    meter_reading: int | None = None
    # API.md "Distributor": exchange, new (connection) or sale (outright, the default).
    mode: str = "sale"
    # An exchange of a serialized item: the serials of the empties taken back.
    returned_serials: tuple[str, ...] = ()


class RecordSale(BulkCommand):
    """Record a sale as a draft, or draft and confirm at once (`confirm=True`)."""

    name = "sale.record"
    customer: UUID
    location: UUID
    lines: tuple[SaleLineIn, ...]
    confirm: bool = False
    client_temp_id: str = ""
    # Money taken with the sale (sales.credit): a cash customer's confirmed sale needs it.
    payment: SalePayment | None = None

    def validated(self) -> RecordSale:
        inventory_rules.clean_line_count(len(self.lines))
        cleaned = []
        for index, line in enumerate(self.lines):
            if line.meter_reading is not None:
                cleaned.append(self._metered(index, line))
                continue
            qty, serials = inventory_rules.clean_line(index, line.qty, line.serials)
            _, returned = inventory_rules.clean_line(index, qty, line.returned_serials)
            if line.unit_price_minor is not None:
                invariants.check_amount_ceiling(line.unit_price_minor, f"lines[{index}].unit_price")
            mode = invariants.clean_mode(line.mode, f"lines[{index}].mode")
            cleaned.append(
                line.model_copy(
                    update={
                        "qty": qty,
                        "serials": serials,
                        "mode": mode,
                        "returned_serials": returned,
                    }
                )
            )
        inventory_rules.check_serials_once(
            [(line.item, line.serials + line.returned_serials) for line in cleaned]
        )
        if self.payment is not None and not self.confirm:
            raise Invalid.field("payment", "a payment comes with a confirmed sale")
        return self.model_copy(
            update={"lines": tuple(cleaned), "payment": credit.clean_sale_payment(self.payment)}
        )

    def _metered(self, index: int, line: SaleLineIn) -> SaleLineIn:
        """A metered line is billed from the meter, at once: its qty and price are the server's."""
        field = f"lines[{index}]"
        invariants.clean_meter_reading(line.meter_reading, f"{field}.meter_reading")
        if not self.confirm:
            raise Invalid.field(f"{field}.meter_reading", "a metered sale is confirmed at once")
        if (
            line.serials
            or line.unit_price_minor is not None
            or line.qty
            or line.mode != "sale"
            or line.returned_serials
        ):
            raise Invalid.field(
                field, "a metered line names its item and reading only (qty and price follow)"
            )
        return line

    @classmethod
    def run_many(
        cls, commands: Sequence[Any], contexts: Sequence[Context], *, alone: bool
    ) -> list[Outcome | DomainError]:
        return recording.record_sales(commands, contexts, alone=alone)


def _locked_sale(ctx: Context, action: str, sale_id: UUID) -> SaleTransaction:
    sale = (
        SaleTransaction.objects.select_for_update(of=("self",))
        .select_related("customer__site")
        .filter(pk=sale_id)
        .first()
    )
    if sale is None:
        raise NotFound()
    policy.authorize(ctx.actor, action, location_id=sale.location_id)
    return sale


def confirm_sale(
    sale: SaleTransaction, ctx: Context, payment: SalePayment | None = None
) -> tuple[InvoiceView, list[Change]]:
    """Move the stock and raise the invoice, settled with the customer's money (`payment`: taken
    now); `sale` (updated in place) is a draft whose row this transaction holds. (A sale
    recorded with `confirm` is created confirmed: sales.recording.)"""
    lines = list(sale.lines.order_by("line_no"))
    items = Item.objects.in_bulk([line.item_id for line in lines])
    customer = sale.customer
    moved = move_stock(
        kind=MovementKind.SALE,
        lines=recording.sale_movement_lines(
            sale.location_id, customer.site_id, recording.stored_lines(lines)
        ),
        actor=ctx.actor.username,
        reference=f"sale:{sale.id}",
        asset_rule=recording.sale_asset_rule(customer.pk, items),
        known_items=items,
        known_locations={customer.site_id: customer.site},
    )

    priced = recording.price_invoice(
        [(items[line.item_id], line.qty, line.unit_price_minor, line.mode) for line in lines]
    )
    invoice, invoice_lines = recording.invoice_rows(
        number=next_number("INV"), sale=sale, priced=priced, at=timezone.now()
    )
    insert_rows(Invoice, [invoice])
    insert_rows(InvoiceLine, invoice_lines)
    confirmed_at = timezone.now()
    updated = SaleTransaction.objects.filter(pk=sale.pk, status=SaleStatus.DRAFT).update(
        status=SaleStatus.CONFIRMED,
        confirmed_at=confirmed_at,
        movement=moved.movement,
        version=F("version") + 1,
    )
    if not updated:  # unreachable: we hold the row lock and checked the status
        raise InvalidState("the sale is no longer a draft")
    sale.status, sale.confirmed_at, sale.movement = (
        SaleStatus.CONFIRMED,
        confirmed_at,
        moved.movement,
    )
    sale.version += 1
    view = invoice_view(invoice, invoice_lines)
    owner = customer.user_id
    [(settled, _)] = credit.settle_invoices(
        [credit.RaisedInvoice(sale.pk, invoice.pk, invoice.total_minor, customer, ctx, payment)]
    )
    changes = [
        *moved.changes,
        Change("invoice", str(view.id), None, view, None, sale.location_id, owner_id=owner),
        *settled,
        *postings.sale_confirmed(invoice, invoice_lines, ctx),
    ]
    return view, changes


class ConfirmSale(Command):
    name = "sale.confirm"
    model_config = WIRE_NAMES
    transaction_id: UUID = Field(alias="transaction")
    payment: SalePayment | None = None

    def validated(self) -> ConfirmSale:
        return self.model_copy(update={"payment": credit.clean_sale_payment(self.payment)})

    def handle(self, ctx: Context) -> Outcome:
        sale = _locked_sale(ctx, self.name, self.transaction_id)
        if sale.status != SaleStatus.DRAFT:
            raise InvalidState(f"only a draft can be confirmed; this sale is {sale.status}")
        before = sale_view(sale)
        _, changes = confirm_sale(sale, ctx, self.payment)
        after = sale_view(SaleTransaction.objects.get(pk=sale.pk))
        owner = sale.customer.user_id
        return Outcome(
            200,
            after,
            [
                Change(
                    "sale",
                    str(after.id),
                    before,
                    after,
                    after.version,
                    sale.location_id,
                    owner_id=owner,
                ),
                *changes,
            ],
        )


class VoidSale(Command):
    """Confirmed: reversing movement (customer site → selling location) and a credit note for the
    whole invoice. Draft: simply cancelled (nothing moved, nothing invoiced)."""

    name = "sale.void"
    model_config = WIRE_NAMES
    transaction_id: UUID = Field(alias="transaction")
    reason: str

    def validated(self) -> VoidSale:
        return self.model_copy(
            update={"reason": inventory_rules.clean_reason(self.reason, required=True)}
        )

    def handle(self, ctx: Context) -> Outcome:
        sale = _locked_sale(ctx, self.name, self.transaction_id)
        if sale.status == SaleStatus.VOIDED:
            raise InvalidState("this sale is already voided")
        before = sale_view(sale)
        changes: list[Change] = []
        reversal: MoveResult | None = None
        if sale.status == SaleStatus.CONFIRMED:
            reversal, note_changes = self._reverse(sale, ctx)
            changes += note_changes
        SaleTransaction.objects.filter(pk=sale.pk).update(
            status=SaleStatus.VOIDED,
            voided_at=timezone.now(),
            void_reason=self.reason,
            reversal=reversal.movement if reversal else None,
            version=F("version") + 1,
        )
        after = sale_view(SaleTransaction.objects.get(pk=sale.pk))
        owner = sale.customer.user_id
        return Outcome(
            200,
            after,
            [
                Change(
                    "sale",
                    str(after.id),
                    before,
                    after,
                    after.version,
                    sale.location_id,
                    owner_id=owner,
                ),
                *changes,
            ],
        )

    def _reverse(self, sale: SaleTransaction, ctx: Context) -> tuple[MoveResult, list[Change]]:
        customer = sale.customer
        original = sale.movement
        assert original is not None  # a confirmed sale moved its stock
        reversal = move_stock(
            kind=MovementKind.SALE_REVERSAL,
            # The sale's own movement undone (an exchange's empties go back to the customer).
            lines=reversing_lines(original),
            actor=ctx.actor.username,
            reason=self.reason,
            reference=f"sale:{sale.id}",
            reverses=original,
            asset_rule=AssetRule(customer_id=customer.pk),
        )
        invoice = Invoice.objects.get(sale=sale)
        note = CreditNote.objects.create(
            number=next_number("CRN"),
            kind=CreditNoteKind.VOID,
            customer=customer,
            invoice=invoice,
            movement=reversal.movement,
            reason=self.reason,
            lines=invoice_view(invoice).snapshot["lines"],
            total_minor=invoice.total_minor,
        )
        view = credit_note_view(note)
        freed = credit.credit_note_issued(customer, total_minor=note.total_minor, invoice=invoice)
        return reversal, [
            *reversal.changes,
            *freed,
            *postings.sale_voided(invoice, reason=self.reason, ctx=ctx),
            Change(
                "credit_note",
                str(view.id),
                None,
                view,
                None,
                sale.location_id,
                owner_id=customer.user_id,
            ),
        ]


class ReturnLine(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    item: UUID
    # A bulk returnable item comes back by qty; a serialized one by serial (qty: their count).
    qty: int | None = None
    serials: tuple[str, ...] = ()


def _back_empty(item: Item | None) -> tuple[str, str | None]:
    """A returnable item left the customer full (as issued) and arrives empty; any other item
    has no condition."""
    if item is not None and item.returnable:
        return Condition.FULL, Condition.EMPTY
    return "", None


class ReturnAssets(Command):
    """Empties come back from a customer: each serial must be held by that customer, a bulk
    returnable item's units must be at the customer's site (full, as issued; they arrive
    empty). The deposits the customer holds on them are refunded: paid out in cash, or
    credited to the account (a credit note)."""

    name = "asset.return"
    customer: UUID
    # API.md names it `location`; `to_location` is how it began. One of them, or both alike.
    location: UUID | None = None
    to_location: UUID | None = None
    lines: tuple[ReturnLine, ...]
    refund: str = invariants.RefundMethod.CREDIT
    client_temp_id: str = ""

    def validated(self) -> ReturnAssets:
        target = self.to_location or self.location
        if target is None:
            raise Invalid.field("location", "where the empties come back to")
        if self.location and self.to_location and self.location != self.to_location:
            raise Invalid.field("location", "location and to_location differ")
        if self.refund not in invariants.RefundMethod.values:
            raise Invalid.field("refund", "one of cash, credit")
        inventory_rules.clean_line_count(len(self.lines))
        cleaned = []
        for index, line in enumerate(self.lines):
            if line.qty is None and not line.serials:
                raise Invalid.field(f"lines[{index}].serials", "name the serials, or a qty")
            wanted = len(line.serials) if line.qty is None else line.qty
            qty, serials = inventory_rules.clean_line(index, wanted, line.serials)
            cleaned.append(line.model_copy(update={"qty": qty, "serials": serials}))
        inventory_rules.check_serials_once([(line.item, line.serials) for line in cleaned])
        return self.model_copy(
            update={"lines": tuple(cleaned), "to_location": target, "location": target}
        )

    def handle(self, ctx: Context) -> Outcome:
        assert self.to_location is not None  # validated
        target = own_location(ctx, self.name, self.to_location, "location")
        customer = _customer_or_invalid(self.customer)
        items = Item.objects.in_bulk([line.item for line in self.lines])
        moved = move_stock(
            kind=MovementKind.RETURN,
            lines=[
                LineSpec(
                    line.item,
                    customer.site_id,
                    target.pk,
                    line.qty or 0,
                    line.serials,
                    *_back_empty(items.get(line.item)),
                )
                for line in self.lines
            ],
            actor=ctx.actor.username,
            reference=f"customer:{customer.id}",
            client_temp_id=self.client_temp_id,
            asset_rule=AssetRule(set_state=AssetState.EMPTY, customer_id=None),
            known_items=items,
        )
        body, changes = self._refund(customer, target, moved, ctx)
        return Outcome(201, body, [*moved.changes, *changes])

    def _refund(
        self, customer: Customer, target: Location, moved: MoveResult, ctx: Context
    ) -> tuple[dict[str, Any], list[Change]]:
        """The deposits held on what came back, paid back the way the return says."""
        returned: dict[UUID, int] = {}
        for line in self.lines:
            returned[line.item] = returned.get(line.item, 0) + (line.qty or 0)
        refunds = postings.refunds_for(customer.pk, returned)
        refund_minor = sum(refund.amount_minor for refund in refunds)
        changes: list[Change] = []
        body: dict[str, Any] = {
            **moved.view.wire,
            "customer": str(customer.id),
            "credit_note": None,
            "refund_method": self.refund,
            "refunds": [
                {"item": str(r.item_id), "qty": r.qty, "amount": format_money(r.amount_minor)}
                for r in refunds
            ],
        }
        if refund_minor > 0:
            changes += postings.deposit_refunded(
                customer_id=customer.pk,
                refunds=refunds,
                method=self.refund,
                source_id=str(moved.movement.pk),
                ctx=ctx,
            )
        if refund_minor > 0 and self.refund == invariants.RefundMethod.CREDIT:
            note = self._credit_note(customer, moved, refunds, refund_minor)
            note_view = credit_note_view(note)
            body["credit_note"] = note_view.wire
            changes += credit.credit_note_issued(customer, total_minor=refund_minor, invoice=None)
            changes.append(
                Change(
                    "credit_note",
                    str(note.id),
                    None,
                    note_view,
                    None,
                    target.pk,
                    owner_id=customer.user_id,
                )
            )
        body["refund"] = format_money(refund_minor)
        return body, changes

    @staticmethod
    def _credit_note(
        customer: Customer, moved: MoveResult, refunds: list[postings.Refund], total_minor: int
    ) -> CreditNote:
        """A refund credited to the account is a credit note (a cash refund is paid out)."""
        return CreditNote.objects.create(
            number=next_number("CRN"),
            kind=CreditNoteKind.DEPOSIT_REFUND,
            customer=customer,
            movement=moved.movement,
            reason="deposit refunded on return",
            lines=[
                {
                    "item": str(refund.item_id),
                    "qty": refund.qty,
                    "deposit": format_money(refund.amount_minor),
                }
                for refund in refunds
            ],
            total_minor=total_minor,
        )


# -- invoices by e-mail --

INVOICE_EMAIL_TEMPLATE = "invoice_issued"


class NoEmailAddress(Invalid):
    code = "no_email_address"


class EmailInvoice(Command):
    """E-mail an invoice, its PDF attached, to `to` (absent: the customer's address on record)
    through the outbox; the invoice's `email_status` becomes `emailed` when the SMTP server
    takes it. Each request sends a copy (a retried request with its Idempotency-Key or op id
    does not)."""

    name = "invoice.email"
    invoice: UUID
    to: str = ""
    language: str = "en"

    def validated(self) -> EmailInvoice:
        if self.language not in ("en", "ta"):
            raise Invalid.field("language", "one of en, ta")
        return self.model_copy(update={"to": clean_email(self.to) if self.to else ""})

    def handle(self, ctx: Context) -> Outcome:
        invoice = Invoice.objects.select_related("sale", "customer").filter(pk=self.invoice).first()
        if invoice is None:
            raise NotFound()
        policy.authorize(ctx.actor, self.name, location_id=invoice.sale.location_id)
        to = self.to or invoice.customer.email
        if not to:
            raise NoEmailAddress(
                f"customer {invoice.customer.number} has no e-mail address on record:"
                " name one in `to`, or set the customer's `email`",
                fields={"to": "needed: the customer has no e-mail address on record"},
            )
        changes = queue_email(
            to,
            language=self.language,
            template=INVOICE_EMAIL_TEMPLATE,
            params={
                "name": invoice.customer.name,
                "number": invoice.number,
                "total": format_money(invoice.total_minor),
                "invoice": str(invoice.id),
            },
            dedupe_key=f"invoice:{invoice.id}:email:{uuid4().hex}",
        )
        body = {
            "status": "queued",
            "invoice": str(invoice.id),
            "to": to,
            "notification": changes[0].entity_id if changes else None,
            "email_status": invoice.email_status,
        }
        return Outcome(202, body, changes)


class MarkInvoiceEmailed(Command):
    """The outbox delivered an invoice's e-mail: generated → emailed (system actor, in the
    transaction that records the send). Again: no change."""

    name = "invoice.emailed"
    syncable: ClassVar[bool] = False
    invoice: UUID

    def handle(self, ctx: Context) -> Outcome:
        invoice = (
            Invoice.objects.select_for_update()
            .select_related("sale", "customer")
            .filter(pk=self.invoice)
            .first()
        )
        if invoice is None:
            raise NotFound()
        before = invoice_email_view(invoice)
        if invoice.email_status == InvoiceEmailStatus.EMAILED:
            return Outcome(200, before)
        invoice.email_status = InvoiceEmailStatus.EMAILED
        invoice.emailed_at = timezone.now()
        invoice.save(update_fields=["email_status", "emailed_at"])
        after = invoice_email_view(invoice)
        change = Change(
            "invoice_email",
            str(invoice.id),
            before,
            after,
            location_id=invoice.sale.location_id,
            owner_id=invoice.customer.user_id,
        )
        return Outcome(200, after, [change])
