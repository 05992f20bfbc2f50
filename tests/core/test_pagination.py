"""Keyset pagination: a cursor carries the last row's typed key and nothing else gets in (every
malformed cursor is a 400 naming `cursor`, never a 5xx), and walking any list page by page with
a small limit sees every record exactly once, in order, even where the first key field ties."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.db.models import Q
from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.errors import Invalid
from quartermaster.core.models import Conflict
from quartermaster.core.pagination import (
    MAX_CURSOR_LENGTH,
    Keyset,
    Page,
    clean_limit,
    int_key,
    text_key,
    time_key,
    uuid_key,
)
from quartermaster.identity.models import Device
from tests.conftest import Api, create_user, login

BY_NAME = Keyset(fields=(text_key("name"), uuid_key("id")))
BY_TIME = Keyset(fields=(time_key("at"), text_key("name")), descending=True)
BY_SEQ = Keyset(fields=(int_key("seq"),))
KEYSETS = [BY_NAME, BY_TIME, BY_SEQ]


def wire(value: Any) -> str:
    """A cursor as a client could forge one: any JSON, encoded the way ours are."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


# Pure parts ------------------------------------------------------------------------------------


def test_a_cursor_carries_the_last_rows_typed_key_back() -> None:
    row_id = uuid.uuid4()
    at = datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)

    by_name = BY_NAME.position(BY_NAME.cursor_of(SimpleNamespace(name="Ölfass 🛢", id=row_id)))
    by_time = BY_TIME.position(BY_TIME.cursor_of(SimpleNamespace(at=at, name="till-1")))
    by_seq = BY_SEQ.position(BY_SEQ.cursor_of(SimpleNamespace(seq=2**63 - 1)))

    assert by_name == ("Ölfass 🛢", row_id)
    assert by_time == (at, "till-1")
    assert by_seq == (2**63 - 1,)


def test_cursors_keep_the_wire_format_clients_already_hold() -> None:
    row_id = uuid.UUID("0b9f6c3e-8a43-4c4e-9d1e-5f0f7a1b2c3d")
    at = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)

    assert BY_NAME.cursor_of(SimpleNamespace(name="apple", id=row_id)) == wire(
        ["apple", str(row_id)]
    )
    assert BY_TIME.cursor_of(SimpleNamespace(at=at, name="t")) == wire([at.isoformat(), "t"])
    assert BY_SEQ.cursor_of(SimpleNamespace(seq=7)) == wire(7)  # a bare seq, not a list


def test_no_cursor_is_the_first_page() -> None:
    assert BY_NAME.position(None) is None
    assert BY_NAME.position("") is None


def test_the_longest_cursor_we_issue_fits_the_limit() -> None:
    # 200 characters is the longest name; astral ones are escaped as surrogate pairs in JSON.
    longest = BY_NAME.cursor_of(SimpleNamespace(name="🛢" * 200, id=uuid.uuid4()))

    assert len(longest) < MAX_CURSOR_LENGTH
    assert BY_NAME.position(longest) is not None


GARBAGE_FOR_EVERY_KEYSET = [
    "@@@@",  # not base64
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),  # not JSON
    wire(None),
    wire(True),
    wire(1.5),
    wire({"name": "apple"}),
    wire([]),
    wire([[[]]]),
    wire(["a", "b", "c"]),
    wire([None, None]),
    wire(10**30),
    wire([10**30, "x"]),
    "W" * (MAX_CURSOR_LENGTH + 1),
    base64.urlsafe_b64encode(b"[" * 3000).decode(),  # nested deeper than the parser goes
]


@pytest.mark.parametrize("cursor", GARBAGE_FOR_EVERY_KEYSET)
@pytest.mark.parametrize("keyset", KEYSETS, ids=["by_name", "by_time", "by_seq"])
def test_a_malformed_cursor_is_invalid_naming_the_cursor(keyset: Keyset, cursor: str) -> None:
    with pytest.raises(Invalid) as refused:
        keyset.position(cursor)

    assert refused.value.fields == {"cursor": "not a cursor this server issued"}


