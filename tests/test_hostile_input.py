"""Hostile input never answers 5xx and changes nothing (issue 10, item 1: the cases below)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import Api, audit_count

HUGE = 10**30
LIMIT_63 = 2**63


@pytest.mark.parametrize("version", [LIMIT_63, HUGE, -1])
def test_a_base_version_beyond_63_bits_is_400(admin: Api, version: int) -> None:
    item = admin.post("/api/v1/items", {"name": "valve", "qty": 1}).body
    entries = audit_count()

    reply = admin.patch(f"/api/v1/items/{item['id']}", {"price": "1.00", "base_version": version})

    assert reply.status == 400, reply.body
    assert "base_version" in reply.body["fields"]
    assert audit_count() == entries


@pytest.mark.parametrize("tag", [f'"{LIMIT_63}"', '"' + "9" * 4000 + '"', f'W/"{HUGE}"'])
def test_an_if_match_beyond_63_bits_is_400(admin: Api, tag: str) -> None:
    item = admin.post("/api/v1/items", {"name": "valve", "qty": 1}).body
    entries = audit_count()

    reply = admin.patch(f"/api/v1/items/{item['id']}", {"price": "1.00"}, headers={"If-Match": tag})

    assert reply.status == 400, reply.body
    assert "If-Match" in reply.body["fields"]
    assert audit_count() == entries


def test_a_device_seq_beyond_63_bits_is_400(admin: Api) -> None:
    op = {"op_id": str(uuid.uuid4()), "type": "item.create", "payload": {"name": "a"}}
    reply = admin.post(
        "/api/v1/sync/batch", {"device_id": "till-1", "ops": [{**op, "device_seq": HUGE}]}
    )

    assert reply.status == 400, reply.body


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/items", '{"name": "\\ud800x", "qty": 1}'),
        ("/api/v1/customers", '{"name": "Lakshmi \\udfff"}'),
        ("/api/v1/locations", '{"name": "\\ud83d", "kind": "depot"}'),
    ],
)
def test_a_lone_surrogate_in_any_string_is_400_naming_the_field(
    admin: Api, path: str, body: str
) -> None:
    entries = audit_count()

    reply = admin.post(path, raw=body)

    assert reply.status == 400, reply.body
    assert reply.body["code"] == "invalid"
    assert audit_count() == entries


def test_a_surrogate_pair_is_a_character_like_any_other(admin: Api) -> None:
    reply = admin.post("/api/v1/items", raw='{"name": "rose \\ud83c\\udf39", "qty": 1}')

    assert reply.status == 201, reply.body
    assert reply.body["name"] == "rose \U0001f339"


def test_a_body_over_the_upload_limit_is_413(admin: Api, settings: object) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    entries = audit_count()

    reply = admin.post("/api/v1/items", {"name": "x" * 2048, "qty": 1})

    assert (reply.status, reply.body["code"]) == (413, "payload_too_large")
    assert audit_count() == entries


@pytest.mark.parametrize(
    "price",
    ["\uff11\uff12.\uff10\uff10", "\u0661\u0662", "1e3", "1_000", "1e999999999", "+5", "12.", ".5"],
)
def test_money_takes_only_plain_ascii_decimals(admin: Api, price: str) -> None:
    entries = audit_count()

    reply = admin.post("/api/v1/items", {"name": "valve", "qty": 1, "price": price})

    assert reply.status == 400, reply.body
    assert "price" in reply.body["fields"]
    assert audit_count() == entries


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json; charset=latin-1",
    ],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/items"), ("POST", "/api/v1/sync/batch"), ("POST", "/items")],
)
def test_a_body_that_is_not_json_is_415(
    admin: Api, content_type: str, method: str, path: str
) -> None:
    body = '{"name": "valve", "qty": 1, "device_id": "till-1", "ops": []}'
    entries = audit_count()

    response = admin.client.generic(
        method,
        path,
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {admin.token}"},
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert audit_count() == entries


def test_json_media_types_are_accepted(admin: Api) -> None:
    json_types = ("application/json", "application/json; charset=UTF-8", "Application/JSON")
    for number, content_type in enumerate(json_types):
        response = admin.client.generic(
            "POST",
            "/api/v1/items",
            data=json.dumps({"name": f"valve {number}", "qty": 1}),
            content_type=content_type,
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        assert response.status_code == 201, (content_type, response.content)


@pytest.mark.parametrize("header", ["Idempotency-Key", "If-Match", "X-Anything", "User-Agent"])
@pytest.mark.parametrize("value", ["key\x01", "a\x7fb", "a\x00b", "line\nbreak", "\x1b[31m"])
def test_a_control_character_in_a_header_is_json_400(admin: Api, header: str, value: str) -> None:
    entries = audit_count()

    reply = admin.post("/api/v1/items", {"name": "valve", "qty": 1}, headers={header: value})

    assert (reply.status, reply.body["code"]) == (400, "invalid")
    assert reply.body["fields"] == {header: "must not contain control characters"}
    assert audit_count() == entries


def test_a_tab_in_a_header_is_whitespace_like_any_other(admin: Api) -> None:
    reply = admin.post(
        "/api/v1/items", {"name": "valve", "qty": 1}, headers={"Idempotency-Key": "a\tb"}
    )

    assert reply.status == 201, reply.body


@pytest.mark.parametrize(
    "spelling",
    ["regulator", "REGULATOR", "\uff32egulator", " Regulator ", "\uff32\uff25\uff27ulator"],
)
def test_item_names_are_one_name_in_any_case_or_width(admin: Api, spelling: str) -> None:
    first = admin.post("/api/v1/items", {"name": "Regulator", "qty": 1}).body
    other = admin.post("/api/v1/items", {"name": "Valve", "qty": 1}).body
    entries = audit_count()

    created = admin.post("/api/v1/items", {"name": spelling, "qty": 1})
    renamed = admin.patch(f"/api/v1/items/{other['id']}", {"name": spelling})

    assert (created.status, created.body["fields"]) == (400, {"name": "already exists"})
    assert (renamed.status, renamed.body["fields"]) == (400, {"name": "already exists"})
    assert audit_count() == entries
    assert admin.get(f"/api/v1/items/{first['id']}").body["name"] == "Regulator"


def test_a_name_is_stored_nfc_and_its_own_case_can_change(admin: Api) -> None:
    decomposed = admin.post("/api/v1/items", {"name": "Cafe\u0301 valve", "qty": 1}).body
    item = admin.post("/api/v1/items", {"name": "regulator", "qty": 1}).body

    assert decomposed["name"] == "Caf\u00e9 valve"
    again = admin.post("/api/v1/items", {"name": "CAF\u00c9 VALVE", "qty": 1})
    assert again.status == 400
    recased = admin.patch(f"/api/v1/items/{item['id']}", {"name": "Regulator"})
    assert (recased.status, recased.body["name"]) == (200, "Regulator")


@pytest.mark.parametrize(
    "name", ["Regu\u200blator", "Regulator\u0007", "\u202eRegulator", "Reg\u00adulator", "\ue000x"]
)
@pytest.mark.parametrize("path", ["/api/v1/items", "/api/v1/locations"])
def test_a_name_with_an_invisible_character_is_400(admin: Api, name: str, path: str) -> None:
    entries = audit_count()

    body = {"name": name, "kind": "depot"} if "locations" in path else {"name": name, "qty": 1}
    reply = admin.post(path, body)

    assert reply.status == 400, reply.body
    assert "name" in reply.body["fields"]
    assert audit_count() == entries
