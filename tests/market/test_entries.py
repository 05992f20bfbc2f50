"""Daily entries through HTTP and batch sync: slots from the arrival time, rates and rounding,
awaiting_rate priced by a rate posting, clerks' own-same-day rule, voids, offline merges."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from quartermaster.core.models import AuditEntry, Conflict
from quartermaster.market.models import Entry
from tests.conftest import Api, audit_count
from tests.market.helpers import (
    DAY,
    MARKET,
    S1_TIME,
    S2_TIME,
    Market,
    post_rate,
    rate_every_slot,
    record,
    set_up,
)
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def market(admin: Api) -> Market:
    return set_up(admin)


def test_an_entry_takes_its_slot_from_the_arrival_and_the_rate_in_force(
    admin: Api, staff: Api, market: Market
) -> None:
    post_rate(admin, market.jasmine, "s1", "401.50", "2026-02-20")
    post_rate(admin, market.jasmine, "s2", "380.00")

    early = record(staff, market.farmer, market.jasmine, "12.345")
    # 23:00 UTC on Feb 28 is 04:30 on March 1 in Kolkata: the market's day, not UTC's.
    from_utc = record(staff, market.farmer, market.jasmine, "0.001", "2026-02-28T23:00:00Z")
    later = record(staff, market.farmer, market.jasmine, "2.000", S2_TIME)

    assert early.status == 201, early.body
    assert {k: early.body[k] for k in ("slot", "market_day", "qty", "rate", "status")} == {
        "slot": "s1",
        "market_day": DAY,
        "qty": "12.345",
        "rate": "401.50",
        "status": "open",
    }
    # 12.345 x 401.50 = 4956.5175 → 4956.52; 0.001 x 401.50 = 0.4015 → 0.40
    assert early.body["gross"] == "4956.52"
    assert (from_utc.body["market_day"], from_utc.body["slot"]) == (DAY, "s1")
    assert from_utc.body["gross"] == "0.40"
    assert (later.body["slot"], later.body["rate"], later.body["gross"]) == (
        "s2",
        "380.00",
        "760.00",
    )
    assert early.body["number"].startswith("ENT-") and early.body["version"] == 1
    assert early.body["created_by"] == "staff"


def test_half_a_paisa_rounds_up_once(admin: Api, market: Market) -> None:
    post_rate(admin, market.jasmine, "s1", "5.00")

    reply = record(admin, market.farmer, market.jasmine, "0.001")  # 0.005 rupees

    assert reply.body["gross"] == "0.01"


@pytest.mark.parametrize(
    ("flower", "qty"),
    [
        ("jasmine", 12),  # a kg flower takes a decimal string
        ("jasmine", "12.3456"),
        ("jasmine", "0.000"),
        ("jasmine", "-1.000"),
        ("jasmine", "1e3"),
        ("jasmine", "100001.000"),
        ("rose", "3"),  # a bundle flower takes an integer
        ("rose", 0),
        ("rose", True),
        ("rose", 10_000_001),
    ],
)
def test_a_bad_quantity_is_400_and_records_nothing(
    admin: Api, market: Market, flower: str, qty: Any
) -> None:
    before = audit_count()

    reply = record(admin, market.farmer, getattr(market, flower), qty)

    assert (reply.status, reply.body["code"]) == (400, "invalid"), reply.body
    assert any(name.startswith("qty") for name in reply.body["fields"])
    assert audit_count() == before
    assert Entry.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("arrived_at", "2026-03-01T04:30:00"),  # no offset
        ("arrived_at", "yesterday"),
        ("arrived_at", "1999-12-31T23:00:00Z"),
        ("arrived_at", "2999-01-01T00:00:00Z"),
        ("farmer", "00000000-0000-0000-0000-000000000000"),
        ("flower", "00000000-0000-0000-0000-000000000000"),
    ],
)
def test_a_bad_arrival_or_unknown_reference_is_400(
    admin: Api, market: Market, field: str, value: str
) -> None:
    body = {"farmer": market.farmer, "flower": market.rose, "qty": 3, "arrived_at": S1_TIME}

    reply = admin.post(f"{MARKET}/entries", {**body, field: value})

    assert (reply.status, reply.body["code"]) == (400, "invalid"), reply.body
    assert field in reply.body["fields"]


def test_entries_wait_for_a_rate_and_the_posting_prices_exactly_those_it_governs(
    admin: Api, staff: Api, market: Market
) -> None:
    waiting = record(staff, market.farmer, market.jasmine, "2.500").body
    next_day = record(staff, market.farmer, market.jasmine, "1.000", "2026-03-02T04:30:00+05:30")
    after_later_posting = record(
        staff, market.farmer, market.jasmine, "1.000", "2026-03-05T04:30:00+05:30"
    ).body
    other_slot = record(staff, market.farmer, market.jasmine, "1.000", S2_TIME).body
    other_flower = record(staff, market.farmer, market.rose, 4).body
    before_posting = record(
        staff, market.farmer, market.jasmine, "1.000", "2026-02-28T04:30:00+05:30"
    ).body
    assert (waiting["status"], waiting["rate"], waiting["gross"]) == ("awaiting_rate", None, None)
    post_rate(admin, market.jasmine, "s1", "300.00", "2026-03-05")  # a later reign, posted first
    assert Entry.objects.get(pk=after_later_posting["id"]).status == "open"

    posted = post_rate(admin, market.jasmine, "s1", "400.00", DAY)

    assert posted["priced_entries"] == 2
    priced = admin.get(f"{MARKET}/entries/{waiting['id']}").body
    assert (priced["status"], priced["rate"], priced["gross"], priced["version"]) == (
        "open",
        "400.00",
        "1000.00",
        2,
    )
    assert admin.get(f"{MARKET}/entries/{next_day.body['id']}").body["rate"] == "400.00"
    assert admin.get(f"{MARKET}/entries/{after_later_posting['id']}").body["rate"] == "300.00"
    for still in (other_slot, other_flower, before_posting):
        assert admin.get(f"{MARKET}/entries/{still['id']}").body["status"] == "awaiting_rate"
    audited = AuditEntry.objects.filter(
        entity_type="market.entry", entity_id=waiting["id"], action="market.rate.post"
    ).get()
    assert (audited.before["status"], audited.after["status"]) == ("awaiting_rate", "open")


def test_staff_change_only_their_own_entries_of_the_same_market_day(
    admin: Api, staff: Api, make_api: Callable[..., Api], market: Market
) -> None:
    other_clerk = make_api("staff", "clerk2")
    rate_every_slot(admin, market.rose, "10.00")
    today = record(staff, market.farmer, market.rose, 5, at=None).body
    earlier_day = record(staff, market.farmer, market.rose, 5).body
    before = audit_count()

    by_other = other_clerk.patch(f"{MARKET}/entries/{today['id']}", {"qty": 6})
    void_by_other = other_clerk.post(f"{MARKET}/entries/{today['id']}/void", {"reason": "x"})
    old_day = staff.patch(f"{MARKET}/entries/{earlier_day['id']}", {"qty": 6})
    assert [r.status for r in (by_other, void_by_other, old_day)] == [403, 403, 403]
    assert by_other.body["code"] == "permission_denied"
    assert audit_count() == before

    own = staff.patch(f"{MARKET}/entries/{today['id']}", {"qty": 6})
    by_admin = admin.patch(f"{MARKET}/entries/{earlier_day['id']}", {"qty": 7})

    assert (own.status, own.body["qty"], own.body["gross"], own.body["version"]) == (
        200,
        6,
        "60.00",
        2,
    )
    assert (by_admin.status, by_admin.body["qty"], by_admin.body["gross"]) == (200, 7, "70.00")


@pytest.mark.parametrize("role", ["manager", "auditor", "party"])
def test_only_admins_and_clerks_record_entries(
    make_api: Callable[..., Api], market: Market, role: str
) -> None:
    reply = record(make_api(role), market.farmer, market.rose, 3)

    assert (reply.status, reply.body["code"]) == (403, "permission_denied")
    assert Entry.objects.count() == 0


def test_a_void_entry_keeps_its_reason_and_cannot_change_again(admin: Api, market: Market) -> None:
    entry = record(admin, market.farmer, market.rose, 3).body

    voided = admin.post(f"{MARKET}/entries/{entry['id']}/void", {"reason": "wrong farmer"})
    again = admin.patch(f"{MARKET}/entries/{entry['id']}", {"qty": 4})

    assert (voided.status, voided.body["status"], voided.body["void_reason"]) == (
        200,
        "void",
        "wrong farmer",
    )
    assert (again.status, again.body["code"]) == (409, "entry_void")
    blank = admin.post(f"{MARKET}/entries/{entry['id']}/void", {"reason": " "})
    assert blank.status == 400


def test_changing_the_flower_takes_the_new_flowers_rate(admin: Api, market: Market) -> None:
    post_rate(admin, market.rose, "s1", "12.00")
    entry = record(admin, market.farmer, market.rose, 3).body

    no_qty = admin.patch(f"{MARKET}/entries/{entry['id']}", {"flower": market.jasmine})
    moved = admin.patch(
        f"{MARKET}/entries/{entry['id']}", {"flower": market.jasmine, "qty": "3.000"}
    )

    assert (no_qty.status, list(no_qty.body["fields"])) == (400, ["qty"])
    assert (moved.body["flower"], moved.body["status"], moved.body["rate"]) == (
        market.jasmine,
        "awaiting_rate",
        None,
    )


def test_quantities_changed_on_two_devices_merge_by_their_deltas(
    admin: Api, market: Market
) -> None:
    post_rate(admin, market.jasmine, "s1", "100.00")
    entry = record(admin, market.farmer, market.jasmine, "10.000").body
    path = f"{MARKET}/entries/{entry['id']}"

    first = admin.patch(path, {"qty": "12.000", "base_version": 1})  # +2 kg on tablet A
    second = admin.patch(path, {"qty": "9.500"}, headers={"If-Match": '"1"'})  # -0.5 on B

    assert (first.status, first.body["qty"], first.body["version"]) == (200, "12.000", 2)
    assert (second.status, second.body["qty"], second.body["version"]) == (200, "11.500", 3)
    assert second.body["gross"] == "1150.00"
    assert Conflict.objects.count() == 0


def test_a_field_changed_on_both_sides_is_a_conflict_and_the_other_side_merges(
    admin: Api, market: Market
) -> None:
    entry = record(admin, market.farmer, market.rose, 10).body
    path = f"{MARKET}/entries/{entry['id']}"
    third = admin.post(
        f"{MARKET}/farmers", {"name": "Kannan", "phone": "+919800000000", "language": "ta"}
    ).body["id"]
    assert admin.patch(path, {"farmer": market.other_farmer, "base_version": 1}).status == 200

    clash = admin.patch(path, {"farmer": third, "qty": 12, "base_version": 1})
    qty_only = admin.patch(path, {"farmer": market.farmer, "qty": 12, "base_version": 1})

    assert (clash.status, clash.body["code"]) == (409, "version_conflict")
    conflict = Conflict.objects.get(pk=clash.body["conflict"])
    assert conflict.client_snapshot == {"fields": {"qty": 12, "farmer": third}, "base_version": 1}
    assert conflict.server_snapshot["farmer"] == market.other_farmer
    # Farmer unchanged on this device (the base's): the server's change stands, qty merges.
    assert (qty_only.status, qty_only.body["farmer"], qty_only.body["qty"]) == (
        200,
        market.other_farmer,
        12,
    )


def test_sync_ops_create_update_and_void_entries_by_temp_id(staff: Api, market: Market) -> None:
    ops = [
        op(
            "market.entry.create",
            {"farmer": market.farmer, "flower": market.rose, "qty": 4},
            client_temp_id="e1",
        ),
        op("market.entry.update", {"id": "e1", "qty": 5}, base_version=1),
        op(
            "market.entry.create",
            {"farmer": market.farmer, "flower": market.jasmine, "qty": "1.250"},
            client_temp_id="e2",
        ),
        op("market.entry.void", {"id": "e2", "reason": "double entry"}),
        op("market.entry.update", {"id": "e1", "qty": 7}, base_version=9),
    ]

    reply = send(staff, ops, device="tablet-1")

    assert statuses(reply) == [201, 200, 201, 200, 409], reply.body
    entry_id = reply.body["results"][0]["id_map"]["e1"]
    assert reply.body["results"][1]["body"]["qty"] == 5
    assert reply.body["results"][3]["body"]["status"] == "void"
    assert reply.body["results"][4]["body"]["code"] == "version_conflict"
    replay = send(staff, ops[:1], device="tablet-1")
    assert replay.body["results"][0]["replayed"] is True
    assert Entry.objects.filter(pk=entry_id).get().qty_base == 5


def test_two_tablets_edit_one_entry_offline_and_both_deltas_count(
    staff: Api, admin: Api, market: Market
) -> None:
    rate_every_slot(admin, market.rose, "20.00")
    created = send(
        staff,
        [
            op(
                "market.entry.create",
                {"farmer": market.farmer, "flower": market.rose, "qty": 10},
                client_temp_id="t1",
            )
        ],
        device="tablet-a",
    )
    entry_id = created.body["results"][0]["id_map"]["t1"]

    a = send(
        staff,
        [op("market.entry.update", {"id": entry_id, "qty": 13}, base_version=1)],
        device="tablet-a",
    )
    b = send(
        staff,
        [op("market.entry.update", {"id": entry_id, "qty": 8}, base_version=1)],
        device="tablet-b",
    )

    assert statuses(a) == statuses(b) == [200]
    entry = admin.get(f"{MARKET}/entries/{entry_id}").body
    assert (entry["qty"], entry["gross"], entry["version"]) == (11, "220.00", 3)  # 10 + 3 - 2


def test_a_sync_op_without_arrival_arrived_when_the_device_recorded_it(
    admin: Api, market: Market
) -> None:
    reply = send(
        admin,
        [
            op(
                "market.entry.create",
                {"farmer": market.farmer, "flower": market.rose, "qty": 4},
                client_ts="2026-03-01T00:05:00Z",  # 05:35 in Kolkata, synced much later
            )
        ],
    )

    body = reply.body["results"][0]["body"]
    assert (body["market_day"], body["slot"]) == (DAY, "s1")
    assert body["arrived_at"] == "2026-03-01T00:05:00+00:00"


def test_an_entry_conflict_resolves_keeping_the_devices_fields(admin: Api, market: Market) -> None:
    entry = record(admin, market.farmer, market.rose, 10).body
    path = f"{MARKET}/entries/{entry['id']}"
    admin.patch(path, {"farmer": market.other_farmer, "base_version": 1})
    third = admin.post(
        f"{MARKET}/farmers", {"name": "Kannan", "phone": "+919800000000", "language": "ta"}
    ).body["id"]
    conflict = admin.patch(path, {"farmer": third, "qty": 4, "base_version": 1}).body["conflict"]

    resolved = admin.post(f"/api/v1/conflicts/{conflict}/resolve", {"strategy": "keep_mine"})

    assert resolved.status == 200, resolved.body
    assert (resolved.body["record"]["farmer"], resolved.body["record"]["qty"]) == (third, 4)
    assert resolved.body["record"]["version"] == 3


def test_entries_post_nothing_to_the_journal(admin: Api, market: Market) -> None:
    post_rate(admin, market.rose, "s1", "12.00")
    entry = record(admin, market.farmer, market.rose, 3).body
    admin.patch(f"{MARKET}/entries/{entry['id']}", {"qty": 4})
    admin.post(f"{MARKET}/entries/{entry['id']}/void", {"reason": "x"})

    assert admin.get("/api/v1/journal/entries").body["results"] == []


def test_a_stale_edit_naming_an_unknown_flower_is_400(admin: Api, market: Market) -> None:
    entry = record(admin, market.farmer, market.rose, 10).body
    path = f"{MARKET}/entries/{entry['id']}"
    admin.patch(path, {"qty": 11, "base_version": 1})

    reply = admin.patch(
        path, {"flower": "00000000-0000-0000-0000-000000000000", "qty": 12, "base_version": 1}
    )

    assert (reply.status, list(reply.body["fields"])) == (400, ["flower"])
