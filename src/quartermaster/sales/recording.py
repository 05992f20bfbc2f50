"""Recording sales, one or a hundred at a time, with the same rules and the same rows.

`record_sales` is the body of the `sale.record` handler: a REST request runs it for one sale, a
batch sync for a whole run of them (`RecordSale.handle_many`). Every sale of a run is checked
exactly as if it ran alone, in order, and only the sales that pass are written:

1. check each sale against what one query per kind reads for the whole run (locations,
   customers, items): a sale that fails answers its error and takes nothing;
2. lock every stock row the run's confirmed sales touch, in one ordered statement, then in
   order plan each sale's movement against the running quantities (`inventory.ledger.
   StockBook`) and price it, so a sale that finds too little stock answers 409
   `insufficient_stock` after the ones before it took theirs, exactly as it would alone;
3. write what passed in bulk: one block of TRX and one of INV numbers, one guarded UPDATE for
   every stock row, one INSERT (PostgreSQL: COPY) per table: movements and their lines, sales
   and their lines, invoices and their lines.

Serialized units (cylinders) are locked and moved one sale at a time, as they are planned: only
a sale recorded alone may hold serials (its transaction rolls back whatever it moved if it
fails later); a run holding one is refused as a whole (`BulkUnavailable`) and its ops run alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from uuid import UUID, uuid4

from django.utils import timezone

from quartermaster.core import policy
from quartermaster.core.commands import BulkUnavailable
from quartermaster.core.errors import DomainError, Invalid, NotFound
from quartermaster.core.numbering import next_numbers
from quartermaster.core.rows import insert_rows, new_row
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.identity import permissions
from quartermaster.inventory.invariants import (
    OWN_KINDS,
    AssetState,
    Condition,
    MovementKind,
    Tracking,
)
from quartermaster.inventory.ledger import (
    AssetRule,
    LineSpec,
    MovementSpec,
    PlannedMovement,
    StockBook,
    asset_change,
    check_movement,
    move_assets,
    write_movements,
)
from quartermaster.inventory.models import Item, Location
from quartermaster.inventory.selectors import AssetView, get_items, get_locations
from quartermaster.sales import credit, invariants, postings
from quartermaster.sales.invariants import InvoiceEmailStatus, InvoiceLineKind, SaleMode, SaleStatus
from quartermaster.sales.models import Customer, Invoice, InvoiceLine, SaleLine, SaleTransaction
from quartermaster.sales.selectors import InvoiceView, get_customers, invoice_view, sale_view_of


class SaleLineRequest(Protocol):
    @property
    def item(self) -> UUID: ...
    @property
    def qty(self) -> int: ...
    @property
    def unit_price_minor(self) -> int | None: ...
    @property
    def serials(self) -> tuple[str, ...]: ...
    @property
    def meter_reading(self) -> int | None: ...
    @property
    def mode(self) -> str: ...
    @property
    def returned_serials(self) -> tuple[str, ...]: ...


class RecordSale(Protocol):
    """What the `sale.record` command carries (sales.services.RecordSale, validated)."""

    @property
    def name(self) -> str: ...
    @property
    def customer(self) -> UUID: ...
    @property
    def location(self) -> UUID: ...
    @property
    def lines(self) -> Sequence[SaleLineRequest]: ...
    @property
    def confirm(self) -> bool: ...
    @property
    def client_temp_id(self) -> str: ...
    @property
    def payment(self) -> credit.SalePayment | None: ...


@dataclass
class _Sale:
    """One sale of the run that has passed its checks so far."""

    index: int
    command: RecordSale
    ctx: Context
    location: Location
    customer: Customer
    unit_prices: list[int]
    priced: list[invariants.PricedLine] = field(default_factory=list)
    spec: MovementSpec | None = None
    planned: PlannedMovement | None = None
    assets: list[tuple[AssetView | None, AssetView]] = field(default_factory=list)


def record_sales(
    commands: Sequence[RecordSale], contexts: Sequence[Context], *, alone: bool = False
) -> list[Outcome | DomainError]:
    """Record `commands` in order; each answers its Outcome or the error it would raise alone.
    `alone`: one command whose error the caller raises, rolling back its transaction."""
    assert not alone or len(commands) == 1
    if not alone and any(
        line.serials or line.returned_serials for command in commands for line in command.lines
    ):
        raise BulkUnavailable("sales by serial move their units one sale at a time")
    answers: list[Outcome | DomainError | None] = [None] * len(commands)
    if alone:  # a metered line's qty and price come from the customer's meter
        commands = [credit.bill_meters(commands[0], contexts[0])]
    customers = get_customers(command.customer for command in commands)
    if not alone:
        credit.refuse_bulk(commands, customers)
    # The sales' own locations and their customers' sites, in one read.
    locations = get_locations(
        [command.location for command in commands]
        + [customer.site_id for customer in customers.values()]
    )
    for customer in customers.values():
        customer.site = locations[customer.site_id]
    items = {
        item_id: item
        for item_id, (item, _) in get_items(
            line.item for command in commands for line in command.lines
        ).items()
    }
    checked: list[_Sale] = []
    for index, (command, ctx) in enumerate(zip(commands, contexts, strict=True)):
        try:
            checked.append(_check(index, command, ctx, locations, customers, items))
        except DomainError as error:
            answers[index] = error
    every_location = {**locations, **{s.customer.site_id: s.customer.site for s in checked}}
    book = StockBook.lock(
        [key for sale in checked if sale.spec for key in sale.spec.stock_keys(every_location)]
    )
    passed: list[_Sale] = []
    for sale in checked:
        try:
            if sale.spec is not None:
                sale.planned = book.plan(sale.spec, items, every_location)
                sale.assets = move_assets(
                    sale.spec.kind,
                    sale.spec.lines,
                    items,
                    every_location,
                    sale_asset_rule(sale.customer.pk, items),
                )
                sale.priced = _price(sale, items)
                book.take(sale.planned)
        except DomainError as error:
            answers[sale.index] = error
            continue
        passed.append(sale)
    outcomes = _write(passed, book, items)
    _settle(passed, outcomes, alone=alone)
    for sale, outcome in zip(passed, outcomes, strict=True):
        answers[sale.index] = outcome
    assert all(answer is not None for answer in answers)
    return [answer for answer in answers if answer is not None]


def _check(
    index: int,
    command: RecordSale,
    ctx: Context,
    locations: dict[Any, Location],
    customers: dict[Any, Customer],
    items: dict[Any, Item],
) -> _Sale:
    """What `RecordSale` checks before anything moves, in the order it always has."""
    policy.authorize(ctx.actor, command.name, location_id=command.location)
    location = locations.get(command.location)
    if location is None:
        raise NotFound()
    if location.kind not in OWN_KINDS:
        raise Invalid.field("location", "must be a depot, vehicle or store")
    customer = customers.get(command.customer)
    if customer is None:
        raise Invalid.field("customer", "unknown customer")
    for line_no, line in enumerate(command.lines):
        item = items.get(line.item)
        if item is None:
            raise Invalid.field(f"lines[{line_no}].item", "unknown item")
        if item.tracking == Tracking.SERIAL and not line.serials:
            raise Invalid.field(f"lines[{line_no}].serials", "a serialized item sells by serial")
        if item.tracking == Tracking.BULK and line.serials:
            raise Invalid.field(f"lines[{line_no}].serials", "a bulk item has no serials")
        check_mode(line_no, line, item)
    unit_prices = [
        items[line.item].price_minor if line.unit_price_minor is None else line.unit_price_minor
        for line in command.lines
    ]
    for line_no, (line, unit_price) in enumerate(zip(command.lines, unit_prices, strict=True)):
        if line.meter_reading is not None:
            continue  # billed at the customer's meter rate, which a manager set
        permissions.authorize_unit_price(
            ctx.actor,
            list_minor=items[line.item].price_minor,
            unit_minor=unit_price,
            field=f"lines[{line_no}].unit_price",
        )
    sale = _Sale(index, command, ctx, location, customer, unit_prices)
    if command.confirm:
        spec = MovementSpec(
            kind=MovementKind.SALE,
            lines=sale_movement_lines(location.pk, customer.site_id, command.lines),
            actor=ctx.actor.username,
        )
        sites = {location.pk: location, customer.site_id: customer.site}
        sale.spec = check_movement(spec, items, sites)
    return sale


def _settle(passed: list[_Sale], outcomes: list[Outcome], *, alone: bool) -> None:
    """Each confirmed sale's invoice settled with its customer's money (sales.credit): its
    changes join the sale's, and a payment taken with it shows in its body."""
    raised = [
        credit.RaisedInvoice(
            sale_id=outcome.body.id,
            invoice_id=outcome.body.invoice.id,
            total_minor=invariants.invoice_totals(sale.priced).total_minor,
            customer=sale.customer,
            ctx=sale.ctx,
            payment=sale.command.payment,
            meter_readings=tuple(
                line.meter_reading for line in sale.command.lines if line.meter_reading is not None
            ),
        )
        for sale, outcome in zip(passed, outcomes, strict=True)
        if sale.planned is not None
    ]
    settled = iter(credit.settle_invoices(raised, alone=alone))
    for sale, outcome in zip(passed, outcomes, strict=True):
        if sale.planned is not None:
            changes, extra = next(settled)
            outcome.changes.extend(changes)
            if "payment" in extra:
                # The sale's body and its sealed record both carry the payment taken with it.
                sold = outcome.changes[0]
                assert sold.after is outcome.body  # record_sales puts the sale's change first
                outcome.body = outcome.body.with_payment(extra["payment"])
                outcome.changes[0] = replace(sold, after=outcome.body)