@pytest.mark.parametrize(
    ("keyset", "position"),
    [
        (BY_NAME, ["apple", "not-a-uuid"]),
        (BY_NAME, ["apple", 5]),
        (BY_NAME, [5, str(uuid.uuid4())]),
        (BY_NAME, ["ap\u0000ple", str(uuid.uuid4())]),  # PostgreSQL text cannot hold NUL
        (BY_NAME, ["\ud800", str(uuid.uuid4())]),  # a lone surrogate is not UTF-8
        (BY_TIME, ["yesterday", "till-1"]),
        (BY_TIME, ["2024-05-01T12:00:00", "till-1"]),  # naive: we only issue aware times
        (BY_TIME, ["0001-01-01T00:00:00+01:00", "till-1"]),  # before year 1 in UTC
        (BY_TIME, ["9999-12-31T23:59:59-01:00", "till-1"]),  # after year 9999 in UTC
        (BY_TIME, ["2024-05-01T12:00:00+00:00", 5]),
        (BY_SEQ, -1),
        (BY_SEQ, 2**63),
        (BY_SEQ, True),
        (BY_SEQ, "7"),
        (BY_SEQ, [7]),
    ],
)
def test_a_position_of_the_wrong_shape_or_type_is_invalid(keyset: Keyset, position: Any) -> None:
    with pytest.raises(Invalid) as refused:
        keyset.position(wire(position))

    assert refused.value.fields == {"cursor": "not a cursor this server issued"}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=8,
)


@given(value=JSON)
def test_any_json_is_either_a_typed_position_or_invalid(value: Any) -> None:
    for keyset in KEYSETS:
        try:
            position = keyset.position(wire(value))
        except Invalid:
            continue
        assert position is not None
        assert len(position) == len(keyset.fields)


@given(cursor=st.text(max_size=200))
def test_any_text_is_either_a_position_or_invalid(cursor: str) -> None:
    for keyset in KEYSETS:
        try:
            keyset.position(cursor)
        except Invalid:
            continue


def test_the_keyset_condition_is_a_row_comparison_in_q_objects() -> None:
    row_id = uuid.uuid4()
    at = datetime(2024, 5, 1, tzinfo=UTC)

    assert BY_NAME.after(("apple", row_id)) == Q(name__gt="apple") | Q(name="apple", id__gt=row_id)
    assert BY_TIME.after((at, "t")) == Q(at__lt=at) | Q(at=at, name__lt="t")
    assert BY_SEQ.after((7,)) == Q(seq__gt=7)
    assert BY_NAME.ordering() == ["name", "id"]
    assert BY_TIME.ordering() == ["-at", "-name"]


@pytest.mark.parametrize("limit", [0, 501, -1, True])
def test_a_limit_outside_1_to_500_is_invalid(limit: int) -> None:
    with pytest.raises(Invalid) as refused:
        clean_limit(limit)

    assert set(refused.value.fields or {}) == {"limit"}


def test_a_page_maps_its_rows_and_keeps_its_cursor() -> None:
    assert Page([1, 2], "next").map(str) == Page(["1", "2"], "next")


# Over HTTP -------------------------------------------------------------------------------------


def walk(api: Api, path: str, *, limit: int) -> list[dict[str, Any]]:
    """Every record of a list, following next_cursor; each page is full until the last."""
    seen: list[dict[str, Any]] = []
    cursor = ""
    while True:
        separator = "&" if "?" in path else "?"
        reply = api.get(f"{path}{separator}limit={limit}&cursor={cursor}")
        assert reply.status == 200, reply.body
        seen.extend(reply.body["results"])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return seen
        assert len(reply.body["results"]) == limit


def test_customers_are_walked_by_name_then_id_ties_included(admin: Api) -> None:
    for name in ["Zeta", "Alpha", "Mid", "Alpha", "Alpha"]:
        assert admin.post("/api/v1/customers", {"name": name, "phone": "1"}).status == 201

    walked = walk(admin, "/api/v1/customers", limit=2)

    expected = sorted((c["name"], uuid.UUID(c["id"])) for c in walked)
    assert [(c["name"], uuid.UUID(c["id"])) for c in walked] == expected
    assert len({c["id"] for c in walked}) == 5


