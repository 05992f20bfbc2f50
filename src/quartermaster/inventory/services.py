"""Command handlers for items: create, delete (soft, idempotent), adjust qty by a delta."""

from __future__ import annotations

from uuid import UUID

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from pydantic import ConfigDict, Field

from quartermaster.core import policy
from quartermaster.core.commands import Change, Command, Context, Outcome
from quartermaster.core.errors import Invalid, NotFound
from quartermaster.core.numbering import next_number
from quartermaster.inventory import invariants
from quartermaster.inventory.models import Item, Stock
from quartermaster.inventory.selectors import get_default_location, get_item, item_view

ENTITY = "item"


def _duplicate_name(name: str) -> Invalid:
    return Invalid(f"an item named {name!r} already exists", fields={"name": "already exists"})


class CreateItem(Command):
    # On the wire (REST and sync ops) the field is "name", like the item itself; `name` is taken
    # by the command's wire name, so the attribute is item_name.
    model_config = ConfigDict(validate_by_name=True, validate_by_alias=True)

    name = "item.create"
    item_name: str = Field(alias="name")
    qty: int = 0
    price: str = "0.00"
    unit: str = "pcs"
    tracking: str = "bulk"

    def validated(self) -> CreateItem:
        invariants.clean_price(self.price)
        return self.model_copy(
            update={
                "item_name": invariants.clean_name(self.item_name),
                "qty": invariants.clean_qty(self.qty),
                "unit": invariants.clean_unit(self.unit),
                "tracking": invariants.clean_tracking(self.tracking),
            }
        )

    def handle(self, ctx: Context) -> Outcome:
        location = get_default_location()
        policy.authorize(ctx.actor, self.name, location_id=location.id)
        if Item.objects.filter(name=self.item_name, deleted_at__isnull=True).exists():
            raise _duplicate_name(self.item_name)
        try:
            with transaction.atomic():
                item = Item.objects.create(
                    sku=next_number("ITM"),
                    name=self.item_name,
                    unit=self.unit,
                    price_minor=invariants.clean_price(self.price),
                    tracking=self.tracking,
                )
        except IntegrityError as exc:  # a concurrent create won the unique live name
            raise _duplicate_name(self.item_name) from exc
        Stock.objects.create(item=item, location=location, qty=self.qty)
        view = item_view(item, self.qty)
        return Outcome(
            status=201,
            body=view,
            changes=[Change(ENTITY, view["id"], None, view, item.version, location.id)],
        )


class DeleteItem(Command):
    """Soft delete: the item leaves every list and read, its ledger stays. Deleting twice is fine."""

    name = "item.delete"
    item_id: UUID

    def handle(self, ctx: Context) -> Outcome:
        found = get_item(self.item_id)
        if found is None:
            return Outcome(status=204, body=None)
        item, qty = found
        before = item_view(item, qty)
        deleted = Item.objects.filter(pk=item.pk, deleted_at__isnull=True).update(
            deleted_at=timezone.now(), version=F("version") + 1
        )
        if not deleted:
            return Outcome(status=204, body=None)
        return Outcome(
            status=204,
            body=None,
            changes=[Change(ENTITY, before["id"], before, None, item.version + 1)],
        )


class AdjustItemQty(Command):
    """qty' = qty + delta at the default location, as one guarded UPDATE (never read-modify-write)."""

    name = "item.adjust"
    item_id: UUID
    delta: int

    def validated(self) -> AdjustItemQty:
        invariants.clean_delta(self.delta)
        return self

    def handle(self, ctx: Context) -> Outcome:
        location = get_default_location()
        policy.authorize(ctx.actor, self.name, location_id=location.id)
        updated = self._guarded_update(location.id)
        found = get_item(self.item_id)
        if found is None:
            raise NotFound()
        item, qty = found
        if not updated:
            invariants.apply_delta(qty, self.delta)  # raises "qty cannot go below 0"
            # The item has no stock row here yet (its stock arrived elsewhere): open one.
            Stock.objects.bulk_create(
                [Stock(item=item, location=location, qty=0)], ignore_conflicts=True
            )
            if not self._guarded_update(location.id):
                raise Invalid(
                    invariants.QTY_BELOW_ZERO, fields={"delta": invariants.QTY_BELOW_ZERO}
                )
            item, qty = get_item(self.item_id) or (item, qty + self.delta)
        after = item_view(item, qty)
        before = {**after, "qty": qty - self.delta}
        return Outcome(
            status=200,
            body=after,
            changes=[Change(ENTITY, after["id"], before, after, item.version, location.id)],
        )

    def _guarded_update(self, location_id: UUID) -> int:
        return Stock.objects.filter(
            item_id=self.item_id, location_id=location_id, qty__gte=-self.delta
        ).update(qty=F("qty") + self.delta)
