"""Runs of sale.record ops go through the bulk path (one set of statements for the run) and
answer exactly what each op would answer alone: the same statuses, bodies, stock, numbers,
audit entries and feed rows as with the bulk path switched off (QM_SYNC_BULK=0)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry, FeedEntry
from quartermaster.sales import recording
from tests.conftest import Api, audit_count
from tests.ledger_helpers import ledger_agrees, make_customer, make_item, ok, stock
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db

UUID_OR_TIME = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"
)


class Normalizer:
    """Replaces each new id with its order of first appearance, and every timestamp with <ts>:
    two runs that made the same records in the same order read the same."""

    def __init__(self, known: dict[str, str]) -> None:
        self.names = dict(known)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self(item) for item in value]
        if isinstance(value, str):
            return UUID_OR_TIME.sub(self._name, value)
        return value

    def _name(self, match: re.Match[str]) -> str:
        text = match.group(0)
        if "T" in text and ":" in text:
            return "<ts>"
        return self.names.setdefault(text, f"<new {len(self.names)}>")


def world(api: Api, depot: str) -> dict[str, str]:
    return {
        "gas": make_item(api, "gas", 20, price="950.00", tax_rate_bp=500),
        "hose": make_item(api, "hose", 4, price="120.50"),
        "regulator": make_item(api, "regulator", 100, price="300.00", tax_rate_bp=1800),
        "lakshmi": make_customer(api, "Lakshmi Stores")["id"],
        "ravi": make_customer(api, "Ravi Traders")["id"],
        "depot": depot,
    }


def sale(w: dict[str, str], customer: str, lines: list[tuple[str, int]], **extra: Any) -> Any:
    return op(
        "sale.record",
        {
            "customer": w.get(customer, customer),
            "location": w["depot"],
            "lines": [{"item": w.get(item, item), "qty": qty} for item, qty in lines],
            "confirm": extra.pop("confirm", True),
            **extra.pop("payload", {}),
        },
        **extra,
    )


def mixed_batch(w: dict[str, str]) -> list[dict[str, Any]]:
    """Sales that succeed, run out, fit again, fail validation, and name temp ids."""
    return [
        op("customer.create", {"name": "Meena Gas Agency"}, client_temp_id="c_meena"),
        sale(w, "lakshmi", [("gas", 3), ("hose", 1)], client_temp_id="s_1"),
        sale(w, "c_meena", [("gas", 5), ("regulator", 10)]),
        sale(w, "ravi", [("hose", 4)]),  # 3 hoses left: insufficient, takes nothing
        sale(w, "ravi", [("hose", 3), ("gas", 12)]),  # takes the last hoses and gas
        sale(w, "lakshmi", [("gas", 1)]),  # none left
        sale(w, "lakshmi", [("regulator", 1)], payload={"lines": [{"item": w["regulator"]}]}),
        sale(w, "ravi", [("regulator", 2)], confirm=False, client_temp_id="s_draft"),
        sale(w, "00000000-0000-4000-8000-000000000000", [("regulator", 1)]),  # unknown customer
        sale(w, "ravi", [("00000000-0000-4000-8000-000000000001", 1)]),  # unknown item
        sale(w, "ravi", [("regulator", 7)], payload={"lines": [
            {"item": w["regulator"], "qty": 7, "unit_price": "250.00"}]}),
        op("sale.void", {"transaction": "s_1", "reason": "wrong customer"}),
        sale(w, "lakshmi", [("gas", 2)]),  # the void gave 3 back
        sale(w, "lakshmi", [("regulator", 1)], client_temp_id="s_1"),  # temp id reused
    ]  # fmt: skip


def transcript(api: Api, w: dict[str, str], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything a batch left behind, read through the API and the ledger tables."""
    seq_before = AuditEntry.objects.count()
    feed_before = FeedEntry.objects.count()
    reply = send(api, ops)
    entries = AuditEntry.objects.order_by("seq")[seq_before:]
    feed = FeedEntry.objects.order_by("seq")[feed_before:]
    normal = Normalizer({value: f"<{name}>" for name, value in w.items()})
    return normal(
        {
            "status": reply.status,
            "results": [
                {key: result[key] for key in ("status", "body", "id_map")}
                for result in reply.body["results"]
            ],
            "stock": {
                name: stock(api, w[name], w["depot"]) for name in ("gas", "hose", "regulator")
            },
            "audit": [
                (e.action, e.entity_type, e.entity_id, e.before, e.after, e.device) for e in entries
            ],
            "feed": [(f.entity, f.entity_id, f.op, f.version, f.data) for f in feed],
            "invoices": sorted(
                r["body"]["invoice"]["number"]
                for r in reply.body["results"]
                if r["status"] == 201 and (r["body"].get("invoice") or {}).get("number")
            ),
        }
    )


