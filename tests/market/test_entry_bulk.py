"""Runs of `market.entry.create` ops go through the bulk path (one transaction, one statement
per table for the run) and answer exactly what each op answers alone: the same statuses,
bodies, numbers, notifications, outbox messages, audit entries and feed rows as with bulk runs
switched off (QM_SYNC_BULK=0), where each op runs alone."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext, override_settings

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry, FeedEntry, OutboxMessage
from quartermaster.market.models import Entry, EntryVersion
from quartermaster.notifications.models import Notification
from tests.conftest import Api
from tests.market.helpers import DAY, MARKET, S1_TIME, S2_TIME, Market, post_rate, set_up
from tests.sync.helpers import op, send, statuses
from tests.sync.test_bulk_runs import Normalizer

pytestmark = pytest.mark.django_db

UNKNOWN = "00000000-0000-4000-8000-000000000000"


def entry(m: Market, farmer: str, flower: str, qty: Any, at: str, **extra: Any) -> Any:
    payload = {"farmer": getattr(m, farmer, farmer), "flower": getattr(m, flower, flower)}
    return op("market.entry.create", {**payload, "qty": qty, "arrived_at": at}, **extra)


def mixed_run(m: Market) -> list[dict[str, Any]]:
    """Priced and awaiting entries of two farmers, in two units, with refusals in the middle."""
    return [
        entry(m, "farmer", "jasmine", "12.345", S1_TIME, client_temp_id="e_1"),
        entry(m, "other_farmer", "rose", 40, S1_TIME),
        entry(m, "farmer", "jasmine", "2.000", S2_TIME),  # s2 has no rate: awaiting_rate
        entry(m, UNKNOWN, "jasmine", "1.000", S1_TIME),  # unknown farmer
        entry(m, "farmer", "rose", "1.5", S1_TIME),  # a bundle is counted whole
        entry(m, "farmer", UNKNOWN, "1.000", S1_TIME),  # unknown flower
        entry(m, "farmer", "jasmine", "1.000", "2099-01-01T05:00:00+05:30"),  # future
        entry(m, "other_farmer", "jasmine", "0.500", S1_TIME, client_temp_id="e_2"),
        entry(m, "farmer", "rose", 3, S2_TIME),
        entry(m, "farmer", "jasmine", "1.000", S1_TIME, client_temp_id="e_1"),  # temp id again
        entry(m, "other_farmer", "jasmine", "7.250", S1_TIME),
    ]


def transcript(api: Api, m: Market, ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything a batch left behind: answers, rows, notices, audit and feed."""
    audit_before, feed_before = AuditEntry.objects.count(), FeedEntry.objects.count()
    reply = send(api, ops)
    normal = Normalizer({value: f"<{name}>" for name, value in vars(m).items()})
    entries = Entry.objects.order_by("seq")
    notices = sorted(Notification.objects.all(), key=lambda n: n.params["number"])
    return normal(
        {
            "results": [
                {key: result[key] for key in ("status", "body", "id_map")}
                for result in reply.body["results"]
            ],
            "entries": [
                (e.number, str(e.farmer_id), e.qty_base, e.slot, e.rate_minor, e.gross_minor)
                for e in entries
            ],
            "versions": list(
                EntryVersion.objects.order_by("entry__seq").values_list("version", "qty_base")
            ),
            "notices": [
                (n.template, n.language, n.recipient, n.params, n.dedupe_key, n.channel)
                for n in notices
            ],
            "outbox": [
                OutboxMessage.objects.values_list("kind", "ref", "state", "attempts").get(
                    dedupe_key=n.dedupe_key
                )
                for n in notices
            ],
            "audit": [
                (a.action, a.entity_type, a.entity_id, a.before, a.after, a.device)
                for a in AuditEntry.objects.order_by("seq")[audit_before:]
            ],
            "feed": [
                (f.entity, f.entity_id, f.op, f.version, f.data)
                for f in FeedEntry.objects.order_by("seq")[feed_before:]
            ],
        }
    )


