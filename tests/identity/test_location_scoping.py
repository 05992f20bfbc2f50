"""Records at a location the caller is not assigned to answer 404, exactly like records that do not
exist, so a scoped user cannot even learn they exist; forbidden resource types answer 403.

HIDDEN lists each resource type with a location: (name, method, path, body). A later resource
plugs in with one line (its `{record}` is made by a factory in RECORD_FACTORIES).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from quartermaster.inventory.invariants import LocationKind
from quartermaster.inventory.models import Location
from tests.conftest import Api, audit_count

pytestmark = pytest.mark.django_db

NOT_FOUND = {"error": "not_found", "code": "not_found"}


@dataclass(frozen=True)
class Hidden:
    resource: str
    method: str
    path: str
    body: dict[str, Any] | None = None


# Reading an item is not here: the catalogue is every staff member's (its `qty` is null for
# those who cannot see the default location: tests/identity/test_scoping_holes.py).
HIDDEN = [
    Hidden("item", "PATCH", "/api/v1/items/{record}/qty", {"delta": 1}),
    Hidden("item", "PATCH", "/items/{record}/qty", {"delta": -1}),
]


def _make_item(admin: Api) -> str:
    return admin.post("/api/v1/items", {"name": "cylinder", "qty": 5}).body["id"]


# resource → factory(admin client) → id of a record at the default location
RECORD_FACTORIES: dict[str, Callable[[Api], str]] = {"item": _make_item}


@pytest.fixture
def van_staff(make_api: Callable[..., Api]) -> Api:
    """Staff assigned only to a van, not to the default location the items API works at."""
    van = Location.objects.create(name="van 7", kind=LocationKind.VEHICLE)
    return make_api("staff", "van-driver", locations=(str(van.id),))


def assert_hidden(api: Api, method: str, path: str, body: dict[str, Any] | None = None) -> None:
    """`api` gets exactly the unknown-record answer, and nothing changes."""
    before = audit_count()
    reply = api.request(method, path, body)
    assert (reply.status, reply.body) == (404, NOT_FOUND), (method, path, reply.status, reply.body)
    assert audit_count() == before


@pytest.mark.parametrize("case", HIDDEN, ids=lambda c: f"{c.method} {c.path}")
def test_records_at_other_locations_look_like_missing_ones(
    case: Hidden, admin: Api, staff: Api, van_staff: Api
) -> None:
    record = RECORD_FACTORIES[case.resource](admin)
    path = case.path.format(record=record)

    assert_hidden(van_staff, case.method, path, case.body)
    # ...and the same answer as for a record that does not exist at all:
    assert_hidden(van_staff, case.method, case.path.format(record=_unknown_id()), case.body)
    # while staff at the record's location reach it.
    assert staff.request(case.method, path, case.body).status == 200


def test_scoped_staff_list_no_stock_from_other_locations(
    admin: Api, staff: Api, van_staff: Api
) -> None:
    _make_item(admin)

    assert [item["qty"] for item in van_staff.get("/api/v1/items").body["results"]] == [None]
    assert [item["qty"] for item in staff.get("/api/v1/items").body["results"]] == [5]


def test_item_stock_is_unchanged_after_a_hidden_adjustment(admin: Api, van_staff: Api) -> None:
    record = _make_item(admin)

    van_staff.patch(f"/api/v1/items/{record}/qty", {"delta": -5})

    assert admin.get(f"/api/v1/items/{record}").body["qty"] == 5


@pytest.mark.parametrize("path", ["/api/v1/audit", "/api/v1/audit/verify", "/api/v1/devices"])
def test_staff_and_parties_may_not_read_audit_or_devices_anywhere(
    path: str, staff: Api, make_api: Callable[..., Api]
) -> None:
    party = make_api("party", "farmer")

    for api in (staff, party):
        reply = api.get(path)
        assert reply.status == 403
        assert reply.body["code"] == "permission_denied"


def _unknown_id() -> str:
    return str(uuid.uuid4())
