"""A reference is named after its kind (`item`, `location`, `customer`), and the old spellings
(`item_id`, `location_id`, `location_ids`) are still accepted, by one rule for every REST body
and every sync op payload (core.references, issue 10 item 11)."""

from __future__ import annotations

import importlib

import pytest
from pydantic import BaseModel

from quartermaster.core.commands import Command
from quartermaster.core.references import WireModel, old_spellings
from quartermaster.identity.services import CreateUser, UpdateUser
from quartermaster.inventory.services import AdjustItemQty, DeleteItem
from quartermaster.sales.services import RecordSale
from tests.conftest import Api
from tests.sync.helpers import op, send

pytestmark = pytest.mark.django_db


def test_every_reference_field_accepts_its_old_spelling() -> None:
    assert old_spellings(AdjustItemQty) == {"item_id": "item"}
    assert old_spellings(DeleteItem) == {"item_id": "item"}
    assert old_spellings(RecordSale) == {"customer_id": "customer", "location_id": "location"}
    assert old_spellings(CreateUser) == {
        "customer_id": "customer",
        "farmer_id": "farmer",
        "location_ids": "locations",
    }
    assert old_spellings(UpdateUser)["user_id"] == "user"


def test_every_command_and_wire_body_follows_the_one_rule() -> None:
    importlib.import_module("quartermaster.urls")  # every adapter, so every command and schema
    wire_models = [*Command.registry.values(), *_subclasses(WireModel)]

    for model in wire_models:
        for old, wire in old_spellings(model).items():
            assert old in (f"{wire}_id", f"{wire[:-1]}_ids"), (model, old)
    # No op type spells a reference the old way any more (a device excepted: it is named by
    # its `device_id` everywhere, API.md).
    old_named = {
        (command.__name__, name)
        for command in Command.registry.values()
        if getattr(command, "syncable", True)
        for name, field in command.model_fields.items()
        if (field.alias or name).endswith("_id") and name not in {"device_id", "client_temp_id"}
    }
    assert old_named == set()


def _subclasses(cls: type[BaseModel]) -> list[type[BaseModel]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


def test_rest_bodies_accept_the_old_spellings_of_references(
    admin: Api, default_location_id: str
) -> None:
    item = admin.post("/api/v1/items", {"name": "gas", "qty": 10, "price": "950.00"}).body
    customer = admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}).body

    sale = admin.post(
        "/api/v1/transactions",
        {
            "customer_id": customer["id"],
            "location_id": default_location_id,
            "lines": [{"item_id": item["id"], "qty": 1}],
            "confirm": True,
        },
    )
    receipt = admin.post(
        "/api/v1/receipts",
        {"to_location_id": default_location_id, "lines": [{"item_id": item["id"], "qty": 2}]},
    )
    user = admin.post(
        "/api/v1/users",
        {
            "username": "ravi",
            "password": "a long password",
            "role": "staff",
            "location_ids": [default_location_id],
        },
    )

    assert sale.status == 201, sale.body
    assert (sale.body["customer"], sale.body["lines"][0]["item"]) == (customer["id"], item["id"])
    assert receipt.status == 201, receipt.body
    assert user.status == 201 and user.body["locations"] == [default_location_id]
    assert admin.get(f"/api/v1/items/{item['id']}").body["qty"] == 11


def test_both_spellings_at_once_are_refused(admin: Api, default_location_id: str) -> None:
    item = admin.post("/api/v1/items", {"name": "gas", "qty": 10}).body

    reply = admin.post(
        "/api/v1/receipts",
        {
            "to_location": default_location_id,
            "to_location_id": default_location_id,
            "lines": [{"item": item["id"], "qty": 2}],
        },
    )

    assert reply.status == 400 and "to_location_id" in reply.body["fields"]


def test_sync_ops_take_either_spelling(admin: Api) -> None:
    item = admin.post("/api/v1/items", {"name": "gas", "qty": 10}).body

    reply = send(
        admin,
        [
            op("item.adjust", {"item": item["id"], "delta": -1}),
            op("item.adjust", {"item_id": item["id"], "delta": -2}),
        ],
    )

    assert [result["status"] for result in reply.body["results"]] == [200, 200]
    assert admin.get(f"/api/v1/items/{item['id']}").body["qty"] == 7
