"""The audit chain's snapshot format, pinned: the fields each record's `before`/`after` carry.

The chain hashes these snapshots, so their fields are the chain's format (chain version 1), not
the API's: renaming a field on the wire must not rename it here. Every audited record is given
a typed view (`core.types.View`) that encodes its snapshot apart from its wire body: items,
stock, locations, movements and assets; sales, customers, invoices, credit notes, payments,
refunds and allocations; the journal; day-ends, loads and refills; the market; notifications;
identity's users, devices and sessions (whose formats tests/identity/test_users_api.py pins
too); conflicts; inspection templates, inspections and held updates; media; and the cluster's
`cluster.primary_changed`. The tests below rename every view's wire fields and find every
sealed field where it was, and check each view's snapshot against the dict it was sealed as.

Sealed as stored, not re-encoded: what a record holds as data it was given (a conflict's
client, server and base snapshots; an inspection's answers; a template version's sections).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from quartermaster.cluster.services import PrimaryChangeView, RecordPrimaryChange
from quartermaster.core.commands import execute
from quartermaster.core.conflicts import ConflictView
from quartermaster.core.models import AuditEntry, FeedEntry
from quartermaster.core.types import SYSTEM_ACTOR, Actor, Context, View
from quartermaster.identity.models import User
from quartermaster.inspections.invariants import Score
from quartermaster.inspections.selectors import HeldView, InspectionView, TemplateView
from quartermaster.inventory.selectors import (
    AssetView,
    ItemView,
    LocationView,
    MovementLineView,
    MovementView,
)
from quartermaster.inventory.services import UpdateItem
from quartermaster.journal.selectors import AccountView, EntryView, LineView
from quartermaster.media.models import MediaAsset
from quartermaster.media.selectors import MediaView
from quartermaster.media.services import ConfirmUpload, RequestUpload
from quartermaster.sales.selectors import (
    CreditNoteView,
    DepositMovementView,
    SaleLineView,
    SaleView,
)
from tests.conftest import Api
from tests.sync.helpers import op, send, statuses

PINNED_FIELDS: dict[str, list[str]] = {
    "allocation": ["amount", "created_at", "customer", "id", "invoice", "payment"],
    "asset": [
        *("customer", "deposit_held", "id", "item", "location", "serial", "state", "version"),
    ],
    "conflict": [
        *("actor", "base_snapshot", "base_version", "client_snapshot", "created_at", "device"),
        *("entity", "entity_id", "id", "resolution", "server_snapshot", "status"),
    ],
    "credit_note": [
        *("created_at", "customer", "id", "invoice", "kind", "lines", "movement", "number"),
        *("reason", "total"),
    ],
    "customer": [
        *("client_temp_id", "created_at", "credit_limit", "email", "id", "meter_installed"),
        *("meter_rate", "name", "number", "payment_terms", "phone", "site", "user", "version"),
        # `user`: the party user linked to the customer (issue 10 item 5); `credit_limit`,
        # `meter_*`, `payment_terms`: how it pays and is billed (issue 12); `email`: where its
        # invoices are e-mailed. Each was added to a format already sealed: a customer sealed
        # before it lacks it, and `audit verify --state` compares only the fields a snapshot
        # has (core.audit_state), so the older entries still verify.
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
    "location": ["created_at", "id", "is_default", "kind", "name", "receives"],
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
    "refund": [
        *("amount", "client_temp_id", "created_at", "created_by", "customer", "id", "method"),
        "number",
    ],
    "sale": [
        *("client_temp_id", "confirmed_at", "created_at", "created_by", "credit_note"),
        *("customer", "id", "invoice", "lines", "location", "movement", "number", "payment"),
        *("reversal", "status", "version", "void_reason", "voided_at"),
        # `payment`: the payment taken with the sale (its answer: allocations, unallocated)
    ],
    "session": ["state"],
    "stock": ["item", "location", "qty"],
    "user": ["id", "locations", "role", "username"],
}


def _ok(reply: Any) -> Any:
    assert reply.status < 300, reply.body
    return reply.body


def _every_kind_of_record(admin: Api, default_location_id: str) -> None:
    """One of each audited record this test pins, through the API."""
    item = _ok(admin.post("/api/v1/items", {"name": "gas", "qty": 10, "price": "950.00"}))
    customer = _ok(admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}))
    sale = _ok(
        admin.post(
            "/api/v1/transactions",
            {
                "customer": _id(customer),
                "location": default_location_id,
                "lines": [{"item": _id(item), "qty": 1}],
                "confirm": True,
            },
        )
    )
    _ok(admin.post(f"/api/v1/transactions/{_id(sale)}/void", {"reason": "wrong customer"}))
    # A sale paid as it is made seals the payment with the sale (and its allocation apart).
    paid = {"method": "cash", "amount": "950.00"}
    _ok(
        admin.post(
            "/api/v1/transactions",
            {
                "customer": _id(customer),
                "location": default_location_id,
                "lines": [{"item": _id(item), "qty": 1}],
                "confirm": True,
                "payment": paid,
            },
        )
    )
    _ok(
        admin.post(
            "/api/v1/payments", {"customer": _id(customer), "amount": "100.00", "method": "cash"}
        )
    )
    _ok(
        admin.post(
            "/api/v1/refunds", {"customer": _id(customer), "amount": "10.00", "method": "cash"}
        )
    )
    # A stale write keeps a conflict record; resolving it changes the record.
    stale = admin.patch(f"/api/v1/items/{_id(item)}", {"name": "gas 2", "base_version": 0})
    assert stale.status == 409, stale.body
    resolve = {"strategy": "keep_theirs"}
    _ok(admin.post(f"/api/v1/conflicts/{stale.body['conflict']}/resolve", resolve))
    _ok(admin.post("/api/v1/locations", {"name": "Truck 7", "kind": "vehicle"}))
    cylinder = _ok(admin.post("/api/v1/items", {"name": "cyl", "qty": 0, "tracking": "serial"}))
    receipt = {"item": _id(cylinder), "qty": 1, "serials": ["C1"]}
    _ok(admin.post("/api/v1/receipts", {"to_location": default_location_id, "lines": [receipt]}))
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


def _id(body: dict[str, Any]) -> str:
    """A record's id, under the API's name for it (renamed by a test below)."""
    return str(body.get("id") or body["v2_id"])


def _sealed_fields() -> dict[str, list[str]]:
    fields: dict[str, set[str]] = {}
    for entry in AuditEntry.objects.all():
        for snapshot in (entry.before, entry.after):
            if isinstance(snapshot, dict):
                fields.setdefault(entry.entity_type, set()).update(snapshot)
    return {kind: sorted(names) for kind, names in fields.items()}


def test_every_audited_record_keeps_its_pinned_snapshot_fields(
    admin: Api, default_location_id: str
) -> None:
    _every_kind_of_record(admin, default_location_id)

    assert _sealed_fields() == PINNED_FIELDS


def _views(kind: type[View] = View) -> set[type[View]]:
    """Every typed view class (the subclasses of a subclass included)."""
    found = set(kind.__subclasses__())
    return found.union(*(_views(sub) for sub in found))


def test_renaming_every_wire_field_leaves_every_sealed_field(
    admin: Api, default_location_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A later API version renames every field of every typed view (played here by patching
    # each view's wire encoding): the feed follows, the audit chain seals exactly as before.
    for view_class in _views():
        wire = view_class.__dict__.get("to_wire")
        if wire is not None:
            monkeypatch.setattr(view_class, "to_wire", _renamed(wire))
    _every_kind_of_record(admin, default_location_id)

    assert _sealed_fields() == PINNED_FIELDS
    fed = FeedEntry.objects.filter(entity__in=["customer", "sale", "payment"])
    assert fed.exists() and all(all(name.startswith("v2_") for name in row.data) for row in fed)


def _renamed(wire: Any) -> Any:
    def renamed(view: View) -> dict[str, Any]:
        return {f"v2_{name}": value for name, value in wire(view).items()}

    return renamed


def test_a_sales_records_snapshot_is_the_dict_it_was_sealed_as() -> None:
    # Chain format 1 sealed each sales record as its wire body of the time: the view's
    # snapshot is that body, field for field.
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    customer_id, note_id, sale_id, invoice_id = (uuid.UUID(int=n) for n in range(1, 5))
    item_id, location_id = uuid.UUID(int=5), uuid.UUID(int=6)
    note = CreditNoteView(
        note_id, "CRN-000001", "void", customer_id, invoice_id, None, "oops", (), 950, at
    )
    line = SaleLineView(1, item_id, 2, 47500, ("S1",), None, "exchange", ("S0",))
    sale = SaleView(
        *(sale_id, "TXN-000001", "voided", customer_id, location_id, (line,), None, note),
        *(None, None, "oops", "", "admin", at, at, at, 3),
    )

    assert sale.snapshot == {
        "id": str(sale_id),
        "number": "TXN-000001",
        "status": "voided",
        "customer": str(customer_id),
        "location": str(location_id),
        "lines": [
            {
                "line": 1,
                "item": str(item_id),
                "qty": 2,
                "unit_price": "475.00",
                "serials": ["S1"],
                "meter_reading": None,
                "mode": "exchange",
                "returned_serials": ["S0"],
            }
        ],
        "invoice": None,
        "credit_note": {
            "id": str(note_id),
            "number": "CRN-000001",
            "kind": "void",
            "customer": str(customer_id),
            "invoice": str(invoice_id),
            "movement": None,
            "reason": "oops",
            "lines": [],
            "total": "9.50",
            "created_at": at.isoformat(),
        },
        "movement": None,
        "reversal": None,
        "void_reason": "oops",
        "client_temp_id": None,
        "created_by": "admin",
        "created_at": at.isoformat(),
        "confirmed_at": at.isoformat(),
        "voided_at": at.isoformat(),
        "version": 3,
    }
    deposit = DepositMovementView(7, customer_id, item_id, 1, 150000, "sale:x")
    assert deposit.snapshot == {
        "id": 7,
        "customer": str(customer_id),
        "item": str(item_id),
        "qty": 1,
        "amount": "1500.00",
        "source": "sale:x",
    }


def test_a_journal_records_snapshot_is_the_dict_it_was_sealed_as() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    entry_id, reversed_id, account_id = (uuid.UUID(int=n) for n in range(1, 4))
    lines = (LineView("cash", 150, 0, ""), LineView("bank", 0, 150, "float"))
    entry = EntryView(
        *(entry_id, "JE-000002", 2, at, "undo", "journal.reverse", "admin", "sale", "s-1"),
        *(reversed_id, lines),
    )

    assert entry.snapshot == {
        "id": str(entry_id),
        "number": "JE-000002",
        "posted_at": at.isoformat(),
        "memo": "undo",
        "action": "journal.reverse",
        "posted_by": "admin",
        "source": {"type": "sale", "id": "s-1"},
        "reverses": str(reversed_id),
        "total": "1.50",
        "lines": [
            {"account": "cash", "debit": "1.50", "credit": "0.00", "memo": ""},
            {"account": "bank", "debit": "0.00", "credit": "1.50", "memo": "float"},
        ],
    }
    # An account was sealed as opened; its balance is on the wire only.
    account = AccountView(account_id, "cash", "Cash", "asset", 150, 50)
    assert account.snapshot == {
        "id": str(account_id),
        "code": "cash",
        "name": "Cash",
        "kind": "asset",
    }
    assert account.wire["balance"] == "1.00"


def test_an_inventory_records_snapshot_is_the_dict_it_was_sealed_as() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    movement_id, item_id, here, there, customer_id = (uuid.UUID(int=n) for n in range(1, 6))
    bulk = MovementLineView(0, item_id, here, there, 2, ())
    returnable = MovementLineView(1, item_id, there, here, 1, ("S1",), "empty", "full")
    movement = MovementView(
        movement_id, "transfer", "why", "ref", None, None, "admin", at, (bulk, returnable)
    )
    line = {"item": str(item_id), "qty": 2, "serials": []}
    assert movement.snapshot == {
        "id": str(movement_id),
        "kind": "transfer",
        "reason": "why",
        "reference": "ref",
        "reverses": None,
        "client_temp_id": None,
        "actor": "admin",
        "created_at": at.isoformat(),
        "lines": [
            {"line": 0, **line, "from_location": str(here), "to_location": str(there)},
            {
                **(line | {"qty": 1, "serials": ["S1"]}),
                "line": 1,
                "from_location": str(there),
                "to_location": str(here),
                "condition": "empty",
                "to_condition": "full",
            },
        ],
    }
    asset = AssetView(movement_id, item_id, "S1", here, "full", customer_id, 150000, 2)
    assert asset.snapshot == {
        "id": str(movement_id),
        "item": str(item_id),
        "serial": "S1",
        "location": str(here),
        "state": "full",
        "customer": str(customer_id),
        "deposit_held": "1500.00",
        "version": 2,
    }
    location = LocationView(here, "Truck 7", "vehicle", False, True, at)
    assert location.snapshot == {
        "id": str(here),
        "name": "Truck 7",
        "kind": "vehicle",
        "is_default": False,
        "receives": True,
        "created_at": at.isoformat(),
    }


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


MARKET = "/api/v1/market"
MARKET_PINNED_FIELDS: dict[str, list[str]] = {
    "market.advance": [
        *("amount", "client_temp_id", "created_at", "created_by", "farmer", "id"),
        *("journal_entry", "method", "note", "number"),
    ],
    "market.entry": [
        *("arrived_at", "client_temp_id", "created_by", "farmer", "flower", "gross", "id"),
        *("market_day", "number", "qty", "rate", "settlement", "slot", "status", "unit"),
        *("version", "void_reason"),
    ],
    "market.farmer": [
        *("advance_outstanding", "commission_bp", "created_at", "id", "language", "name"),
        *("name_ta", "number", "payable", "phone", "user", "version", "village", "whatsapp"),
    ],
    "market.flower": ["code", "created_at", "id", "name", "name_ta", "unit"],
    "market.rate": [
        *("date", "flower", "id", "number", "posted_at", "posted_by", "priced_entries", "rate"),
        "slot",
    ],
    "market.settings": [
        *("commission_bp", "created_at", "fees", "slots", "timezone", "version"),
    ],
    "market.settlement": [
        *("advance_recovered", "approved_at", "approved_by", "cancel_reason", "cancelled_at"),
        *("cancelled_by", "commission", "commission_bp", "created_at", "created_by"),
        *("entries", "entry_count", "farmer", "fees", "gross", "id", "net", "number"),
        *("paid_at", "paid_by", "payment_method", "period_from", "period_to", "status"),
        "version",
    ],
    # The farmer's notices (an advance, a settlement approved), sealed as queued.
    "notification": [
        *("attempts", "channel", "created_at", "dedupe_key", "fallback_of", "id", "language"),
        *("last_error", "provider_message_id", "recipient", "status", "template", "updated_at"),
    ],
}


def _every_kind_of_market_record(admin: Api) -> None:
    """One of each market record (and each kind of change to it), through the API."""
    slots = [{"code": "s1", "starts": "04:00", "ends": "06:00"}]
    settings = {"timezone": "Asia/Kolkata", "slots": slots, "commission_bp": 1000, "fees": []}
    _ok(admin.request("PUT", f"{MARKET}/settings", settings))
    flower = _ok(
        admin.post(
            f"{MARKET}/flowers", {"code": "rose", "name": "Rose", "name_ta": "ரோஜா", "unit": "kg"}
        )
    )
    farmer = _ok(
        admin.post(
            f"{MARKET}/farmers", {"name": "Murugan", "phone": "+919876543210", "language": "ta"}
        )
    )
    _ok(admin.patch(f"{MARKET}/farmers/{_id(farmer)}", {"village": "Thovalai"}))
    entry = {"farmer": _id(farmer), "flower": _id(flower), "qty": "2.500"}
    _ok(admin.post(f"{MARKET}/entries", {**entry, "arrived_at": "2026-03-01T04:30:00+05:30"}))
    rate = {"flower": _id(flower), "date": "2026-03-01", "slot": "s1", "rate": "40.00"}
    _ok(admin.post(f"{MARKET}/rates", rate))
    _ok(
        admin.post(
            f"{MARKET}/advances", {"farmer": _id(farmer), "amount": "5.00", "method": "cash"}
        )
    )
    period = {"period_from": "2026-03-01", "period_to": "2026-03-02"}
    settlement = _ok(admin.post(f"{MARKET}/settlements", {"farmer": _id(farmer), **period}))
    _ok(admin.post(f"{MARKET}/settlements/{_id(settlement)}/approve"))


def _sealed_market_fields() -> dict[str, list[str]]:
    return {
        kind: names
        for kind, names in _sealed_fields().items()
        if kind.startswith("market.") or kind == "notification"
    }


def test_every_market_record_keeps_its_pinned_snapshot_fields(admin: Api) -> None:
    _every_kind_of_market_record(admin)

    assert _sealed_market_fields() == MARKET_PINNED_FIELDS


def test_renaming_every_market_wire_field_leaves_every_sealed_field(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    for view_class in _views():
        wire = view_class.__dict__.get("to_wire")
        if wire is not None:
            monkeypatch.setattr(view_class, "to_wire", _renamed(wire))
    _every_kind_of_market_record(admin)

    assert _sealed_market_fields() == MARKET_PINNED_FIELDS
    fed = FeedEntry.objects.filter(entity__startswith="market.")
    assert fed.exists() and all(all(name.startswith("v2_") for name in row.data) for row in fed)


INSPECTIONS = "/api/v1/inspections"
FIELD_PINNED_FIELDS: dict[str, list[str]] = {
    "cluster.primary": ["at", "description", "epoch", "new_node", "old_node", "reason"],
    "inspection": [
        *("answers", "assignee", "created_at", "created_by", "deleted", "id", "location"),
        *("review_comment", "reviewed_by", "score", "status", "template", "template_version"),
        *("updated_at", "version"),
    ],
    "inspection.held_update": ["device_seq", "held", "id", "status", "waiting_for_seq"],
    "inspection.template": [
        *("created_at", "created_by", "id", "latest_version", "name", "published_at"),
        *("published_by", "published_version", "sections", "status", "version"),
    ],
    "media": [
        *("confirmed_at", "content_type", "device", "expires_at", "height", "id", "sha256"),
        *("size", "status", "uploaded_by", "width"),
    ],
}
FORM = {
    "name": "Boiler room",
    "sections": [
        {
            "id": "safety",
            "title": "Safety",
            "questions": [
                {"id": "exits", "type": "yes_no", "label": "Exits clear?", "weight": 1},
                {"id": "notes", "type": "text", "label": "Notes"},
            ],
        }
    ],
}


def _every_kind_of_field_record(admin: Api, default_location_id: str) -> None:
    """One of each inspection, media and cluster record, and each kind of change to them."""
    template = _id(_ok(admin.post("/api/v1/templates", FORM)))
    _ok(admin.post(f"/api/v1/templates/{template}/publish"))
    new = {"template": template, "location": default_location_id}
    inspection = _id(_ok(admin.post(INSPECTIONS, new)))
    _ok(admin.patch(f"{INSPECTIONS}/{inspection}", {"answers": {"exits": True}}))
    _ok(admin.post(f"{INSPECTIONS}/{inspection}/submit"))
    _ok(admin.post(f"{INSPECTIONS}/{inspection}/reject", {"comment": "sign it"}))
    # A device's update that arrives before its predecessor is held, then released by it.
    patch = {"id": inspection, "answers": {"notes": "later"}, "previous_seq": 7}
    held = op("inspection.update", patch, base_version=4, device_seq=9)
    answers = {"id": inspection, "answers": {"notes": "first"}}
    first = op("inspection.update", answers, base_version=4, device_seq=7)
    sent = [send(admin, [held], device="tablet"), send(admin, [first], device="tablet")]
    assert [statuses(reply) for reply in sent] == [[202], [200]], [r.body for r in sent]
    _ok(admin.delete(f"{INSPECTIONS}/{inspection}"))
    # Media through its commands: the upload adapter answers from the stored answer, which
    # a replay must repeat, so it reads the command's answer by its names (not pinned here).
    user = User.objects.get(username="admin")
    ctx = Context(actor=Actor(user_id=user.pk, username="admin", role=user.role))
    digest = "ab" * 32
    uploaded = execute(RequestUpload(content_type="image/png", size=10, sha256=digest), ctx)
    media_id = MediaAsset.objects.get().pk
    assert uploaded.status == 201
    found = {"size": 10, "sha256": digest, "content_type": "image/png", "width": 2, "height": 1}
    assert execute(ConfirmUpload(id=media_id, **found), ctx).status == 200
    at = datetime(2026, 12, 2, 6, 44, 53, tzinfo=UTC)
    change = RecordPrimaryChange(epoch=3, at=at, old_node=None, new_node="node2", reason="x")
    assert execute(change, Context(actor=SYSTEM_ACTOR)).status == 201


def _sealed_field_records() -> dict[str, list[str]]:
    return {kind: names for kind, names in _sealed_fields().items() if kind in FIELD_PINNED_FIELDS}


def test_every_inspection_media_and_cluster_record_keeps_its_pinned_snapshot_fields(
    admin: Api, default_location_id: str
) -> None:
    _every_kind_of_field_record(admin, default_location_id)

    assert _sealed_field_records() == FIELD_PINNED_FIELDS


def test_renaming_every_inspection_wire_field_leaves_every_sealed_field(
    admin: Api, default_location_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for view_class in _views():
        wire = view_class.__dict__.get("to_wire")
        if wire is not None:
            monkeypatch.setattr(view_class, "to_wire", _renamed(wire))
    _every_kind_of_field_record(admin, default_location_id)

    assert _sealed_field_records() == FIELD_PINNED_FIELDS
    fed = FeedEntry.objects.filter(entity__startswith="inspection", op="upsert")
    assert fed.exists() and all(all(name.startswith("v2_") for name in row.data) for row in fed)


def test_a_field_records_snapshot_is_the_dict_it_was_sealed_as() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    record_id, template_id, location_id, user_id = (uuid.UUID(int=n) for n in range(1, 5))
    sections = [{"id": "s", "title": "S", "questions": []}]
    template = TemplateView(template_id, "Boiler", 2, 2, 1, sections, None, None, "admin", at)
    assert template.snapshot == {
        "id": str(template_id),
        "name": "Boiler",
        "version": 2,
        "status": "draft",
        "latest_version": 2,
        "published_version": 1,
        "sections": sections,
        "published_at": None,
        "published_by": None,
        "created_by": "admin",
        "created_at": at.isoformat(),
    }
    inspection = InspectionView(
        *(record_id, template_id, 2, location_id, user_id, "rejected", {"exits": True}),
        *(Score(2, 3), "sign it", "manager", 4, False, "staff", at, at),
    )
    assert inspection.snapshot == {
        "id": str(record_id),
        "template": str(template_id),
        "template_version": 2,
        "location": str(location_id),
        "assignee": str(user_id),
        "status": "rejected",
        "answers": {"exits": True},
        "score": {"earned": 2, "possible": 3, "percent": "66.67"},
        "review_comment": "sign it",
        "reviewed_by": "manager",
        "version": 4,
        "deleted": False,
        "created_by": "staff",
        "created_at": at.isoformat(),
        "updated_at": at.isoformat(),
    }
    assert HeldView(record_id, 9, 7, "held").snapshot == {
        "id": str(record_id),
        "held": True,
        "device_seq": 9,
        "waiting_for_seq": 7,
        "status": "held",
    }
    media = MediaView(record_id, "ready", "image/png", 10, "ab", 2, 1, user_id, "t", at, at)
    assert media.snapshot == {
        "id": str(record_id),
        "status": "ready",
        "content_type": "image/png",
        "size": 10,
        "sha256": "ab",
        "width": 2,
        "height": 1,
        "uploaded_by": str(user_id),
        "device": "t",
        "expires_at": "2026-01-02T03:04:05Z",
        "confirmed_at": "2026-01-02T03:04:05Z",
    }
    primary = PrimaryChangeView(3, at, None, "node2", "failover", "")
    assert primary.snapshot == {
        "epoch": 3,
        "at": at.isoformat(),
        "old_node": None,
        "new_node": "node2",
        "reason": "failover",
        "description": "",
    }
    fields = {"fields": {"name": "x"}, "base_version": 1}
    conflict = ConflictView(
        record_id, "item", "i-1", 1, fields, {"id": "i-1"}, None, "open", None, "a", "", at
    )
    assert conflict.snapshot == {
        "id": str(record_id),
        "entity": "item",
        "entity_id": "i-1",
        "base_version": 1,
        "client_snapshot": fields,
        "server_snapshot": {"id": "i-1"},
        "base_snapshot": None,
        "status": "open",
        "resolution": None,
        "actor": "a",
        "device": "",
        "created_at": at.isoformat(),
    }
