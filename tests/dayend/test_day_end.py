"""The driver's day-end through HTTP and sync (issue 12, item 7): the truck's stock from the
ledger and the money its driver took, against what is counted and handed in; the differences
recorded on a manager's approval (a loss with its reason, a shortage in the journal), the day
closed and locked, and an op captured on it that arrives later accepted but flagged."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from quartermaster.cli import main as cli_main
from tests.conftest import Api, audit_count
from tests.ledger_helpers import (
    counts,
    distribute,
    ledger_agrees,
    make_customer,
    make_item,
    make_location,
    ok,
    receive,
    sell,
    stock,
)
from tests.sync.helpers import op, send

pytestmark = pytest.mark.django_db

DAY_ENDS = "/api/v1/day-ends"
ZONE = ZoneInfo("Asia/Kolkata")


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


@dataclass
class Truck:
    depot: str
    truck: str
    driver: Api
    gas: str
    regulator: str
    lakshmi: dict[str, Any]


def a_drivers_day(manager: Api, make_api: Callable[..., Api], depot: str) -> Truck:
    """The truck leaves with 10 cylinders and 5 regulators; the driver sells 3 cylinders,
    takes 2000.00 in cash and a cheque of 500.00."""
    truck = make_location(manager, "Truck 07")
    driver = make_api("staff", "driver07", locations=(depot, truck))
    gas = make_item(manager, "LPG 14.2 kg", price="905.00", tax_rate_bp=500)
    regulator = make_item(manager, "Regulator", price="350.00", tax_rate_bp=1800)
    receive(manager, depot, [{"item": gas, "qty": 20}, {"item": regulator, "qty": 10}])
    ok(distribute(driver, depot, truck, [{"item": gas, "qty": 10}, {"item": regulator, "qty": 5}]))
    lakshmi = make_customer(manager, "Lakshmi Stores")
    ok(sell(driver, lakshmi["id"], truck, [{"item": gas, "qty": 3}]))
    payment = {"customer": lakshmi["id"], "amount": "2000.00", "method": "cash"}
    ok(driver.post("/api/v1/payments", payment))
    ok(driver.post("/api/v1/payments", {**payment, "amount": "500.00", "method": "cheque"}))
    # Money someone else took is not the driver's to hand in.
    ok(manager.post("/api/v1/payments", {**payment, "amount": "99.00"}))
    return Truck(depot, truck, driver, gas, regulator, lakshmi)


def count_body(day: Truck, **fields: Any) -> dict[str, Any]:
    return {
        "location": day.truck,
        "date": today(),
        "counted": [
            {"item": day.gas, "qty": 6, "reason": "one fell off at the Bismi gate"},
            {"item": day.regulator, "qty": 5},
        ],
        "cash_handed_in": "1900.00",
        "cheques_handed_in": "500.00",
        **fields,
    }


def entries_of(api: Api, account: str) -> list[dict[str, Any]]:
    return list(ok(api.get(f"/api/v1/journal/entries?account={account}"), 200)["results"])


def test_a_trucks_day_is_counted_approved_and_closed_with_one_shortage(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)

    counted = day.driver.post(DAY_ENDS, count_body(day))

    assert counted.status == 201, counted.body
    body = counted.body
    assert (body["number"], body["status"], body["drivers"]) == ("DAY-000001", "open", ["driver07"])
    assert body["expected"] == {
        "stock": sorted(
            [
                {"item": day.gas, "condition": None, "qty": 7},
                {"item": day.regulator, "condition": None, "qty": 5},
            ],
            key=lambda row: row["item"],
        ),
        "cash": "2000.00",
        "cheques": "500.00",
    }
    assert (body["counted"]["cash"], body["counted"]["cheques"]) == ("1900.00", "500.00")
    assert body["differences"] == [
        {
            "kind": "stock",
            "item": day.gas,
            "condition": None,
            "expected": 7,
            "counted": 6,
            "difference": -1,
            "reason": "one fell off at the Bismi gate",
            "serials": [],
        },
        {"kind": "cash", "expected": "2000.00", "counted": "1900.00", "difference": "-100.00"},
    ]
    # Nothing is recorded before a manager approves.
    assert stock(manager, day.gas, day.truck) == 7
    assert entries_of(manager, "shortages") == []

    by_driver = day.driver.post(f"{DAY_ENDS}/{body['id']}/approve")
    closed = manager.post(f"{DAY_ENDS}/{body['id']}/approve")

    assert by_driver.status == 403
    assert closed.status == 200, closed.body
    assert (closed.body["status"], closed.body["closed_by"]) == ("closed", "manager")
    assert stock(manager, day.gas, day.truck) == 6
    assert stock(manager, day.regulator, day.truck) == 5
    loss = ok(manager.get(f"/api/v1/movements/{closed.body['loss_movement']}"), 200)
    assert loss["kind"] == "adjustment"
    assert "one fell off at the Bismi gate" in loss["reason"]
    assert closed.body["found_movement"] is None
    [entry] = entries_of(manager, "shortages")
    assert entry["lines"] == [
        {
            "account": "shortages",
            "debit": "100.00",
            "credit": "0.00",
            "memo": "cash short at DAY-000001",
        },
        {
            "account": "cash",
            "debit": "0.00",
            "credit": "100.00",
            "memo": "cash short at DAY-000001",
        },
    ]
    assert entry["id"] == closed.body["journal_entry"]
    assert ledger_agrees() == []
    assert cli_main(["journal", "verify"]) == 0
    assert cli_main(["audit", "verify"]) == 0
    assert cli_main(["stock", "rebuild", "--check"]) == 0


def test_a_closed_day_is_locked(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    day_end = ok(day.driver.post(DAY_ENDS, count_body(day)))
    again_open = day.driver.post(DAY_ENDS, count_body(day))
    ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)
    before = counts()

    approve_again = manager.post(f"{DAY_ENDS}/{day_end['id']}/approve")
    count_again = day.driver.post(DAY_ENDS, count_body(day))

    assert (again_open.status, again_open.body["code"]) == (409, "day_end_exists")
    assert (approve_again.status, approve_again.body["code"]) == (409, "day_closed")
    assert (count_again.status, count_again.body["code"]) == (409, "day_closed")
    assert counts() == before
    assert len(entries_of(manager, "shortages")) == 1


def test_a_count_that_agrees_closes_with_nothing_recorded(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    body = count_body(
        day,
        counted=[{"item": day.gas, "qty": 7}, {"item": day.regulator, "qty": 5}],
        cash_handed_in="2000.00",
    )

    day_end = ok(day.driver.post(DAY_ENDS, body))
    closed = ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)

    assert day_end["differences"] == []
    assert (closed["loss_movement"], closed["found_movement"], closed["journal_entry"]) == (
        None,
        None,
        None,
    )


def test_stock_found_and_cash_over_come_back_on_the_books(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    body = count_body(
        day,
        counted=[{"item": day.gas, "qty": 7}, {"item": day.regulator, "qty": 6}],
        cash_handed_in="2000.50",
        cheques_handed_in="0.00",
    )

    day_end = ok(day.driver.post(DAY_ENDS, body))
    closed = ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)

    assert stock(manager, day.regulator, day.truck) == 6
    assert closed["found_movement"] is not None
    [entry] = entries_of(manager, "shortages")
    assert sorted((line["account"], line["debit"], line["credit"]) for line in entry["lines"]) == [
        ("cash", "0.50", "0.00"),
        ("cheques", "0.00", "500.00"),
        ("shortages", "0.00", "0.50"),
        ("shortages", "500.00", "0.00"),
    ]
    assert cli_main(["journal", "verify"]) == 0
    assert cli_main(["stock", "rebuild", "--check"]) == 0


def test_a_condition_is_accepted_and_folded_while_stock_has_none(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    body = count_body(
        day,
        counted=[
            {"item": day.gas, "condition": "full", "qty": 4},
            {"item": day.gas, "condition": "empty", "qty": 3},
            {"item": day.regulator, "qty": 5},
        ],
        cash_handed_in="2000.00",
    )

    day_end = ok(day.driver.post(DAY_ENDS, body))

    assert day_end["differences"] == []


def test_an_op_captured_on_a_closed_day_is_accepted_and_flagged_for_review(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    other_truck = make_location(manager, "Truck 9")
    other_driver = make_api("staff", "driver09", locations=(other_truck,))
    day_end = ok(day.driver.post(DAY_ENDS, count_body(day)))
    ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)
    captured = (datetime.now(ZONE) - timedelta(minutes=5)).isoformat()
    payment = {"customer": day.lakshmi["id"], "amount": "150.00", "method": "cash"}

    late = send(day.driver, [op("payment.record", payment, client_ts=captured)])
    elsewhere = send(
        other_driver,
        [op("payment.record", {**payment, "amount": "10.00"}, client_ts=captured)],
        device="truck-09",
    )

    [flagged_answer] = late.body["results"]
    [other_answer] = elsewhere.body["results"]
    assert (flagged_answer["status"], flagged_answer["review"]) == (201, True)
    assert (other_answer["status"], other_answer["review"]) == (201, False)
    # Booked at server time: never dated back into the closed day's figures.
    assert flagged_answer["body"]["created_at"] > day_end["created_at"]
    detail = ok(day.driver.get(f"{DAY_ENDS}/{day_end['id']}"), 200)
    [listed] = detail["late_ops"]
    assert (listed["action"], listed["actor"], listed["client_ts"], listed["review"]) == (
        "payment.record",
        "driver07",
        captured,
        True,
    )
    assert {"type": "payment", "id": flagged_answer["body"]["id"]} in listed["records"]
    assert detail["status"] == "closed"
    assert detail["expected"]["cash"] == "2000.00"  # the closed day's figures stay as they were
    # Recorded over REST after the close, on the closed day: listed too.
    ok(day.driver.post("/api/v1/payments", {**payment, "amount": "5.00"}))
    later = ok(day.driver.get(f"{DAY_ENDS}/{day_end['id']}"), 200)["late_ops"]
    assert [(op["action"], op["client_ts"]) for op in later] == [
        ("payment.record", captured),
        ("payment.record", ""),
    ]


def test_day_ends_are_sync_ops_with_temp_ids(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    count = op("day_end.create", count_body(day), client_temp_id="temp_day")
    approve_by_driver = op("day_end.approve", {"day_end": "temp_day"})

    counted = send(day.driver, [count, approve_by_driver])
    approved = send(
        manager,
        [op("day_end.approve", {"day_end": counted.body["results"][0]["body"]["id"]})],
        device="office-1",
    )

    [created, refused] = counted.body["results"]
    assert created["status"] == 201, created
    assert created["id_map"] == {"temp_day": created["body"]["id"]}
    assert refused["status"] == 403
    assert approved.body["results"][0]["status"] == 200
    assert approved.body["results"][0]["body"]["status"] == "closed"


def test_day_ends_are_scoped_and_refused_plainly(
    manager: Api, auditor: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    other_driver = make_api("staff", locations=(make_location(manager, "Truck 9"),))
    day_end = ok(day.driver.post(DAY_ENDS, count_body(day)))
    tomorrow = (datetime.now(ZONE).date() + timedelta(days=1)).isoformat()
    before = audit_count()

    replies = {
        "other truck counts": other_driver.post(DAY_ENDS, count_body(day)),
        "other truck reads": other_driver.get(f"{DAY_ENDS}/{day_end['id']}"),
        "auditor counts": auditor.post(DAY_ENDS, count_body(day)),
        "future day": day.driver.post(DAY_ENDS, count_body(day, date=tomorrow)),
        "unknown item": day.driver.post(
            DAY_ENDS, count_body(day, counted=[{"item": str(uuid.uuid4()), "qty": 1}])
        ),
        "twice": day.driver.post(
            DAY_ENDS,
            count_body(day, counted=[{"item": day.gas, "qty": 1}, {"item": day.gas, "qty": 1}]),
        ),
        "negative": day.driver.post(
            DAY_ENDS, count_body(day, counted=[{"item": day.gas, "qty": -1}])
        ),
        "bad money": day.driver.post(DAY_ENDS, count_body(day, cash_handed_in="12.345")),
        "bad condition": day.driver.post(
            DAY_ENDS, count_body(day, counted=[{"item": day.gas, "condition": "half", "qty": 1}])
        ),
        "unknown approve": manager.post(f"{DAY_ENDS}/{uuid.uuid4()}/approve"),
    }

    assert {name: reply.status for name, reply in replies.items()} == {
        "other truck counts": 404,
        "other truck reads": 404,
        "auditor counts": 403,
        "future day": 400,
        "unknown item": 400,
        "twice": 400,
        "negative": 400,
        "bad money": 400,
        "bad condition": 400,
        "unknown approve": 404,
    }
    assert all("code" in reply.body for reply in replies.values())
    assert audit_count() == before
    listed = ok(other_driver.get(DAY_ENDS), 200)
    assert listed["results"] == []
    assert [row["id"] for row in ok(manager.get(f"{DAY_ENDS}?status=open"), 200)["results"]] == [
        day_end["id"]
    ]


def test_a_serialized_unit_short_is_written_off_by_its_serial(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    depot = default_location_id
    truck = make_location(manager, "Truck 11")
    driver = make_api("staff", "driver11", locations=(depot, truck))
    cylinder = make_item(manager, "LPG 19 kg", price="1700.00", tracking="serial")
    serials = ["C001", "C002", "C003", "C004"]
    receive(manager, depot, [{"item": cylinder, "qty": 4, "serials": serials}])
    ok(distribute(driver, depot, truck, [{"item": cylinder, "qty": 4, "serials": serials}]))
    body = {"location": truck, "date": today(), "cash_handed_in": "0.00"}

    unnamed = driver.post(DAY_ENDS, {**body, "counted": [{"item": cylinder, "qty": 3}]})
    wrong = driver.post(
        DAY_ENDS,
        {**body, "counted": [{"item": cylinder, "qty": 3, "serials": ["C001", "C002", "X9"]}]},
    )
    counted = [
        {"item": cylinder, "qty": 3, "serials": ["C001", "C002", "C003"], "reason": "stolen"}
    ]
    day_end = ok(driver.post(DAY_ENDS, {**body, "counted": counted}))
    ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)

    assert (unnamed.status, list(unnamed.body["fields"])) == (400, ["counted[0].serials"])
    assert wrong.status == 400
    assert day_end["differences"][0]["serials"] == ["C004"]
    assert stock(manager, cylinder, truck) == 3
    assets = ok(manager.get(f"/api/v1/assets?item={cylinder}"), 200)
    where = {asset["serial"]: asset["location"] for asset in assets}
    assert where["C003"] == truck
    assert where["C004"] != truck
    assert cli_main(["stock", "rebuild", "--check"]) == 0


def test_a_serialized_returnable_items_missing_units_are_named_per_condition(
    manager: Api, make_api: Callable[..., Api], default_location_id: str
) -> None:
    depot = default_location_id
    truck = make_location(manager, "Truck 12")
    driver = make_api("staff", "driver12", locations=(depot, truck))
    cylinder = make_item(
        manager, "LPG 19 kg", tracking="serial", price="1700.00", deposit="2000.00", returnable=True
    )
    fulls = {"item": cylinder, "qty": 2, "serials": ["F1", "F2"], "condition": "full"}
    empties = {"item": cylinder, "qty": 3, "serials": ["E1", "E2", "E3"], "condition": "empty"}
    receive(manager, depot, [fulls, empties])
    ok(distribute(driver, depot, truck, [fulls, empties]))
    counted = [
        {"item": cylinder, "condition": "full", "qty": 1, "serials": ["F1"], "reason": "fell"},
        {"item": cylinder, "condition": "empty", "qty": 1, "serials": ["E2"], "reason": "lost"},
    ]
    body = {"location": truck, "date": today(), "cash_handed_in": "0.00", "counted": counted}

    day_end = ok(driver.post(DAY_ENDS, body))
    ok(manager.post(f"{DAY_ENDS}/{day_end['id']}/approve"), 200)

    short = {row["condition"]: row["serials"] for row in day_end["differences"]}
    assert short == {"full": ["F2"], "empty": ["E1", "E3"]}
    assets = ok(manager.get(f"/api/v1/assets?item={cylinder}"), 200)
    on_truck = {asset["serial"]: asset["state"] for asset in assets if asset["location"] == truck}
    assert on_truck == {"F1": "full", "E2": "empty"}
    assert cli_main(["stock", "rebuild", "--check"]) == 0


@pytest.mark.parametrize(
    "client_ts", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "2026-01-01"]
)
def test_any_capture_time_a_device_sends_is_answered(
    manager: Api, make_api: Callable[..., Api], default_location_id: str, client_ts: str
) -> None:
    day = a_drivers_day(manager, make_api, default_location_id)
    payment = {"customer": day.lakshmi["id"], "amount": "1.00", "method": "cash"}

    reply = send(day.driver, [op("payment.record", payment, client_ts=client_ts)])

    assert reply.status == 200, reply.body
    assert reply.body["results"][0]["review"] is False