def in_bulk_and_alone(
    api: Api, m: Market, ops: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batch's transcript with bulk runs, rolled back, then with every op alone."""
    with transaction.atomic():
        with override_settings(SYNC_BULK=True):
            bulk = transcript(api, m, ops)
        transaction.set_rollback(True)
    with override_settings(SYNC_BULK=False):
        alone = transcript(api, m, ops)
    return bulk, alone


@pytest.fixture
def market(admin: Api) -> Market:
    m = set_up(admin)
    post_rate(admin, m.jasmine, "s1", "480.00")
    post_rate(admin, m.rose, "s1", "60.00")
    return m


def test_a_run_with_refusals_in_the_middle_answers_in_bulk_what_each_op_answers_alone(
    staff: Api, market: Market
) -> None:
    bulk, alone = in_bulk_and_alone(staff, market, mixed_run(market))

    assert bulk == alone
    assert [r["status"] for r in bulk["results"]] == [
        *(201, 201, 201, 400, 400, 400, 400, 201, 201, 409, 201),
    ]
    bodies = [r["body"] for r in bulk["results"]]
    assert [b.get("number") for b in bodies] == [
        *("ENT-000001", "ENT-000002", "ENT-000003", None, None, None, None),
        *("ENT-000004", "ENT-000005", None, "ENT-000006"),
    ]
    assert [(b.get("status"), b.get("gross")) for b in bodies if "number" in b] == [
        ("open", "5925.60"),  # 12.345 kg at 480.00
        ("open", "2400.00"),
        ("awaiting_rate", None),
        ("open", "240.00"),
        ("awaiting_rate", None),
        ("open", "3480.00"),
    ]
    assert bulk["results"][3]["body"]["fields"] == {"farmer": "unknown farmer"}
    assert bulk["results"][9]["body"]["code"] == "temp_id_reused"
    # Each entry: its notice (Tamil for Murugan) and one outbox message; audited, not in the feed.
    assert len(bulk["notices"]) == len(bulk["outbox"]) == 6
    assert Counter(n[1] for n in bulk["notices"]) == {"ta": 3, "en": 3}
    audited = Counter(a[1] for a in bulk["audit"])
    assert audited == {"market.entry": 6, "notification": 6, "device": 1}
    assert Counter(f[0] for f in bulk["feed"]) == {"market.entry": 6}
    assert verify_chain().ok


def test_a_rate_posted_later_prices_the_entries_a_run_left_awaiting(
    admin: Api, staff: Api, market: Market
) -> None:
    reply = send(
        staff,
        [entry(market, "farmer", "jasmine", "2.000", S2_TIME)] * 1
        + [
            entry(market, "other_farmer", "jasmine", "1.500", S2_TIME),
            entry(market, "farmer", "rose", 4, S2_TIME),
        ],
    )
    assert statuses(reply) == [201, 201, 201]
    assert {r["body"]["status"] for r in reply.body["results"]} == {"awaiting_rate"}

    post_rate(admin, market.jasmine, "s2", "500.00")

    listed = admin.get(f"{MARKET}/entries?market_day={DAY}").body["results"]
    by_number = {e["number"]: (e["status"], e["gross"], e["version"]) for e in listed}
    assert by_number == {
        "ENT-000001": ("open", "1000.00", 2),
        "ENT-000002": ("open", "750.00", 2),
        "ENT-000003": ("awaiting_rate", None, 1),
    }


def test_an_entry_of_a_run_merges_offline_quantity_edits_as_a_counter(
    admin: Api, market: Market
) -> None:
    """The run keeps each entry's first version, so two devices' edits on it both count."""
    reply = send(admin, [entry(market, "farmer", "jasmine", "10.000", S1_TIME) for _ in range(3)])
    entry_id = reply.body["results"][1]["body"]["id"]
    edits = [
        op("market.entry.update", {"id": entry_id, "qty": "12.000", "base_version": 1}),
        op("market.entry.update", {"id": entry_id, "qty": "9.000", "base_version": 1}),
    ]

    assert statuses(send(admin, edits[:1], device="tablet-a")) == [200]
    merged = send(admin, edits[1:], device="tablet-b")

    assert statuses(merged) == [200]
    assert merged.body["results"][0]["body"]["qty"] == "11.000"  # 10 + 2 - 1


def test_duplicates_in_one_batch_and_a_resent_batch_apply_each_op_once(
    staff: Api, market: Market
) -> None:
    first = entry(market, "farmer", "jasmine", "1.000", S1_TIME)
    second = entry(market, "other_farmer", "rose", 5, S1_TIME)
    same_delivery = {**first, "op_id": op("x")["op_id"]}  # a second delivery, alike: its own op
    ops = [first, second, first, same_delivery, second]

    reply = send(staff, ops)
    again = send(staff, ops)

    assert statuses(reply) == statuses(again) == [201] * 5
    bodies = [r["body"] for r in reply.body["results"]]
    assert bodies[2] == bodies[0] and bodies[4] == bodies[1]
    assert bodies[3]["id"] != bodies[0]["id"]
    assert [r["replayed"] for r in reply.body["results"]] == [False, False, True, False, True]
    assert [r["body"] for r in again.body["results"]] == bodies
    assert all(r["replayed"] for r in again.body["results"])
    assert Entry.objects.count() == Notification.objects.count() == 3
    assert OutboxMessage.objects.count() == 3
    assert verify_chain().ok


def test_a_run_of_entries_takes_a_handful_of_statements_not_a_handful_per_entry(
    staff: Api, market: Market
) -> None:
    ops = [entry(market, "farmer", "jasmine", "1.000", S1_TIME) for _ in range(50)]
    ops[10:10] = [entry(market, "other_farmer", "rose", 2, S2_TIME)]  # awaiting: a flower lock

    send(staff, ops[:2])  # the device's first batch registers it
    with CaptureQueriesContext(connection) as queries:
        reply = send(staff, ops)

    assert statuses(reply) == [201] * 51
    assert len(queries) <= 36, "\n".join(q["sql"][:100] for q in queries)


def test_a_rest_entry_and_the_outbox_queue_each_notice_once(staff: Api, market: Market) -> None:
    """The REST path is the same body for one entry: one notice, one outbox message."""
    body = {"farmer": market.farmer, "flower": market.jasmine, "qty": "1.000"}
    reply = staff.post(f"{MARKET}/entries", {**body, "arrived_at": S1_TIME})

    assert reply.status == 201
    notice = Notification.objects.get()
    assert notice.dedupe_key == f"market.entry.recorded:{reply.body['id']}"
    assert notice.params["number"] == reply.body["number"]
    assert list(OutboxMessage.objects.values_list("ref", "dedupe_key")) == [
        (str(notice.id), notice.dedupe_key)
    ]