def in_bulk_and_alone(
    api: Api, w: dict[str, str], ops: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batch's transcript with bulk runs, rolled back, then with every op alone."""
    with transaction.atomic():
        with override_settings(SYNC_BULK=True):
            bulk = transcript(api, w, ops)
        transaction.set_rollback(True)
    with override_settings(SYNC_BULK=False):
        alone = transcript(api, w, ops)
    return bulk, alone


def test_a_mixed_run_answers_in_bulk_exactly_what_each_op_answers_alone(
    admin: Api, default_location_id: str
) -> None:
    w = world(admin, default_location_id)
    ops = mixed_batch(w)
    bulk, alone = in_bulk_and_alone(admin, w, ops)

    assert bulk == alone
    assert [r["status"] for r in bulk["results"]] == [
        *(201, 201, 201, 409, 201, 409, 400, 201, 400, 400, 201, 200, 201, 409),
    ]
    assert bulk["stock"] == {"gas": 1, "hose": 1, "regulator": 83}
    assert bulk["invoices"] == [
        "INV-000001",
        "INV-000002",
        "INV-000003",
        "INV-000004",
        "INV-000005",
    ]
    run_out = bulk["results"][3]["body"]
    assert run_out["code"] == "insufficient_stock"
    assert run_out["error"] == "insufficient stock on line 0: hose at Main depot has 3, 4 needed"
    assert verify_chain().ok
    assert ledger_agrees() == []


def adjust(w: dict[str, str], item: str, delta: int) -> Any:
    return op("item.adjust", {"item_id": w.get(item, item), "delta": delta})


def test_a_run_of_adjustments_answers_in_bulk_exactly_what_each_answers_alone(
    admin: Api, default_location_id: str
) -> None:
    w = world(admin, default_location_id)
    ops = [
        adjust(w, "hose", -3),
        adjust(w, "hose", 0),  # reads the qty the op before left
        adjust(w, "hose", -2),  # only 1 left: 400, takes nothing
        adjust(w, "hose", 5),
        adjust(w, "gas", 0),  # a row no other op of the run moves
        adjust(w, "00000000-0000-4000-8000-000000000002", 1),  # unknown item: 404
        adjust(w, "hose", -6),
        sale(w, "ravi", [("gas", 2)]),
        adjust(w, "gas", -18),
        adjust(w, "gas", 1),
    ]
    bulk, alone = in_bulk_and_alone(admin, w, ops)

    assert bulk == alone
    assert [r["status"] for r in bulk["results"]] == [
        200,
        200,
        400,
        200,
        200,
        404,
        200,
        201,
        200,
        200,
    ]
    assert [r["body"].get("qty") for r in bulk["results"][:5]] == [1, 1, None, 6, 20]
    assert bulk["stock"] == {"gas": 1, "hose": 0, "regulator": 100}
    assert verify_chain().ok
    assert ledger_agrees() == []


def test_a_run_of_sales_takes_a_handful_of_statements_not_a_handful_per_sale(
    admin: Api, default_location_id: str
) -> None:
    w = world(admin, default_location_id)
    ops = [sale(w, "ravi", [("regulator", 1), ("gas", 1)]) for _ in range(15)]
    ops += [sale(w, "lakshmi", [("regulator", 1)]) for _ in range(35)]

    with CaptureQueriesContext(connection) as bulk_queries:
        reply = send(admin, ops)
    with override_settings(SYNC_BULK=False), CaptureQueriesContext(connection) as alone_queries:
        alone = send(admin, [sale(w, "lakshmi", [("regulator", 1)]) for _ in range(50)])

    assert statuses(reply) == [201] * 50 == statuses(alone)
    # Bulk: a fixed ~25 statements plus one per ~80 audit or feed rows (SQLite's parameter cap),
    # plus the run's journal postings: a fixed ~6 and one balance UPDATE per account touched.
    assert len(bulk_queries) < 70 < 1000 < len(alone_queries)
    assert stock(admin, w["regulator"], w["depot"]) == 0
    assert stock(admin, w["gas"], w["depot"]) == 5


def test_a_replayed_bulk_run_answers_its_first_results_and_applies_nothing(
    admin: Api, default_location_id: str
) -> None:
    w = world(admin, default_location_id)
    ops = [sale(w, "ravi", [("gas", 3)]) for _ in range(8)]
    first = send(admin, ops)
    entries = audit_count()

    again = send(admin, ops)

    assert statuses(first) == statuses(again) == [201] * 6 + [409] * 2
    for before, after in zip(first.body["results"], again.body["results"], strict=True):
        assert {**before, "replayed": True} == after
    assert stock(admin, w["gas"], w["depot"]) == 2
    assert audit_count() == entries


def test_a_sale_by_serial_in_a_run_sends_the_run_through_the_ops_one_by_one(
    admin: Api, default_location_id: str
) -> None:
    w = world(admin, default_location_id)
    cylinder = make_item(admin, "14.2 kg cylinder", tracking="serial", price="950.00")
    ok(
        admin.post(
            "/api/v1/receipts",
            {"to_location": w["depot"], "lines": [{"item": cylinder, "qty": 1, "serials": ["C1"]}]},
        )
    )
    by_serial = op(
        "sale.record",
        {
            "customer": w["ravi"],
            "location": w["depot"],
            "lines": [{"item": cylinder, "qty": 1, "serials": ["C1"]}],
            "confirm": True,
        },
    )

    reply = send(admin, [sale(w, "ravi", [("gas", 1)]), by_serial, sale(w, "ravi", [("gas", 1)])])

    assert statuses(reply) == [201, 201, 201]
    assert stock(admin, cylinder, w["depot"]) == 0
    assert stock(admin, w["gas"], w["depot"]) == 18
    assert verify_chain().ok


def test_an_unexpected_failure_in_a_run_fails_only_its_op_the_rest_apply(
    admin: Api, default_location_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run rolls back and its ops run alone: the failing one answers 500 (retry later,
    nothing stored), every other op applies once."""
    from quartermaster.inventory.models import MovementLine

    w = world(admin, default_location_id)
    ops = [sale(w, "ravi", [("regulator", n)]) for n in (1, 2, 3, 4)]

    raise_the_invoice = recording.invoice_rows

    def fail_the_sale_of_three(*, sale: Any, **invoice: Any) -> Any:
        # Called once the sale's stock has moved, to raise its invoice.
        moved = MovementLine.objects.filter(movement_id=sale.movement_id)
        if [line.qty for line in moved] == [3]:
            raise RuntimeError("injected failure")
        return raise_the_invoice(sale=sale, **invoice)

    monkeypatch.setattr(recording, "invoice_rows", fail_the_sale_of_three)
    reply = send(admin, ops)

    assert statuses(reply) == [201, 201, 500, 201]
    assert reply.body["results"][2]["body"]["code"] == "server_error"
    assert stock(admin, w["regulator"], w["depot"]) == 100 - 1 - 2 - 4
    monkeypatch.undo()
    again = send(admin, ops)
    assert statuses(again) == [201, 201, 201, 201]
    assert [r.get("replayed", False) for r in again.body["results"]] == [True, True, False, True]
    assert stock(admin, w["regulator"], w["depot"]) == 100 - 10
    assert verify_chain().ok
