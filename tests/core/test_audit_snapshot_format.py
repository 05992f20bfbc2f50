"""The audit chain's snapshot format, pinned: the fields each record's `before`/`after` carry.

The chain hashes these snapshots, so their fields are the chain's format (chain version 1), not
the API's: renaming a field on the wire must not rename it here. A record given a typed view
(`core.types.View`: items and stock so far) encodes its snapshot apart from its wire body; a
record still carried as a dict serves as both, so this test makes any change to its fields a
deliberate change of the chain's format, never a side effect of an API edit.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from quartermaster.core.models import AuditEntry, FeedEntry
from quartermaster.inventory.selectors import ItemView
from quartermaster.inventory.services import UpdateItem
from tests.conftest import Api

PINNED_FIELDS: dict[str, list[str]] = {
    "credit_note": [
        *("created_at", "customer", "id", "invoice", "kind", "lines", "movement", "number"),
        *("reason", "total"),
    ],
    "customer": [
        *("client_temp_id", "created_at", "credit_limit", "id", "meter_installed", "meter_rate"),
        *("name", "number", "payment_terms", "phone", "site", "user", "version"),
        # `user`: the party user linked to the customer (issue 10 item 5); `credit_limit`,
        # `meter_*`, `payment_terms`: how it pays and is billed (issue 12); audited on purpose
    ],
    "invoice": [
        *("created_at", "customer", "deposit", "id", "lines", "number", "subtotal", "tax"),
        *("total", "transaction"),
    ],
    "item": [
        *("deposit", "id", "name", "price", "qty", "sku", "tax_rate_bp", "tracking", "unit"),
        "version",
    ],
    "journal_account": ["code", "id", "kind", "name"],
    "journal_entry": [
        *("action", "id", "lines", "memo", "number", "posted_at", "posted_by", "reverses"),
        *("source", "total"),
    ],
    "movement": [
        *("actor", "client_temp_id", "created_at", "id", "kind", "lines", "reason", "reference"),
        "reverses",
    ],
    "payment": [
        *("amount", "client_temp_id", "created_at", "created_by", "customer", "id", "method"),
        "number",
    ],
    "sale": [
        *("client_temp_id", "confirmed_at", "created_at", "created_by", "credit_note"),
        *("customer", "id", "invoice", "lines", "location", "movement", "number", "reversal"),
        *("status", "version", "void_reason", "voided_at"),
    ],
    "session": ["state"],
    "stock": ["item", "location", "qty"],
    "user": ["id", "locations", "role", "username"],
}


def _ok(reply: Any) -> Any:
    assert reply.status < 300, reply.body
    return reply.body


def test_every_audited_record_keeps_its_pinned_snapshot_fields(
    admin: Api, default_location_id: str
) -> None:
    item = _ok(admin.post("/api/v1/items", {"name": "gas", "qty": 10, "price": "950.00"}))
    customer = _ok(admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    sale = _ok(
        admin.post(
            "/api/v1/transactions",
            {
                "customer": customer["id"],
                "location": default_location_id,
                "lines": [{"item": item["id"], "qty": 1}],
                "confirm": True,
            },
        )
    )
    _ok(admin.post(f"/api/v1/transactions/{sale['id']}/void", {"reason": "wrong customer"}))
    _ok(
        admin.post(
            "/api/v1/payments", {"customer": customer["id"], "amount": "100.00", "method": "cash"}
        )
    )
    _ok(
        admin.post(
            "/api/v1/journal/entries",
            {
                "memo": "float",
                "lines": [
                    {"account": "cash", "debit": "1.00"},
                    {"account": "bank", "credit": "1.00"},
                ],
            },
        )
    )

    fields: dict[str, set[str]] = {}
    for entry in AuditEntry.objects.all():
        for snapshot in (entry.before, entry.after):
            if isinstance(snapshot, dict):
                fields.setdefault(entry.entity_type, set()).update(snapshot)

    assert {kind: sorted(names) for kind, names in fields.items()} == PINNED_FIELDS


def test_renaming_a_field_on_the_wire_leaves_what_the_chain_sealed(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API renames "price" (a later API version, played here by patching the view's wire
    # encoding): responses and the feed follow, the audit snapshot does not.
    wire = ItemView.to_wire

    def renamed(view: ItemView) -> dict[str, Any]:
        body = wire(view)
        body["unit_price"] = body.pop("price")
        return body

    monkeypatch.setattr(ItemView, "to_wire", renamed)
    item = _ok(admin.post("/api/v1/items", {"name": "valve", "qty": 1, "price": "12.50"}))
    _ok(admin.patch(f"/api/v1/items/{item['id']}", {"price": "13.00"}))

    assert item["unit_price"] == "12.50" and "price" not in item
    sealed = AuditEntry.objects.filter(entity_type="item", entity_id=item["id"]).order_by("seq")
    assert [(e.before or {}).get("price") for e in sealed] == [None, "12.50"]
    assert [e.after["price"] for e in sealed] == ["12.50", "13.00"]
    fed = FeedEntry.objects.filter(entity="item", entity_id=item["id"]).order_by("seq")
    assert [row.data["unit_price"] for row in fed] == ["12.50", "13.00"]


def test_a_versioned_records_editable_fields_have_one_name_in_both_encodings() -> None:
    # Conflicts read a record's base version back from the chain as wire fields
    # (core.conflicts._snapshot_at): the names an update may change must agree.
    view = ItemView(uuid.uuid4(), "ITM-1", "gas", 3, 95000, "pcs", "bulk", 0, 0, 2)

    for name in (*UpdateItem.editable, "id", "version"):
        assert view.wire[name] == view.snapshot[name]
