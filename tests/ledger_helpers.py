"""Set-up helpers for stock and sales tests: every one goes through the HTTP API."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api


def ok(reply: Any, status: int = 201) -> Any:
    assert reply.status == status, (reply.status, reply.body)
    return reply.body


def make_location(api: Api, name: str, kind: str = "vehicle") -> str:
    return ok(api.post("/api/v1/locations", {"name": name, "kind": kind}))["id"]


def make_item(api: Api, name: str, qty: int = 0, **extra: Any) -> str:
    return ok(api.post("/api/v1/items", {"name": name, "qty": qty, **extra}))["id"]


def make_customer(api: Api, name: str = "Lakshmi Stores") -> dict[str, Any]:
    return ok(api.post("/api/v1/customers", {"name": name, "phone": "98450 00000"}))


def receive(api: Api, location: str, lines: list[dict[str, Any]]) -> dict[str, Any]:
    return ok(api.post("/api/v1/receipts", {"to_location": location, "lines": lines}))


def distribute(api: Api, source: str, target: str, lines: list[dict[str, Any]]) -> Any:
    return api.post(
        "/api/v1/distributions", {"from_location": source, "to_location": target, "lines": lines}
    )


def stock(api: Api, item: str, location: str) -> int:
    rows = ok(api.get(f"/api/v1/stock?item={item}&location={location}"), 200)
    return sum(row["qty"] for row in rows)


def sell(
    api: Api, customer: str, location: str, lines: list[dict[str, Any]], confirm: bool = True
) -> Any:
    return api.post(
        "/api/v1/transactions",
        {"customer": customer, "location": location, "lines": lines, "confirm": confirm},
    )


def ledger_agrees() -> list[dict[str, Any]]:
    from quartermaster.inventory.selectors import stock_differences

    return stock_differences()


def counts() -> dict[str, int]:
    """Row counts of every ledger table, to prove a failed action changed nothing."""
    from quartermaster.core.models import AuditEntry
    from quartermaster.inventory.models import Asset, Movement, MovementLine
    from quartermaster.sales.models import CreditNote, Invoice, Payment, SaleTransaction

    return {
        model.__name__: model.objects.count()
        for model in (
            AuditEntry,
            Movement,
            MovementLine,
            Asset,
            SaleTransaction,
            Invoice,
            CreditNote,
            Payment,
        )
    }


def stock_rows() -> dict[tuple[str, str], int]:
    from quartermaster.inventory.models import Stock

    return {(str(s.item_id), str(s.location_id)): s.qty for s in Stock.objects.all()}