def test_locations_are_walked_by_name_with_the_kind_filter_kept(admin: Api) -> None:
    for name, kind in [("Van 2", "vehicle"), ("Depot", "depot"), ("Van 1", "vehicle")]:
        assert admin.post("/api/v1/locations", {"name": name, "kind": kind}).status == 201
    everything = admin.get("/api/v1/locations?limit=500").body["results"]

    walked = walk(admin, "/api/v1/locations", limit=1)
    vans = walk(admin, "/api/v1/locations?kind=vehicle", limit=1)

    assert walked == everything  # the reference locations of the migrations included
    assert [r["name"] for r in vans] == ["Van 1", "Van 2"]


def test_devices_are_walked_most_recent_first_ties_by_device_id(admin: Api) -> None:
    create_user("driver", "staff")
    for device_id in ["till-1", "truck-07", "truck-08", "van-3"]:
        login("driver", device_id=device_id)
    same_time = datetime(2024, 5, 1, 12, tzinfo=UTC)
    Device.objects.filter(pk__in=["till-1", "truck-08", "van-3"]).update(last_seen_at=same_time)
    Device.objects.filter(pk="truck-07").update(last_seen_at=same_time + timedelta(hours=1))

    walked = walk(admin, "/api/v1/devices", limit=1)

    assert [d["device_id"] for d in walked] == ["truck-07", "van-3", "truck-08", "till-1"]


def test_conflicts_are_walked_oldest_first_ties_by_id(admin: Api) -> None:
    customer = admin.post("/api/v1/customers", {"name": "Lakshmi Stores", "phone": "1"}).body
    path = f"/api/v1/customers/{customer['id']}"
    assert admin.patch(path, {"name": "v2"}).status == 200
    for n in range(4):
        assert admin.patch(path, {"name": f"stale {n}", "base_version": 1}).status == 409
    Conflict.objects.update(created_at=datetime(2024, 5, 1, tzinfo=UTC))

    walked = walk(admin, "/api/v1/conflicts", limit=1)

    assert [c["id"] for c in walked] == sorted(c["id"] for c in walked)
    assert len({c["id"] for c in walked}) == 4


def test_the_audit_chain_is_walked_by_seq_with_filters_kept(admin: Api) -> None:
    item_id = admin.post("/api/v1/items", {"name": "apple", "qty": 5}).body["id"]
    for _ in range(4):
        admin.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1})
    admin.post("/api/v1/items", {"name": "pear", "qty": 1})
    everything = admin.get("/api/v1/audit?limit=500").body["results"]

    walked = walk(admin, "/api/v1/audit", limit=2)
    apple = walk(admin, f"/api/v1/audit?entity_id={item_id}", limit=2)

    assert walked == everything
    assert [e["seq"] for e in walked] == sorted(e["seq"] for e in walked)
    assert [e["entity_id"] for e in apple] == [item_id] * 5


LIST_GARBAGE = {
    "/api/v1/items": [wire(["apple", "not-a-uuid"]), wire(["apple", 5]), wire([1, 2])],
    "/api/v1/locations": [wire(["Depot", "not-a-uuid"]), wire(["\ud800", str(uuid.uuid4())])],
    "/api/v1/customers": [wire(["Zeta", "not-a-uuid"]), wire(["a\u0000", str(uuid.uuid4())])],
    "/api/v1/devices": [wire(["not-a-date", "x"]), wire(["2024-05-01T12:00:00", "x"])],
    "/api/v1/conflicts": [
        wire(["2024-05-01T12:00:00+00:00", "not-a-uuid"]),
        wire(["0001-01-01T00:00:00+01:00", str(uuid.uuid4())]),
    ],
    "/api/v1/audit": [wire(-1), wire(2**63), wire(True), wire("7"), wire([7])],
    "/api/v1/journal/entries": [wire(-1), wire(2**63), wire(False), wire("7")],
    "/api/v1/journal/accounts": [wire(7), wire("a\u0000"), wire(["cash", "x"])],
}


@pytest.mark.parametrize("path", list(LIST_GARBAGE))
def test_every_list_answers_a_malformed_cursor_400_naming_it(admin: Api, path: str) -> None:
    for cursor in GARBAGE_FOR_EVERY_KEYSET + LIST_GARBAGE[path]:
        reply = admin.get(f"{path}?cursor={cursor}")

        assert (reply.status, reply.body) == (
            400,
            {
                "error": "not a cursor this server issued",
                "code": "invalid",
                "fields": {"cursor": "not a cursor this server issued"},
            },
        ), cursor
