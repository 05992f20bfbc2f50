"""A failure injected inside confirm, after stock has moved, rolls back everything.

The failure is injected where the invoice is raised (`sales.recording.invoice_rows`, the next
thing confirm does once the stock has moved and the invoice number is drawn)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from quartermaster.sales import recording
from tests.conftest import Api, create_user, login
from tests.ledger_helpers import counts, make_customer, make_item, ok, sell, stock_rows


class Boom(RuntimeError):
    pass


def _assert_failed_confirm_changed_nothing(api: Api, depot: str, monkeypatch: Any) -> None:
    from quartermaster.inventory.models import Stock

    gas = make_item(api, "gas", 5, price="10.00")
    hose = make_item(api, "hose", 5, price="2.00")
    customer = make_customer(api)
    draft = ok(
        sell(api, customer["id"], depot, [{"item": gas, "qty": 2}, {"item": hose, "qty": 1}], False)
    )
    before, rows = counts(), stock_rows()
    reached: list[str] = []

    def explode_while_raising_the_invoice(**_: Any) -> None:
        # the stock update really happened inside the transaction before the failure
        reached.append(str(Stock.objects.get(item_id=gas, location_id=depot).qty))
        raise Boom("injected failure after the stock update")

    monkeypatch.setattr(recording, "invoice_rows", explode_while_raising_the_invoice)

    reply = api.post(f"/api/v1/transactions/{draft['id']}/confirm")

    assert reached == ["3"]
    assert reply.status == 500
    assert reply.body == {"error": "internal server error", "code": "server_error"}
    assert counts() == before  # no invoice, no movement, no audit entry
    assert stock_rows() == rows  # the old stock
    monkeypatch.undo()
    assert ok(api.get(f"/api/v1/transactions/{draft['id']}"), 200)["status"] == "draft"
    # The failed confirm had drawn INV-000001 before failing: the number came back too.
    assert (
        ok(api.post(f"/api/v1/transactions/{draft['id']}/confirm"), 200)["invoice"]["number"]
        == "INV-000001"
    )


@pytest.mark.django_db
def test_failure_after_stock_update_in_confirm_leaves_nothing(
    manager: Api, default_location_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _assert_failed_confirm_changed_nothing(manager, default_location_id, monkeypatch)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_failure_after_stock_update_in_confirm_leaves_nothing_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same with real commits (no test transaction around it), on PostgreSQL."""
    from quartermaster.inventory.models import Location

    for name, kind in (("(supplier)", "supplier"), ("(consumed)", "consumed"), ("(loss)", "loss")):
        Location.objects.get_or_create(name=name, defaults={"kind": kind})
    depot, _ = Location.objects.get_or_create(
        is_default=True, defaults={"name": "Main depot", "kind": "depot"}
    )
    create_user("boss", "manager")
    api = Api(Client(), login("boss")["access"])

    _assert_failed_confirm_changed_nothing(api, str(depot.id), monkeypatch)
