"""The audit chain's snapshot format, pinned: the fields each record's `before`/`after` carry.

The chain hashes these snapshots, so their fields are the chain's format (chain version 1), not
the API's: renaming a field on the wire must not rename it here. Today each domain's view serves
as both the wire body and the snapshot; this test makes any change to a view's fields a
deliberate change of the chain's format (with a new chain version that `audit verify` tells
apart), never a side effect of an API edit.
"""

from __future__ import annotations

from typing import Any

from quartermaster.core.models import AuditEntry
from tests.conftest import Api

PINNED_FIELDS: dict[str, list[str]] = {
    "credit_note": [
        *("created_at", "customer", "id", "invoice", "kind", "lines", "movement", "number"),
        *("reason", "total"),
    ],
    "customer": [
        *("client_temp_id", "created_at", "id", "name", "number", "phone", "site", "version"),
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
