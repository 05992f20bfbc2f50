"""Setting up a market for the tests: flowers, farmers, rates, entries."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.conftest import Api

MARKET = "/api/v1/market"
# 2026-03-01 in Asia/Kolkata (UTC+05:30): 04:30 is slot s1, 06:30 s2, 08:30 s3.
DAY = "2026-03-01"
S1_TIME = "2026-03-01T04:30:00+05:30"
S2_TIME = "2026-03-01T06:30:00+05:30"


@dataclass
class Market:
    jasmine: str  # kg
    rose: str  # bundle
    farmer: str
    other_farmer: str


def set_up(admin: Api) -> Market:
    jasmine = admin.post(
        f"{MARKET}/flowers",
        {"code": "jasmine", "name": "Jasmine", "name_ta": "மல்லிகை", "unit": "kg"},
    )
    rose = admin.post(
        f"{MARKET}/flowers", {"code": "rose", "name": "Rose", "name_ta": "ரோஜா", "unit": "bundle"}
    )
    farmer = admin.post(
        f"{MARKET}/farmers", {"name": "Murugan", "phone": "+919876543210", "language": "ta"}
    )
    other = admin.post(
        f"{MARKET}/farmers", {"name": "Valli", "phone": "+919876500000", "language": "en"}
    )
    assert {r.status for r in (jasmine, rose, farmer, other)} == {201}
    return Market(jasmine.body["id"], rose.body["id"], farmer.body["id"], other.body["id"])


def post_rate(admin: Api, flower: str, slot: str, rate: str, date: str = DAY) -> dict[str, Any]:
    reply = admin.post(
        f"{MARKET}/rates", {"flower": flower, "date": date, "slot": slot, "rate": rate}
    )
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


def rate_every_slot(admin: Api, flower: str, rate: str) -> None:
    """A rate for every default slot from long ago: any arrival today is priced."""
    for slot in ("s1", "s2", "s3"):
        post_rate(admin, flower, slot, rate, "2026-01-01")


def record(api: Api, farmer: str, flower: str, qty: Any, at: str | None = S1_TIME) -> Any:
    body: dict[str, Any] = {"farmer": farmer, "flower": flower, "qty": qty}
    if at is not None:
        body["arrived_at"] = at
    return api.post(f"{MARKET}/entries", body)
