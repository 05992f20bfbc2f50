"""The market's catalogue through HTTP: flower types, settings versions, farmers and rates by
time slot."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.core.models import Conflict
from quartermaster.market.models import Farmer, Flower, MarketSettings, RatePosting
from tests.conftest import Api, audit_count, create_user

pytestmark = pytest.mark.django_db

MARKET = "/api/v1/market"
JASMINE = {"code": "jasmine", "name": "Jasmine", "name_ta": "மல்லிகை", "unit": "kg"}
FARMER = {"name": "Murugan", "phone": "+919876543210", "language": "ta"}
SETTINGS = {
    "timezone": "Asia/Kolkata",
    "slots": [
        {"code": "early", "starts": "03:30", "ends": "06:00"},
        {"code": "late", "starts": "06:00", "ends": "09:00"},
    ],
    "commission_bp": 800,
    "fees": [
        {
            "code": "porter",
            "name": "Porter",
            "name_ta": "சுமை கூலி",
            "kind": "per_unit",
            "value": "1.50",
        },
        {"code": "cess", "name": "Cess", "name_ta": "வரி", "kind": "percent_bp", "value": 100},
    ],
}


def put(api: Api, body: Any) -> Any:
    return api.request("PUT", f"{MARKET}/settings", body)


def test_flowers_are_created_and_listed_with_tamil_names_round_tripping(
    admin: Api, staff: Api, auditor: Api
) -> None:
    # ரோஜா typed as ர + ே + ா (decomposed): stored and answered in NFC, ர + ோ.
    decomposed = {
        **JASMINE,
        "code": "rose",
        "name": "  Rose ",
        "name_ta": "\u0bb0\u0bc7\u0bbe\u0b9c\u0bbe",
        "unit": "bundle",
    }

    created = admin.post(f"{MARKET}/flowers", JASMINE)
    admin.post(f"{MARKET}/flowers", decomposed)

    assert created.status == 201, created.body
    assert created.body["name_ta"] == "மல்லிகை"
    assert {k: created.body[k] for k in ("code", "name", "unit")} == {
        "code": "jasmine",
        "name": "Jasmine",
        "unit": "kg",
    }
    for reader in (staff, auditor):
        listed = reader.get(f"{MARKET}/flowers?limit=1")
        assert listed.status == 200
        assert [f["code"] for f in listed.body["results"]] == ["jasmine"]
        rest = reader.get(f"{MARKET}/flowers?limit=1&cursor={listed.body['next_cursor']}")
        assert [(f["code"], f["name"], f["name_ta"]) for f in rest.body["results"]] == [
            ("rose", "Rose", "\u0bb0\u0bcb\u0b9c\u0bbe")
        ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**JASMINE, "name_ta": "  "}, "name_ta"),
        ({**JASMINE, "name_ta": "மல்\u200bலிகை"}, "name_ta"),
        ({**JASMINE, "name": "Jas\x07mine"}, "name"),
        ({**JASMINE, "unit": "litre"}, "unit"),
        ({**JASMINE, "code": "has space"}, "code"),
        ({k: v for k, v in JASMINE.items() if k != "name_ta"}, "name_ta"),
        ({**JASMINE, "unit": 1}, "unit"),
    ],
)
def test_bad_flowers_are_refused_naming_the_field(admin: Api, body: Any, field: str) -> None:
    before = audit_count()

    reply = admin.post(f"{MARKET}/flowers", body)

    assert reply.status == 400, reply.body
    assert field in reply.body["fields"]
    assert (Flower.objects.count(), audit_count()) == (0, before)


def test_a_flower_code_is_unique(admin: Api) -> None:
    admin.post(f"{MARKET}/flowers", JASMINE)

    reply = admin.post(f"{MARKET}/flowers", {**JASMINE, "name": "Other"})

    assert reply.status == 400
    assert reply.body["fields"] == {"code": "already exists"}


def test_settings_default_then_every_change_is_a_new_version(admin: Api, staff: Api) -> None:
    default = staff.get(f"{MARKET}/settings")
    assert default.status == 200
    assert default.body == {
        "timezone": "Asia/Kolkata",
        "slots": [
            {"code": "s1", "starts": "04:00", "ends": "06:00"},
            {"code": "s2", "starts": "06:00", "ends": "08:00"},
            {"code": "s3", "starts": "08:00", "ends": "10:00"},
        ],
        "commission_bp": 1000,
        "fees": [],
        "version": 1,
        "created_at": None,
    }
    before = audit_count()

    first = put(admin, SETTINGS)
    second = put(admin, {**SETTINGS, "commission_bp": 900, "fees": []})

    assert first.status == 200, first.body
    assert (first.body["version"], second.body["version"]) == (2, 3)
    assert first.body["fees"] == SETTINGS["fees"]
    current = staff.get(f"{MARKET}/settings").body
    assert (current["version"], current["commission_bp"], current["fees"]) == (3, 900, [])
    kept = list(MarketSettings.objects.order_by("version").values_list("version", "commission_bp"))
    assert kept == [(2, 800), (3, 900)]
    assert audit_count() == before + 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"commission_bp": 10001}, "commission_bp"),
        ({"commission_bp": -1}, "commission_bp"),
        ({"commission_bp": True}, "commission_bp"),
        ({"slots": []}, "slots"),
        ({"slots": [{"code": "a", "starts": "4:00", "ends": "06:00"}]}, "slots[0].starts"),
        ({"slots": [{"code": "a", "starts": "06:00", "ends": "24:00"}]}, "slots[0].ends"),
        ({"slots": [{"code": "a", "starts": "06:00", "ends": "05:00"}]}, "slots[0].ends"),
        (
            {
                "slots": [
                    {"code": "a", "starts": "04:00", "ends": "06:00"},
                    {"code": "b", "starts": "05:00", "ends": "07:00"},
                ]
            },
            "slots[1].starts",
        ),
        (
            {
                "slots": [
                    {"code": "a", "starts": "06:00", "ends": "07:00"},
                    {"code": "b", "starts": "04:00", "ends": "05:00"},
                ]
            },
            "slots[1].starts",
        ),
        (
            {
                "fees": [
                    {"code": "x", "name": "X", "name_ta": "எ", "kind": "percent_bp", "value": 10001}
                ]
            },
            "fees[0].value",
        ),
        (
            {
                "fees": [
                    {"code": "x", "name": "X", "name_ta": "எ", "kind": "per_unit", "value": "-1"}
                ]
            },
            "fees[0].value",
        ),
        (
            {"fees": [{"code": "x", "name": "X", "name_ta": "எ", "kind": "per_entry", "value": 5}]},
            "fees[0].value",
        ),
        (
            {"fees": [{"code": "x", "name": "X", "name_ta": "எ", "kind": "bribe", "value": "1"}]},
            "fees[0].kind",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_field(
    admin: Api, change: dict[str, Any], field: str
) -> None:
    reply = put(admin, {**SETTINGS, **change})

    assert reply.status == 400, reply.body
    assert any(name.startswith(field) for name in reply.body["fields"]), reply.body
    assert MarketSettings.objects.count() == 0


def test_farmers_are_numbered_without_gaps_and_listed(admin: Api, staff: Api) -> None:
    party = create_user("murugan", "party")

    first = admin.post(f"{MARKET}/farmers", {**FARMER, "user": party["id"]})
    refused = admin.post(f"{MARKET}/farmers", {**FARMER, "phone": "12345"})
    second = admin.post(
        f"{MARKET}/farmers",
        {
            **FARMER,
            "name": "Lakshmi",
            "name_ta": "லட்சுமி",
            "village": "Thovalai",
            "commission_bp": 750,
        },
    )

    assert first.status == 201, first.body
    assert refused.status == 400 and "phone" in refused.body["fields"]
    assert (first.body["number"], second.body["number"]) == ("FMR-000001", "FMR-000002")
    assert first.body["user"] == party["id"]
    assert (first.body["advance_outstanding"], first.body["payable"]) == ("0.00", "0.00")
    assert first.body["version"] == 1
    assert second.body["name_ta"] == "லட்சுமி"
    listed = staff.get(f"{MARKET}/farmers")
    assert [f["number"] for f in listed.body["results"]] == ["FMR-000001", "FMR-000002"]
    assert staff.get(f"{MARKET}/farmers/{second.body['id']}").body == second.body


def test_a_farmer_links_only_an_existing_party_user(admin: Api) -> None:
    clerk = create_user("clerk", "staff")
    party = create_user("valli", "party")
    admin.post(f"{MARKET}/farmers", {**FARMER, "user": party["id"]})

    not_party = admin.post(f"{MARKET}/farmers", {**FARMER, "user": clerk["id"]})
    unknown = admin.post(
        f"{MARKET}/farmers", {**FARMER, "user": "00000000-0000-0000-0000-000000000001"}
    )
    taken = admin.post(f"{MARKET}/farmers", {**FARMER, "user": party["id"]})

    for reply in (not_party, unknown, taken):
        assert reply.status == 400, reply.body
        assert "user" in reply.body["fields"]
    assert Farmer.objects.count() == 1


def test_a_stale_farmer_patch_is_a_version_conflict_with_a_record(admin: Api) -> None:
    farmer = admin.post(f"{MARKET}/farmers", FARMER).body
    path = f"{MARKET}/farmers/{farmer['id']}"

    moved = admin.patch(path, {"village": "Thovalai"}, headers={"If-Match": '"1"'})
    stale = admin.patch(path, {"phone": "9999999999", "base_version": 1})

    assert moved.status == 200, moved.body
    assert (moved.body["village"], moved.body["version"]) == ("Thovalai", 2)
    assert stale.status == 409
    assert stale.body["code"] == "version_conflict"
    assert stale.body["current"]["version"] == 2
    conflict = Conflict.objects.get(pk=stale.body["conflict"])
    assert conflict.entity == "market.farmer"
    assert admin.get(path).body["phone"] == FARMER["phone"]


def post_rate(api: Api, flower: str, day: str, rate: str, slot: str = "s1") -> Any:
    return api.post(f"{MARKET}/rates", {"flower": flower, "date": day, "slot": slot, "rate": rate})


def test_a_rate_holds_from_its_date_until_a_later_posting(admin: Api, staff: Api) -> None:
    flower = admin.post(f"{MARKET}/flowers", JASMINE).body["id"]
    day1 = post_rate(admin, flower, "2026-03-01", "400.00")
    post_rate(admin, flower, "2026-03-05", "450.50")

    def on(day: str) -> dict[str, Any]:
        reply = staff.get(f"{MARKET}/rates?date={day}&flower={flower}")
        assert reply.status == 200, reply.body
        return {row["slot"]: row for row in reply.body["results"]}

    assert day1.status == 201, day1.body
    assert on("2026-03-03")["s1"]["rate"] == "400.00"
    assert on("2026-03-05")["s1"]["rate"] == "450.50"
    assert on("2026-03-06")["s1"]["rate"] == "450.50"
    assert on("2026-02-28")["s1"]["rate"] is None
    assert on("2026-03-06")["s2"]["rate"] is None
    history = on("2026-02-28")["s1"]["history"]
    assert [(h["date"], h["rate"]) for h in history] == [
        ("2026-03-05", "450.50"),
        ("2026-03-01", "400.00"),
    ]


def test_a_later_posting_for_the_same_date_supersedes_and_both_are_kept(admin: Api) -> None:
    flower = admin.post(f"{MARKET}/flowers", JASMINE).body["id"]
    post_rate(admin, flower, "2026-03-01", "400.00")
    post_rate(admin, flower, "2026-03-01", "420.00")

    row = admin.get(f"{MARKET}/rates?date=2026-03-01").body["results"][0]

    assert row["rate"] == "420.00"
    assert len(row["history"]) == 2
    assert RatePosting.objects.count() == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"rate": "0"}, "rate"),
        ({"rate": "-5.00"}, "rate"),
        ({"rate": "1.234"}, "rate"),
        ({"rate": "abc"}, "rate"),
        ({"date": "2026-02-30"}, "date"),
        ({"date": "yesterday"}, "date"),
        ({"slot": "midnight"}, "slot"),
        ({"flower": "00000000-0000-0000-0000-000000000001"}, "flower"),
        ({"flower": "not-a-uuid"}, "flower"),
    ],
)
def test_bad_rates_are_refused_naming_the_field(
    admin: Api, change: dict[str, Any], field: str
) -> None:
    flower = admin.post(f"{MARKET}/flowers", JASMINE).body["id"]
    body = {"flower": flower, "date": "2026-03-01", "slot": "s1", "rate": "10.00", **change}

    reply = admin.post(f"{MARKET}/rates", body)

    assert reply.status == 400, reply.body
    assert field in reply.body["fields"]
    assert RatePosting.objects.count() == 0


def test_bad_rate_queries_are_400(admin: Api) -> None:
    assert admin.get(f"{MARKET}/rates?date=31-01-2026").status == 400
    assert admin.get(f"{MARKET}/rates?flower=nope").status == 400
    assert admin.get(f"{MARKET}/rates?cursor=garbage").status == 400
    assert admin.get(f"{MARKET}/rates").status == 200


def test_staff_and_managers_cannot_write_the_market(
    admin: Api, staff: Api, manager: Api, auditor: Api
) -> None:
    flower = admin.post(f"{MARKET}/flowers", JASMINE).body["id"]
    farmer = admin.post(f"{MARKET}/farmers", FARMER).body["id"]
    before = audit_count()

    for api in (staff, manager, auditor):
        writes = [
            api.post(f"{MARKET}/flowers", {**JASMINE, "code": "rose"}),
            put(api, SETTINGS),
            api.post(f"{MARKET}/farmers", FARMER),
            api.patch(f"{MARKET}/farmers/{farmer}", {"village": "X"}),
            post_rate(api, flower, "2026-03-01", "1.00"),
        ]
        assert [reply.status for reply in writes] == [403] * 5
        assert api.get(f"{MARKET}/farmers").status == 200
    assert audit_count() == before


def test_a_farmer_conflict_resolved_keep_mine_applies_the_stale_fields(admin: Api) -> None:
    farmer = admin.post(f"{MARKET}/farmers", FARMER).body
    path = f"{MARKET}/farmers/{farmer['id']}"
    admin.patch(path, {"village": "Thovalai", "base_version": 1})
    stale = admin.patch(path, {"phone": "9999999999", "base_version": 1})

    reply = admin.post(
        f"/api/v1/conflicts/{stale.body['conflict']}/resolve", {"strategy": "keep_mine"}
    )

    assert reply.status == 200, reply.body
    current = admin.get(path).body
    assert (current["phone"], current["village"], current["version"]) == (
        "9999999999",
        "Thovalai",
        3,
    )
