"""POST /api/v1/sync/batch (API.md "Sync"): order, replay, temp ids, dependencies, groups,
dry runs, per-op failures that never block the ops behind them."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.core.models import IdempotencyRecord
from quartermaster.sync.models import DeviceSyncState, TempId
from tests.conftest import Api, audit_count
from tests.sync.helpers import DEVICE, op, send, statuses

pytestmark = pytest.mark.django_db


def items(api: Api) -> dict[str, int]:
    return {item["name"]: item["qty"] for item in api.get("/api/v1/items").body["results"]}


def test_ops_apply_in_order_and_a_temp_id_resolves_within_the_batch(admin: Api) -> None:
    create = op(
        "item.create",
        {"name": "cylinder", "qty": 10},
        client_temp_id="temp_1",
        client_ts="2026-11-21T05:12:03Z",
    )
    adjust = op("item.adjust", {"item_id": "temp_1", "delta": -3})

    reply = send(admin, [create, adjust])

    assert reply.status == 200
    first, second = reply.body["results"]
    item_id = first["body"]["id"]
    assert (first["op_id"], first["status"], first["id_map"]) == (
        create["op_id"],
        201,
        {"temp_1": item_id},
    )
    assert (second["status"], second["body"]["id"], second["body"]["qty"]) == (200, item_id, 7)
    assert second["id_map"] == {}
    assert items(admin) == {"cylinder": 7}
    assert reply.body["cursor"] == str(admin.get("/api/v1/sync/changes").body["changes"][-1]["seq"])
    entries = admin.get(f"/api/v1/audit?entity_id={item_id}").body["results"]
    assert [(e["action"], e["device"], e["client_ts"]) for e in entries] == [
        ("item.create", DEVICE, "2026-11-21T05:12:03Z"),
        ("item.adjust", DEVICE, ""),
    ]


def test_a_replayed_batch_answers_the_first_results_and_applies_nothing(admin: Api) -> None:
    ops = [
        op("item.create", {"name": "cylinder", "qty": 10}, client_temp_id="temp_1"),
        op("item.adjust", {"item_id": "temp_1", "delta": -3}),
        op("item.adjust", {"item_id": "temp_1", "delta": -100}),
    ]
    first = send(admin, ops)
    entries = audit_count()

    again = send(admin, ops)

    assert statuses(first) == statuses(again) == [201, 200, 400]
    assert again.status == first.status == 207
    for before, after in zip(first.body["results"], again.body["results"], strict=True):
        assert {**before, "replayed": True} == after
    assert items(admin) == {"cylinder": 7}
    assert audit_count() == entries


def test_a_temp_id_from_an_earlier_batch_resolves_in_a_later_one(admin: Api, make_api: Any) -> None:
    created = send(admin, [op("item.create", {"name": "cylinder"}, client_temp_id="temp_9")])
    item_id = created.body["results"][0]["id_map"]["temp_9"]

    # Days later, after a new login on the same device.
    later = send(admin, [op("item.adjust", {"item_id": "temp_9", "delta": 4})])

    assert later.status == 200
    assert later.body["results"][0]["body"]["id"] == item_id
    assert items(admin) == {"cylinder": 4}


def test_an_op_naming_a_temp_id_whose_create_was_rejected_fails_424_naming_it(
    admin: Api,
) -> None:
    create = op("item.create", {"name": "  ", "qty": 1}, client_temp_id="temp_bad")
    adjust = op("item.adjust", {"item_id": "temp_bad", "delta": 1})
    send(admin, [])  # the device's first batch claims it (audited)
    entries = audit_count()

    reply = send(admin, [create, adjust])
    later = send(admin, [op("item.delete", {"item_id": "temp_bad"})])

    assert statuses(reply) == [400, 424]
    dependent = reply.body["results"][1]["body"]
    assert (dependent["code"], dependent["failed_op_id"], dependent["temp_id"]) == (
        "dependency_failed",
        create["op_id"],
        "temp_bad",
    )
    assert statuses(later) == [424]
    assert later.body["results"][0]["body"]["failed_op_id"] == create["op_id"]
    assert audit_count() == entries


def test_a_new_op_may_create_a_temp_id_whose_first_create_was_rejected(admin: Api) -> None:
    send(admin, [op("item.create", {"name": "", "qty": 1}, client_temp_id="temp_1")])

    reply = send(
        admin,
        [
            op("item.create", {"name": "fixed", "qty": 1}, client_temp_id="temp_1"),
            op("item.adjust", {"item_id": "temp_1", "delta": 1}),
        ],
    )

    assert statuses(reply) == [201, 200]
    assert items(admin) == {"fixed": 2}


def test_a_temp_id_cannot_name_two_records(admin: Api) -> None:
    first = send(admin, [op("item.create", {"name": "a"}, client_temp_id="temp_1")])

    reply = send(admin, [op("item.create", {"name": "b"}, client_temp_id="temp_1")])

    assert statuses(reply) == [409]
    assert reply.body["results"][0]["body"]["code"] == "temp_id_reused"
    assert items(admin) == {"a": 0}
    assert (
        TempId.objects.get(temp_id="temp_1").permanent_id
        == (first.body["results"][0]["id_map"]["temp_1"])
    )


def test_an_unknown_op_type_fails_that_op_with_400_only(admin: Api) -> None:
    reply = send(
        admin,
        [op("teleport.item", {"to": "moon"}), op("item.create", {"name": "cylinder", "qty": 1})],
    )

    assert reply.status == 207
    assert statuses(reply) == [400, 201]
    assert reply.body["results"][0]["body"]["code"] == "unknown_op_type"
    assert items(admin) == {"cylinder": 1}


def test_session_commands_are_not_sync_ops(admin: Api) -> None:
    reply = send(admin, [op("session.start", {"device_id": DEVICE})])

    assert statuses(reply) == [400]
    assert reply.body["results"][0]["body"]["code"] == "unknown_op_type"
    assert not IdempotencyRecord.objects.filter(body__has_key="access").exists()


def test_a_payload_with_a_wrong_type_is_400_naming_the_field(admin: Api) -> None:
    item_id = send(admin, [op("item.create", {"name": "a", "qty": 1})]).body["results"][0]["body"][
        "id"
    ]

    reply = send(
        admin,
        [
            op("item.adjust", {"item_id": item_id, "delta": True}),
            op("item.adjust", {"item_id": item_id, "delta": "2"}),
            op("item.adjust", {"item_id": item_id, "delta": 1, "extra": 1}),
        ],
    )

    assert statuses(reply) == [400, 400, 400]
    fields = [result["body"]["fields"] for result in reply.body["results"]]
    assert "delta" in fields[0] and "delta" in fields[1] and "extra" in fields[2]
    assert items(admin) == {"a": 1}


def test_more_than_100_ops_is_413_and_nothing_is_applied(admin: Api) -> None:
    ops = [op("item.create", {"name": f"item {n}", "qty": 1}) for n in range(101)]
    entries = audit_count()

    reply = send(admin, ops)

    assert reply.status == 413
    assert reply.body["code"] == "batch_too_large"
    assert items(admin) == {}
    assert audit_count() == entries


def test_100_ops_are_accepted(admin: Api) -> None:
    reply = send(admin, [op("item.create", {"name": f"item {n}", "qty": 1}) for n in range(100)])

    assert reply.status == 200
    assert len(reply.body["results"]) == 100


def test_a_rejected_op_does_not_block_the_ops_behind_it(admin: Api) -> None:
    ops = [
        op("item.create", {"name": "cylinder", "qty": 2}, client_temp_id="c"),
        op("item.adjust", {"item_id": "c", "delta": -5}),
        op("item.adjust", {"item_id": "c", "delta": -1}),
    ]

    reply = send(admin, ops)

    assert reply.status == 207
    assert statuses(reply) == [201, 400, 200]
    assert reply.body["results"][1]["body"]["error"] == "qty cannot go below 0"
    assert items(admin) == {"cylinder": 1}


def test_a_refusal_before_the_handler_is_final_too(staff: Api) -> None:
    ops = [op("item.create", {"name": "cylinder", "qty": 2})]

    first = send(staff, ops)
    again = send(staff, ops)

    assert statuses(first) == statuses(again) == [403]
    assert again.body["results"][0]["replayed"] is True
    assert again.body["results"][0]["body"] == first.body["results"][0]["body"]


def test_one_op_crashing_is_retryable_and_does_not_abort_the_others(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quartermaster.inventory.services import AdjustItemQty

    item_id = send(admin, [op("item.create", {"name": "a", "qty": 5})]).body["results"][0]["body"][
        "id"
    ]
    ops = [
        op("item.create", {"name": "b", "qty": 1}, device_seq=1),
        op("item.adjust", {"item_id": item_id, "delta": 1}, device_seq=2),
        op("item.create", {"name": "c", "qty": 1}, device_seq=3),
    ]

    def crash(cls: Any, commands: Any, contexts: Any, *, alone: bool) -> Any:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        # run_many: the one body of item.adjust, alone or in a run
        patch.setattr(AdjustItemQty, "run_many", classmethod(crash))
        first = send(admin, ops)
    status_after_crash = admin.get(f"/api/v1/devices/{DEVICE}/sync-status").body
    retried = send(admin, ops)

    assert statuses(first) == [201, 500, 201]
    assert first.body["results"][1]["body"]["code"] == "server_error"
    assert (status_after_crash["last_contiguous_seq"], status_after_crash["missing"]) == (
        1,
        [[2, 2]],
    )
    assert statuses(retried) == [201, 200, 201]
    assert [r["replayed"] for r in retried.body["results"]] == [True, False, True]
    assert items(admin) == {"a": 6, "b": 1, "c": 1}


def test_an_op_id_twice_in_one_batch_is_applied_once(admin: Api) -> None:
    create = op("item.create", {"name": "a", "qty": 1})

    reply = send(admin, [create, create])

    assert statuses(reply) == [201, 201]
    assert reply.body["results"][1] == {**reply.body["results"][0], "replayed": True}
    assert items(admin) == {"a": 1}


def test_a_device_belongs_to_the_user_who_first_synced_it(admin: Api, manager: Api) -> None:
    send(admin, [op("item.create", {"name": "a"})])

    reply = send(manager, [op("item.create", {"name": "b"})])

    assert reply.status == 403
    assert reply.body["code"] == "device_not_yours"
    assert items(admin) == {"a": 0}


def test_party_users_cannot_sync_ops(make_api: Any) -> None:
    party = make_api("party")

    reply = send(party, [op("item.create", {"name": "a"})])

    assert reply.status == 403
    assert not DeviceSyncState.objects.exists()


def test_the_batch_itself_must_be_well_formed(admin: Api) -> None:
    missing_op_id = admin.post(
        "/api/v1/sync/batch", {"device_id": DEVICE, "ops": [{"type": "item.create"}]}
    )
    no_device = admin.post("/api/v1/sync/batch", {"ops": []})

    assert (missing_op_id.status, missing_op_id.body["code"]) == (400, "invalid")
    assert "ops.0.op_id" in missing_op_id.body["fields"]
    assert no_device.status == 400


def test_an_empty_batch_answers_200_with_the_cursor(admin: Api) -> None:
    reply = send(admin, [])

    assert reply.status == 200
    assert reply.body["results"] == []
    assert reply.body["cursor"] == "0"


# -- groups --


def test_a_group_applies_together(admin: Api) -> None:
    ops = [
        op("item.create", {"name": "a", "qty": 3}, client_temp_id="ta", group="g1"),
        op("item.adjust", {"item_id": "ta", "delta": -1}, group="g1"),
    ]

    reply = send(admin, ops)

    assert statuses(reply) == [201, 200]
    assert reply.body["results"][0]["id_map"] == {"ta": reply.body["results"][0]["body"]["id"]}
    assert items(admin) == {"a": 2}


def test_a_group_is_all_or_nothing_and_its_rejection_is_final(admin: Api) -> None:
    ops = [
        op("item.create", {"name": "a", "qty": 3}, client_temp_id="ta", group="g1"),
        op("item.adjust", {"item_id": "ta", "delta": -5}, group="g1"),
        op("item.create", {"name": "b", "qty": 1}, group="g1"),
        op("item.create", {"name": "outside", "qty": 1}),
    ]
    send(admin, [])  # the device's first batch claims it (audited)
    entries = audit_count()

    reply = send(admin, ops)
    replay = send(admin, ops)
    dependent = send(admin, [op("item.adjust", {"item_id": "ta", "delta": 1})])

    assert statuses(reply) == [424, 400, 424, 201]
    for index in (0, 2):
        body = reply.body["results"][index]["body"]
        assert (body["code"], body["failed_op_id"], body["group"]) == (
            "group_failed",
            ops[1]["op_id"],
            "g1",
        )
    assert reply.body["results"][0]["id_map"] == {}
    assert items(admin) == {"outside": 1}
    # the item, its opening receipt movement and its stock row
    assert audit_count() == entries + 3
    # Final: the same answers again, nothing applied, and the group's temp id stays failed.
    assert statuses(replay) == [424, 400, 424, 201]
    assert all(result["replayed"] for result in replay.body["results"])
    assert [r["body"] for r in replay.body["results"]] == [r["body"] for r in reply.body["results"]]
    assert statuses(dependent) == [424]
    assert dependent.body["results"][0]["body"]["failed_op_id"] == ops[0]["op_id"]
    assert items(admin) == {"outside": 1}


def test_a_group_broken_by_a_crash_is_retryable_and_stores_nothing(
    admin: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quartermaster.inventory.services import AdjustItemQty

    ops = [
        op("item.create", {"name": "a", "qty": 3}, client_temp_id="ta", group="g1"),
        op("item.adjust", {"item_id": "ta", "delta": -1}, group="g1"),
        op("item.create", {"name": "b", "qty": 1}, group="g1"),
    ]

    def crash(cls: Any, commands: Any, contexts: Any, *, alone: bool) -> Any:
        raise RuntimeError("disk on fire")

    with monkeypatch.context() as patch:
        # run_many: the one body of item.adjust, alone or in a run
        patch.setattr(AdjustItemQty, "run_many", classmethod(crash))
        broken = send(admin, ops)
    stored = (IdempotencyRecord.objects.count(), TempId.objects.count(), items(admin))
    retried = send(admin, ops)

    assert statuses(broken) == [503, 500, 503]
    assert broken.body["results"][0]["body"]["code"] == "group_not_applied"
    assert stored == (0, 0, {})
    assert statuses(retried) == [201, 200, 201]
    assert items(admin) == {"a": 2, "b": 1}


def test_a_group_must_be_contiguous(admin: Api) -> None:
    ops = [
        op("item.create", {"name": "a"}, group="g1"),
        op("item.create", {"name": "b"}),
        op("item.create", {"name": "c"}, group="g1"),
    ]

    reply = send(admin, ops)

    assert reply.status == 400
    assert "ops[2].group" in reply.body["fields"]
    assert items(admin) == {}


# -- dry run --


def test_a_dry_run_answers_what_would_happen_and_changes_nothing(admin: Api) -> None:
    item_id = send(admin, [op("item.create", {"name": "a", "qty": 5})], device="other").body[
        "results"
    ][0]["body"]["id"]
    ops = [
        op("item.create", {"name": "b", "qty": 2}, client_temp_id="tb", device_seq=1),
        op("item.adjust", {"item_id": "tb", "delta": -1}, device_seq=2),
        op("item.adjust", {"item_id": item_id, "delta": -9}, device_seq=3),
        op("item.adjust", {"item_id": item_id, "delta": -2}, group="g", device_seq=4),
    ]
    before = (items(admin), audit_count(), IdempotencyRecord.objects.count())

    preview = send(admin, ops, dry_run=True)

    assert preview.status == 207
    assert preview.body["dry_run"] is True
    assert statuses(preview) == [201, 200, 400, 200]
    assert preview.body["results"][1]["body"]["qty"] == 1
    assert preview.body["results"][0]["id_map"] == {"tb": preview.body["results"][0]["body"]["id"]}
    assert (items(admin), audit_count(), IdempotencyRecord.objects.count()) == before
    assert not TempId.objects.exists()
    assert not DeviceSyncState.objects.filter(pk=DEVICE).exists()
    # The op ids were not kept: the real run applies them.
    applied = send(admin, ops)
    assert statuses(applied) == [201, 200, 400, 200]
    assert not any(result["replayed"] for result in applied.body["results"])
    assert items(admin) == {"a": 3, "b": 1}


def test_client_ts_must_be_a_timestamp(admin: Api) -> None:
    reply = send(admin, [op("item.create", {"name": "a"}, client_ts="yesterday")])

    assert reply.status == 400
    assert "ops.0.client_ts" in reply.body["fields"]
    assert items(admin) == {}


def test_base_version_is_refused_by_an_op_type_that_is_not_versioned(admin: Api) -> None:
    reply = send(admin, [op("item.create", {"name": "a"}, base_version=3)])

    assert statuses(reply) == [400]
    assert "base_version" in reply.body["results"][0]["body"]["fields"]
    assert items(admin) == {}