def check_mode(line_no: int, line: SaleLineRequest, item: Item) -> None:
    """Exchange and new connection are for returnable items; a serialized exchange names the
    empties that come back, one per full."""
    where = f"lines[{line_no}]"
    if line.mode != SaleMode.SALE and not item.returnable:
        raise Invalid.field(f"{where}.mode", "only a returnable item is exchanged or connected")
    if line.mode != SaleMode.EXCHANGE:
        if line.returned_serials:
            raise Invalid.field(f"{where}.returned_serials", "only an exchange takes empties back")
        return
    if item.tracking == Tracking.SERIAL and len(line.returned_serials) != line.qty:
        raise Invalid.field(f"{where}.returned_serials", "name each empty taken back, one per unit")
    if item.tracking == Tracking.BULK and line.returned_serials:
        raise Invalid.field(f"{where}.returned_serials", "a bulk item has no serials")


@dataclass(frozen=True)
class StoredLine:
    """A draft's stored line as a `SaleLineRequest` (confirming reads it back)."""

    item: UUID
    qty: int
    unit_price_minor: int | None
    serials: tuple[str, ...]
    mode: str
    returned_serials: tuple[str, ...]
    meter_reading: int | None


def stored_lines(lines: Sequence[SaleLine]) -> list[StoredLine]:
    return [
        StoredLine(
            line.item_id,
            line.qty,
            line.unit_price_minor,
            tuple(line.serials),
            line.mode,
            tuple(line.returned_serials),
            line.meter_reading,
        )
        for line in lines
    ]


