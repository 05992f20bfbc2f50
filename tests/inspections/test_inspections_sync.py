"""Inspections offline, through sync batches: every op type, two devices merging answer by
answer, the same answer changed on both sides as a conflict resolved per answer, a locked
inspection, and a device's updates applied in its order when they arrive out of order."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.core.models import Conflict
from quartermaster.inspections.models import HeldUpdate, Inspection
from tests.conftest import Api
from tests.inspections.helpers import COMPLETE, INSPECTIONS, new_inspection, published_template
from tests.sync.helpers import op, send, statuses

pytestmark = pytest.mark.django_db

TAB_A, TAB_B = "tablet-a", "tablet-b"


@pytest.fixture
def template(manager: Api) -> str:
    return published_template(manager)


@pytest.fixture
def inspection(staff: Api, template: str, default_location_id: str) -> dict[str, Any]:
    return new_inspection(staff, template, default_location_id)


def update(inspection_id: str, answers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    extra = {k: fields.pop(k) for k in ("previous_seq",) if k in fields}
    return op("inspection.update", {"id": inspection_id, "answers": answers, **extra}, **fields)


def test_every_op_type_runs_as_a_sync_op(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    created = send(
        staff,
        [
            op(
                "inspection.create",
                {"template": template, "location": default_location_id, "answers": {"exits": True}},
                client_temp_id="insp-1",
            ),
            op("inspection.update", {"id": "insp-1", "answers": COMPLETE}, base_version=1),
            op("inspection.submit", {"id": "insp-1"}),
        ],
        device=TAB_A,
    )
    assert statuses(created) == [201, 200, 200], created.body
    inspection_id = created.body["results"][0]["id_map"]["insp-1"]

    reviewed = send(
        manager,
        [
            op("inspection.reject", {"id": inspection_id, "comment": "sign it"}),
            op("inspection.approve", {"id": inspection_id}),
        ],
        device="office",
    )
    assert statuses(reviewed) == [200, 409]
    assert reviewed.body["results"][1]["body"]["code"] == "wrong_status"

    fixed = send(
        staff,
        [
            op("inspection.update", {"id": inspection_id, "answers": {"notes": "signed"}}),
            op("inspection.submit", {"id": inspection_id}),
        ],
        device=TAB_A,
    )
    approved = send(manager, [op("inspection.approve", {"id": inspection_id})], device="office")
    removed = send(manager, [op("inspection.delete", {"id": inspection_id})], device="office")
    restored = send(manager, [op("inspection.restore", {"id": inspection_id})], device="office")

    assert statuses(fixed) == [200, 200]
    assert approved.body["results"][0]["body"]["status"] == "approved"
    assert statuses(removed) == [204]
    assert restored.body["results"][0]["body"]["version"] == 9
    # An inspector's device may not approve: refused for good, stored under the op id.
    refused = op("inspection.approve", {"id": inspection_id})
    assert statuses(send(staff, [refused], device=TAB_A)) == [403]
    replay = send(staff, [refused], device=TAB_A)
    assert replay.body["results"][0]["replayed"] is True
    assert manager.get("/api/v1/audit/verify").body["ok"] is True


def test_two_devices_changing_different_answers_merge_and_say_so(
    staff: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]

    first = send(
        staff, [update(inspection_id, {"extinguisher": True}, base_version=1)], device=TAB_A
    )
    second = send(
        staff, [update(inspection_id, {"pressure": 3, "notes": "b"}, base_version=1)], device=TAB_B
    )

    assert statuses(first) == [200]
    assert first.body["results"][0]["body"]["merge"] is None
    result = second.body["results"][0]
    assert result["status"] == 200, result
    assert result["body"]["merge"] == {
        "base_version": 1,
        "theirs": ["extinguisher"],
        "mine": ["notes", "pressure"],
    }
    assert result["body"]["version"] == 3
    assert Inspection.objects.get(pk=inspection_id).answers == {
        "extinguisher": True,
        "pressure": 3,
        "notes": "b",
    }
    assert Conflict.objects.count() == 0


def test_the_same_answer_on_both_sides_conflicts_and_is_resolved_per_answer(
    staff: Api, manager: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    send(
        staff,
        [update(inspection_id, {"notes": "from A", "exits": True}, base_version=1)],
        device=TAB_A,
    )

    clash = send(
        staff,
        [update(inspection_id, {"notes": "from B", "pressure": 2, "exits": True}, base_version=1)],
        device=TAB_B,
    )

    result = clash.body["results"][0]
    assert result["status"] == 409
    assert result["body"]["code"] == "version_conflict"
    # exits changed to the same value on both sides: no conflict there.
    assert result["body"]["conflicting_answers"] == ["notes"]
    stored = Inspection.objects.get(pk=inspection_id)
    assert (stored.version, stored.answers) == (2, {"notes": "from A", "exits": True})
    conflict_id = result["body"]["conflict"]
    assert [c["id"] for c in staff.get("/api/v1/conflicts").body["results"]] == [conflict_id]

    no_value = manager.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": "merge"})
    assert no_value.status == 400
    assert no_value.body["fields"] == {"merged.answers.notes": "changed on both sides"}

    resolved = manager.post(
        f"/api/v1/conflicts/{conflict_id}/resolve",
        {"strategy": "merge", "merged": {"answers": {"notes": "from A and B"}}},
    )

    assert resolved.status == 200, resolved.body
    assert resolved.body["status"] == "resolved"
    assert resolved.body["record"]["answers"] == {
        "notes": "from A and B",
        "exits": True,
        "pressure": 2,
    }
    assert resolved.body["record"]["version"] == 3


@pytest.mark.parametrize(
    ("strategy", "notes", "version"), [("keep_mine", "from B", 3), ("keep_theirs", "from A", 2)]
)
def test_keep_mine_or_keep_theirs(
    staff: Api,
    manager: Api,
    inspection: dict[str, Any],
    strategy: str,
    notes: str,
    version: int,
) -> None:
    inspection_id = inspection["id"]
    send(staff, [update(inspection_id, {"notes": "from A"}, base_version=1)], device=TAB_A)
    clash = send(staff, [update(inspection_id, {"notes": "from B"}, base_version=1)], device=TAB_B)
    conflict_id = clash.body["results"][0]["body"]["conflict"]

    resolved = manager.post(f"/api/v1/conflicts/{conflict_id}/resolve", {"strategy": strategy})

    assert resolved.status == 200, resolved.body
    stored = Inspection.objects.get(pk=inspection_id)
    assert (stored.answers["notes"], stored.version) == (notes, version)


def test_a_submitted_inspection_refuses_offline_edits(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers=COMPLETE)
    staff.post(f"{INSPECTIONS}/{created['id']}/submit")

    reply = send(staff, [update(created["id"], {"notes": "late"}, base_version=1)], device=TAB_A)

    assert statuses(reply) == [409]
    assert reply.body["results"][0]["body"]["code"] == "inspection_locked"
    assert Conflict.objects.count() == 0
    assert Inspection.objects.get(pk=created["id"]).version == 2


def test_a_devices_updates_apply_in_its_order_when_they_arrive_out_of_order(
    staff: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    first = update(inspection_id, {"notes": "first", "pressure": 1}, base_version=1, device_seq=7)
    second = update(
        inspection_id,
        {"notes": "second", "exits": True},
        base_version=1,
        device_seq=9,
        previous_seq=7,
    )

    early = send(staff, [second], device=TAB_A)

    assert statuses(early) == [202]
    assert early.body["results"][0]["body"] == {
        "id": inspection_id,
        "held": True,
        "device_seq": 9,
        "waiting_for_seq": 7,
        "status": "held",
    }
    assert Inspection.objects.get(pk=inspection_id).version == 1

    late = send(staff, [first], device=TAB_A)

    assert statuses(late) == [200]
    stored = Inspection.objects.get(pk=inspection_id)
    # The device's order: its second update's notes win over its first's, though it came first.
    assert stored.answers == {"notes": "second", "pressure": 1, "exits": True}
    versions = staff.get(f"{INSPECTIONS}/{inspection_id}/versions").body["results"]
    assert [(v["version"], v["device_seq"]) for v in versions] == [(1, None), (2, 7), (3, 9)]
    assert HeldUpdate.objects.get().status == HeldUpdate.APPLIED
    # A retry of the held op answers what it answered, and applies nothing again.
    again = send(staff, [second], device=TAB_A)
    assert again.body["results"][0]["replayed"] is True
    assert Inspection.objects.get(pk=inspection_id).version == 3


def test_out_of_order_in_one_batch_and_others_changes_still_merge(
    staff: Api, manager: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    # Meanwhile the manager changed another answer.
    manager.patch(f"{INSPECTIONS}/{inspection_id}", {"answers": {"condition": "good"}})
    ops = [
        update(inspection_id, {"notes": "c"}, base_version=1, device_seq=3, previous_seq=2),
        update(inspection_id, {"notes": "b"}, base_version=1, device_seq=2, previous_seq=1),
        update(inspection_id, {"notes": "a", "exits": False}, base_version=1, device_seq=1),
    ]

    reply = send(staff, ops, device=TAB_A)

    assert statuses(reply) == [202, 202, 200]
    assert reply.body["results"][2]["body"]["merge"]["theirs"] == ["condition"]
    stored = Inspection.objects.get(pk=inspection_id)
    assert stored.answers == {"condition": "good", "notes": "c", "exits": False}
    assert stored.version == 5
    assert sorted(HeldUpdate.objects.values_list("device_seq", "status")) == [
        (2, "applied"),
        (3, "applied"),
    ]


def test_a_held_update_that_conflicts_when_applied_records_its_conflict(
    staff: Api, manager: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    manager.patch(f"{INSPECTIONS}/{inspection_id}", {"answers": {"notes": "manager's"}})
    held = update(
        inspection_id, {"notes": "device's"}, base_version=1, device_seq=2, previous_seq=1
    )
    send(staff, [held], device=TAB_A)

    reply = send(
        staff, [update(inspection_id, {"exits": True}, base_version=1, device_seq=1)], device=TAB_A
    )

    assert statuses(reply) == [200]
    assert HeldUpdate.objects.get().status == HeldUpdate.CONFLICT
    conflict = Conflict.objects.get()
    assert conflict.client_snapshot["fields"] == {"answers": {"notes": "device's"}}
    assert Inspection.objects.get(pk=inspection_id).answers == {"notes": "manager's", "exits": True}


def test_previous_seq_must_be_an_earlier_op_of_the_device(
    staff: Api, inspection: dict[str, Any]
) -> None:
    bad = update(inspection["id"], {"notes": "x"}, device_seq=4, previous_seq=4)
    unnumbered = update(inspection["id"], {"notes": "x"}, previous_seq=1)

    reply = send(staff, [bad, unnumbered], device=TAB_A)

    assert statuses(reply) == [400, 400]
    assert reply.body["results"][0]["body"]["fields"] == {
        "previous_seq": "a lower device_seq of the same device"
    }


def test_a_held_update_goes_on_when_the_update_it_waits_for_is_refused(
    staff: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    later = update(inspection_id, {"notes": "after"}, base_version=1, device_seq=2, previous_seq=1)
    held = send(staff, [later], device=TAB_A)
    assert statuses(held) == [202]

    # The update it waited for can never apply (pressure beyond its bounds): refused for good.
    refused = send(
        staff,
        [update(inspection_id, {"pressure": 99}, base_version=1, device_seq=1)],
        device=TAB_A,
    )

    assert statuses(refused) == [400]
    stored = Inspection.objects.get(pk=inspection_id)
    assert stored.answers["notes"] == "after"
    assert dict(HeldUpdate.objects.values_list("device_seq", "status")) == {
        1: "failed",
        2: "applied",
    }


def test_an_update_naming_a_refused_predecessor_is_not_held(
    staff: Api, inspection: dict[str, Any]
) -> None:
    inspection_id = inspection["id"]
    refused = send(
        staff,
        [update(inspection_id, {"pressure": -1}, base_version=1, device_seq=4)],
        device=TAB_A,
    )
    later = send(
        staff,
        [update(inspection_id, {"notes": "next"}, base_version=1, device_seq=5, previous_seq=4)],
        device=TAB_A,
    )

    assert statuses(refused) == [400]
    assert statuses(later) == [200]
    assert Inspection.objects.get(pk=inspection_id).answers["notes"] == "next"
    # The refusal changed nothing of the inspection: only its arrival is kept.
    assert Inspection.objects.get(pk=inspection_id).version == 2
