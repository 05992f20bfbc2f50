"""Hostile input never answers 5xx and changes nothing (issue 10, item 1: the cases below)."""

from __future__ import annotations

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
