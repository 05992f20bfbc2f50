"""The items contract (API.md "Items", Inventory v2) through HTTP."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Api, audit_count

pytestmark = pytest.mark.django_db


def create(api: Api, name: str = "apple", qty: int = 5, **extra: object) -> dict:
    reply = api.post("/api/v1/items", {"name": name, "qty": qty, **extra})
    assert reply.status == 201, reply.body
    return reply.body


def test_create_returns_the_item_with_defaults(admin: Api) -> None:
    reply = admin.post("/api/v1/items", {"name": "  apple ", "qty": 5})

    assert reply.status == 201
    body = reply.body
    assert uuid.UUID(body["id"])
    assert body["name"] == "apple"
    assert body["qty"] == 5
    assert body["price"] == "0.00"
    assert body["unit"] == "pcs"
    assert body["tracking"] == "bulk"
    assert body["sku"].startswith("ITM-")


def test_create_accepts_price_unit_and_tracking(admin: Api) -> None:
    body = create(admin, "gas", 0, price="905.50", unit="cyl", tracking="serial")

    assert (body["price"], body["unit"], body["tracking"]) == ("905.50", "cyl", "serial")


def test_a_serialized_item_is_not_created_with_a_quantity_and_no_serials(admin: Api) -> None:
    reply = admin.post("/api/v1/items", {"name": "gas", "qty": 3, "tracking": "serial"})

    assert (reply.status, reply.body["code"], list(reply.body["fields"])) == (
        400,
        "invalid",
        ["qty"],
    )
    assert admin.get("/api/v1/items").body["results"] == []


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "", "qty": 1}, "name"),
        ({"name": "   ", "qty": 1}, "name"),
        ({"name": 5, "qty": 1}, "name"),
        ({"name": "a", "qty": -1}, "qty"),
        ({"name": "a", "qty": 1.5}, "qty"),
        ({"name": "a", "qty": "3"}, "qty"),
        ({"name": "a", "qty": True}, "qty"),
        ({"name": "a"}, "qty"),
        ({"qty": 1}, "name"),
        ({"name": "a", "qty": 1, "price": "1.234"}, "price"),
        ({"name": "a", "qty": 1, "price": "-1.00"}, "price"),
        ({"name": "a", "qty": 1, "tracking": "lots"}, "tracking"),
        ({"name": "a", "qty": 1, "colour": "red"}, "colour"),
    ],
)
def test_create_rejects_bad_input_with_400_naming_the_field_and_changes_nothing(
    admin: Api, payload: dict, field: str
) -> None:
    entries = audit_count()

    reply = admin.post("/api/v1/items", payload)

    assert reply.status == 400
    assert reply.body["code"] == "invalid"
    assert field in reply.body["fields"]
    assert admin.get("/api/v1/items").body["results"] == []
    assert audit_count() == entries


def test_malformed_json_is_400(admin: Api) -> None:
    reply = admin.post("/api/v1/items", raw="{not json")

    assert reply.status == 400
    assert reply.body["code"] == "invalid"


def test_duplicate_name_is_400(admin: Api) -> None:
    create(admin, "apple")

    reply = admin.post("/api/v1/items", {"name": "apple", "qty": 1})

    assert reply.status == 400
    assert reply.body["fields"] == {"name": "already exists"}
    assert len(admin.get("/api/v1/items").body["results"]) == 1


def test_get_and_list(admin: Api) -> None:
    apple = create(admin, "apple", 5)
    create(admin, "banana", 7)

    assert admin.get(f"/api/v1/items/{apple['id']}").body == apple
    listed = admin.get("/api/v1/items").body
    assert [item["name"] for item in listed["results"]] == ["apple", "banana"]
    assert listed["next_cursor"] is None


def test_list_pages_with_limit_and_cursor(admin: Api) -> None:
    for name in ["a", "b", "c", "d", "e"]:
        create(admin, name, 1)

    first = admin.get("/api/v1/items?limit=2").body
    second = admin.get(f"/api/v1/items?limit=2&cursor={first['next_cursor']}").body
    third = admin.get(f"/api/v1/items?limit=2&cursor={second['next_cursor']}").body

    names = [i["name"] for page in (first, second, third) for i in page["results"]]
    assert names == ["a", "b", "c", "d", "e"]
    assert third["next_cursor"] is None


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=x", "cursor=%%%"])
def test_bad_list_parameters_are_400(admin: Api, query: str) -> None:
    assert admin.get(f"/api/v1/items?{query}").status == 400


def test_unknown_item_is_404(admin: Api) -> None:
    reply = admin.get(f"/api/v1/items/{uuid.uuid4()}")

    assert reply.status == 404
    assert reply.body == {"error": "not_found", "code": "not_found"}


def test_non_uuid_item_path_is_404(admin: Api) -> None:
    assert admin.get("/api/v1/items/not-a-uuid").status == 404


def test_delete_is_idempotent(admin: Api) -> None:
    apple = create(admin, qty=0)

    first = admin.delete(f"/api/v1/items/{apple['id']}")
    second = admin.delete(f"/api/v1/items/{apple['id']}")
    never_existed = admin.delete(f"/api/v1/items/{uuid.uuid4()}")

    assert (first.status, second.status, never_existed.status) == (204, 204, 204)
    assert admin.get(f"/api/v1/items/{apple['id']}").status == 404
    assert admin.get("/api/v1/items").body["results"] == []


def test_a_deleted_name_can_be_used_again(admin: Api) -> None:
    apple = create(admin, qty=0)
    admin.delete(f"/api/v1/items/{apple['id']}")

    again = create(admin)

    assert again["id"] != apple["id"]


def test_patch_applies_delta(admin: Api) -> None:
    apple = create(admin, qty=5)

    down = admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": -1})
    up = admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": 5})
    zero = admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": 0})

    assert (down.status, down.body["qty"]) == (200, 4)
    assert (up.status, up.body["qty"]) == (200, 9)
    assert (zero.status, zero.body["qty"]) == (200, 9)
    assert admin.get(f"/api/v1/items/{apple['id']}").body["qty"] == 9


def test_patch_below_zero_is_400_and_changes_nothing(admin: Api) -> None:
    apple = create(admin, qty=1)
    entries = audit_count()

    reply = admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": -2})

    assert reply.status == 400
    assert reply.body["error"] == "qty cannot go below 0"
    assert admin.get(f"/api/v1/items/{apple['id']}").body["qty"] == 1
    assert audit_count() == entries


@pytest.mark.parametrize("delta", [True, False, 1.0, "1", None, [1]])
def test_patch_non_integer_delta_is_400(admin: Api, delta: object) -> None:
    apple = create(admin, qty=1)

    reply = admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": delta})

    assert reply.status == 400
    assert "delta" in reply.body["fields"]
    assert admin.get(f"/api/v1/items/{apple['id']}").body["qty"] == 1


def test_patch_unknown_item_is_404(admin: Api) -> None:
    assert admin.patch(f"/api/v1/items/{uuid.uuid4()}/qty", {"delta": 1}).status == 404


def test_patch_deleted_item_is_404(admin: Api) -> None:
    apple = create(admin, qty=0)
    admin.delete(f"/api/v1/items/{apple['id']}")

    assert admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": 1}).status == 404


def test_root_aliases_answer_the_same(admin: Api) -> None:
    created = admin.post("/items", {"name": "apple", "qty": 2})
    item_id = created.body["id"]

    assert created.status == 201
    assert admin.get(f"/items/{item_id}").body == admin.get(f"/api/v1/items/{item_id}").body
    assert admin.patch(f"/items/{item_id}/qty", {"delta": -2}).body["qty"] == 0
    assert [i["id"] for i in admin.get("/items").body["results"]] == [item_id]
    assert admin.delete(f"/items/{item_id}").status == 204


def test_root_aliases_need_a_token(anon: Api) -> None:
    assert anon.get("/items").status == 401
    assert anon.post("/items", {"name": "a", "qty": 1}).status == 401


def test_every_change_is_audited_with_before_and_after(admin: Api) -> None:
    apple = create(admin, qty=5)
    admin.patch(f"/api/v1/items/{apple['id']}/qty", {"delta": -5})  # written off: 409 otherwise
    admin.delete(f"/api/v1/items/{apple['id']}")

    entries = admin.get(f"/api/v1/audit?entity_type=item&entity_id={apple['id']}").body["results"]

    assert [e["action"] for e in entries] == ["item.create", "item.adjust", "item.delete"]
    assert [e["actor"] for e in entries] == ["admin"] * 3
    assert entries[0]["before"] is None and entries[0]["after"]["qty"] == 5
    assert (entries[1]["before"]["qty"], entries[1]["after"]["qty"]) == (5, 0)
    assert entries[2]["after"] is None