def sale_movement_lines(
    location_id: UUID, site_id: UUID, lines: Sequence[SaleLineRequest]
) -> tuple[LineSpec, ...]:
    """A sale's movement: each line's fulls to the customer's site, then an exchange's empties
    back from it (they left as the fulls the customer held, they arrive empty). The fulls come
    first, so an exchange never waits on what the customer's site holds."""
    out = [
        LineSpec(line.item, location_id, site_id, line.qty, tuple(line.serials)) for line in lines
    ]
    back = [
        LineSpec(
            line.item,
            site_id,
            location_id,
            line.qty,
            tuple(line.returned_serials),
            condition=Condition.FULL,
            to_condition=Condition.EMPTY,
        )
        for line in lines
        if line.mode == SaleMode.EXCHANGE
    ]
    return tuple(out + back)


def sale_asset_rule(customer_id: UUID, items: dict[Any, Item]) -> AssetRule:
    """A sale issues full units to the customer, who then holds each item's deposit."""
    return AssetRule(
        require_state=AssetState.FULL,
        set_state=AssetState.FULL,
        customer_id=customer_id,
        deposit_by_item={
            item.pk: item.deposit_minor
            for item in items.values()
            if item.tracking == Tracking.SERIAL
        },
    )


def _price(sale: _Sale, items: dict[Any, Item]) -> list[invariants.PricedLine]:
    return price_invoice(
        [
            (items[line.item], line.qty, unit_price, line.mode)
            for line, unit_price in zip(sale.command.lines, sale.unit_prices, strict=True)
        ]
    )


def charges_deposit(item: Item, mode: str) -> bool:
    """A new connection is charged its item's deposit; an exchange never is (the customer's
    empty stands for it); an outright sale as ever: a serialized item's deposit."""
    if not item.deposit_minor or mode == SaleMode.EXCHANGE:
        return False
    return mode == SaleMode.NEW or item.tracking == Tracking.SERIAL


def price_invoice(lines: Sequence[tuple[Item, int, int, str]]) -> list[invariants.PricedLine]:
    """Invoice lines for (item, qty, unit price, mode) sale lines: the goods, then their
    deposits."""
    priced = [
        invariants.price_line(
            kind=InvoiceLineKind.GOODS,
            item_id=item.pk,
            description=item.name,
            qty=qty,
            unit_price_minor=unit_price,
            tax_rate_bp=item.tax_rate_bp,
        )
        for item, qty, unit_price, _ in lines
    ]
    for item, qty, _, mode in lines:
        if charges_deposit(item, mode):
            priced.append(
                invariants.price_line(
                    kind=InvoiceLineKind.DEPOSIT,
                    item_id=item.pk,
                    description=f"Deposit: {item.name}",
                    qty=qty,
                    unit_price_minor=item.deposit_minor,
                    tax_rate_bp=0,
                )
            )
    return priced


def invoice_rows(
    *, number: str, sale: SaleTransaction, priced: list[invariants.PricedLine], at: Any
) -> tuple[Invoice, list[InvoiceLine]]:
    """The invoice of `sale` and its lines, built (not saved)."""
    totals = invariants.invoice_totals(priced)
    invoice = new_row(
        Invoice,
        id=uuid4(),
        number=number,
        sale_id=sale.pk,
        customer_id=sale.customer_id,
        subtotal_minor=totals.subtotal_minor,
        tax_minor=totals.tax_minor,
        deposit_minor=totals.deposit_minor,
        total_minor=totals.total_minor,
        created_at=at,
        email_status=InvoiceEmailStatus.GENERATED,
        emailed_at=None,
    )
    lines = [
        new_row(
            InvoiceLine,
            id=None,
            invoice_id=invoice.pk,
            line_no=index,
            kind=p.kind,
            item_id=p.item_id,
            description=p.description[:300],
            qty=p.qty,
            unit_price_minor=p.unit_price_minor,
            net_minor=p.net_minor,
            tax_rate_bp=p.tax_rate_bp,
            tax_minor=p.tax_minor,
            total_minor=p.total_minor,
        )
        for index, p in enumerate(priced)
    ]
    return invoice, lines


def _write(passed: list[_Sale], book: StockBook, items: dict[Any, Item]) -> list[Outcome]:
    """Write every sale that passed, each table in one statement, and answer each."""
    if not passed:
        return []
    now = timezone.now()
    sale_numbers = iter(next_numbers("TRX", len(passed)))
    confirmed = [sale for sale in passed if sale.planned is not None]
    invoice_numbers = iter(next_numbers("INV", len(confirmed)))
    sales = [
        new_row(
            SaleTransaction,
            id=uuid4(),
            number=next(sale_numbers),
            customer_id=sale.customer.pk,
            location_id=sale.location.pk,
            status=SaleStatus.CONFIRMED if sale.planned else SaleStatus.DRAFT,
            movement_id=None,  # set below, once the movements exist
            reversal_id=None,
            void_reason="",
            client_temp_id=sale.command.client_temp_id,
            created_by=sale.ctx.actor.username,
            created_at=now,
            confirmed_at=now if sale.planned else None,
            voided_at=None,
            # A confirmed sale was a draft (version 1) confirmed in the same transaction.
            version=2 if sale.planned else 1,
        )
        for sale in passed
    ]
    by_sale = dict(zip((id(sale) for sale in passed), sales, strict=True))
    planned = []
    for sale in confirmed:
        assert sale.planned is not None
        row = by_sale[id(sale)]
        sale.planned.spec = replace(sale.planned.spec, reference=f"sale:{row.pk}")
        planned.append(sale.planned)
    moves = dict(zip((id(sale) for sale in confirmed), write_movements(planned, book), strict=True))
    lines = {
        id(sale): [
            new_row(
                SaleLine,
                id=None,
                sale_id=by_sale[id(sale)].pk,
                line_no=line_no,
                item_id=line.item,
                qty=line.qty,
                unit_price_minor=unit_price,
                serials=list(line.serials),
                meter_reading=line.meter_reading,
                mode=line.mode,
                returned_serials=list(line.returned_serials),
            )
            for line_no, (line, unit_price) in enumerate(
                zip(sale.command.lines, sale.unit_prices, strict=True)
            )
        ]
        for sale in passed
    }
    invoices: dict[int, tuple[Invoice, list[InvoiceLine]]] = {}
    for sale in confirmed:
        row = by_sale[id(sale)]
        row.movement_id = moves[id(sale)].movement.pk
        invoices[id(sale)] = invoice_rows(
            number=next(invoice_numbers), sale=row, priced=sale.priced, at=now
        )
    insert_rows(SaleTransaction, sales)
    insert_rows(SaleLine, [line for per_sale in lines.values() for line in per_sale])
    insert_rows(Invoice, [invoice for invoice, _ in invoices.values()])
    insert_rows(InvoiceLine, [line for _, per_invoice in invoices.values() for line in per_invoice])
    # The run's money in the journal, every invoice in one go (each sale keeps its own changes).
    posted = dict(
        zip(
            invoices,
            postings.sales_confirmed([(*invoices[id(sale)], sale.ctx) for sale in confirmed]),
            strict=True,
        )
    )
    outcomes = []
    for sale in passed:
        row = by_sale[id(sale)]
        owner = sale.customer.user_id
        changes: list[Change] = []
        invoice: InvoiceView | None = None
        if id(sale) in invoices:
            moved = moves[id(sale)]
            invoice = invoice_view(*invoices[id(sale)])
            changes = moved.changes + [asset_change(*asset) for asset in sale.assets]
            changes.append(
                Change(
                    "invoice", str(invoice.id), None, invoice, None, row.location_id, owner_id=owner
                )
            )
            changes += posted[id(sale)]
        view = sale_view_of(row, lines[id(sale)], invoice, None)
        sale_change = Change(
            "sale", str(view.id), None, view, view.version, row.location_id, owner_id=owner
        )
        outcomes.append(Outcome(201, view, [sale_change, *changes]))
    return outcomes
