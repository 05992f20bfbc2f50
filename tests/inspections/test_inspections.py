"""Inspections through HTTP: answers checked against the template version on every save,
completeness at submit, the server's score, the lifecycle, every version kept with a diff,
soft delete and restore, and who sees what."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from quartermaster.core.models import AuditEntry
from quartermaster.inspections.models import Inspection, InspectionVersion
from tests.conftest import Api, audit_count
from tests.inspections.helpers import (
    COMPLETE,
    INSPECTIONS,
    TEMPLATES,
    new_inspection,
    published_template,
)
from tests.media.helpers import confirmed_media

pytestmark = pytest.mark.django_db


@pytest.fixture
def template(manager: Api) -> str:
    return published_template(manager)


def test_an_inspector_creates_and_saves_answers_with_a_server_score(
    staff: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers={"exits": True})

    assert {k: created[k] for k in ("status", "template", "template_version", "version")} == {
        "status": "draft",
        "template": template,
        "template_version": 1,
        "version": 1,
    }
    # exits (weight 1) yes of extinguisher 3 + exits 1 + condition 2 possible.
    assert created["score"] == {"earned": 100, "possible": 600, "percent": "16.67"}

    saved = staff.patch(
        f"{INSPECTIONS}/{created['id']}",
        {
            "answers": {"extinguisher": True, "condition": "fair", "pressure": 4.5},
            "base_version": 1,
        },
    )

    assert saved.status == 200, saved.body
    assert saved.body["version"] == 2
    assert saved.body["merge"] is None
    assert saved.body["answers"] == {
        "exits": True,
        "extinguisher": True,
        "condition": "fair",
        "pressure": 4.5,
    }
    assert saved.body["score"] == {"earned": 500, "possible": 600, "percent": "83.33"}
    # n/a leaves a question out of the score; null clears an answer.
    na = staff.patch(
        f"{INSPECTIONS}/{created['id']}", {"answers": {"exits": "na", "condition": None}}
    )
    assert na.body["score"] == {"earned": 300, "possible": 500, "percent": "60.00"}
    assert "condition" not in na.body["answers"]


@pytest.mark.parametrize(
    ("answers", "field"),
    [
        ({"extinguisher": 1}, "answers.extinguisher"),
        ({"extinguisher": "yes"}, "answers.extinguisher"),
        ({"pressure": 11}, "answers.pressure"),
        ({"pressure": True}, "answers.pressure"),
        ({"pressure": "4"}, "answers.pressure"),
        ({"condition": "awful"}, "answers.condition"),
        ({"hazards": ["leak", "leak"]}, "answers.hazards"),
        ({"hazards": "leak"}, "answers.hazards"),
        ({"serviced": "2026-02-30"}, "answers.serviced"),
        ({"photos": [str(uuid.uuid4()) for _ in range(4)]}, "answers.photos"),
        ({"photos": ["not-a-media-id"]}, "answers.photos"),
        ({"signed": 5}, "answers.signed"),
        ({"no_such_question": 1}, "answers.no_such_question"),
    ],
)
def test_answers_are_checked_against_the_template_on_every_save(
    staff: Api, template: str, default_location_id: str, answers: dict[str, Any], field: str
) -> None:
    created = new_inspection(staff, template, default_location_id)
    before = audit_count()

    reply = staff.patch(f"{INSPECTIONS}/{created['id']}", {"answers": answers})
    on_create = staff.post(
        INSPECTIONS, {"template": template, "location": default_location_id, "answers": answers}
    )

    assert reply.status == 400, reply.body
    assert list(reply.body["fields"]) == [field]
    assert on_create.status == 400
    assert Inspection.objects.get(pk=created["id"]).version == 1
    assert (Inspection.objects.count(), audit_count()) == (1, before)


def test_submit_needs_every_required_answer_and_photo_count(
    staff: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers={"exits": False})
    path = f"{INSPECTIONS}/{created['id']}"

    incomplete = staff.post(f"{path}/submit")
    staff.patch(path, {"answers": {**COMPLETE, "photos": []}})
    one_photo_short = staff.patch(path, {"answers": {"photos": [confirmed_media(staff)]}})

    assert incomplete.status == 400
    assert incomplete.body["fields"] == {
        "answers.extinguisher": "required",
        "answers.pressure": "required",
    }
    assert one_photo_short.status == 200
    submitted = staff.post(f"{path}/submit")
    assert submitted.status == 200, submitted.body
    assert submitted.body["status"] == "submitted"


def test_the_lifecycle_reject_back_to_draft_then_approve(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers=COMPLETE)
    path = f"{INSPECTIONS}/{created['id']}"
    staff.post(f"{path}/submit")

    locked = staff.patch(path, {"answers": {"notes": "late"}})
    inspector_approves = staff.post(f"{path}/approve")
    no_comment = manager.post(f"{path}/reject", {"comment": "  "})
    rejected = manager.post(f"{path}/reject", {"comment": "Photo of the gauge, please"})
    approve_rejected = manager.post(f"{path}/approve")
    fixed = staff.patch(path, {"answers": {"notes": "gauge photographed"}})
    resubmitted = staff.post(f"{path}/submit")
    approved = manager.post(f"{path}/approve", {"comment": "ok"})
    after_approval = staff.patch(path, {"answers": {"notes": "again"}})
    submit_again = staff.post(f"{path}/submit")

    assert (locked.status, locked.body["code"]) == (409, "inspection_locked")
    assert inspector_approves.status == 403
    assert no_comment.status == 400
    assert (rejected.body["status"], rejected.body["review_comment"]) == (
        "rejected",
        "Photo of the gauge, please",
    )
    assert (approve_rejected.status, approve_rejected.body["code"]) == (409, "wrong_status")
    assert fixed.body["status"] == "draft"
    assert fixed.body["review_comment"] == "Photo of the gauge, please"
    assert resubmitted.body["status"] == "submitted"
    assert (approved.body["status"], approved.body["reviewed_by"]) == ("approved", "manager")
    assert (after_approval.status, after_approval.body["code"]) == (409, "inspection_locked")
    assert (submit_again.status, submit_again.body["code"]) == (409, "wrong_status")
    versions = staff.get(f"{path}/versions").body["results"]
    assert [(v["version"], v["action"], v["status"]) for v in versions] == [
        (1, "inspection.create", "draft"),
        (2, "inspection.submit", "submitted"),
        (3, "inspection.reject", "rejected"),
        (4, "inspection.update", "draft"),
        (5, "inspection.submit", "submitted"),
        (6, "inspection.approve", "approved"),
    ]


def test_every_version_is_kept_and_two_are_diffed(
    staff: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers={"exits": True})
    path = f"{INSPECTIONS}/{created['id']}"
    staff.patch(path, {"answers": {"pressure": 3, "notes": "ok"}})
    staff.patch(path, {"answers": {"pressure": 5, "exits": None}})

    page = staff.get(f"{path}/versions?limit=2")
    rest = staff.get(f"{path}/versions?cursor={page.body['next_cursor']}")
    diff = staff.get(f"{path}/diff?from=1&to=3")
    one = staff.get(f"{path}/versions/2")

    assert [v["version"] for v in page.body["results"] + rest.body["results"]] == [1, 2, 3]
    assert page.body["results"][1]["changed"] == ["notes", "pressure"]
    assert one.body["answers"] == {"exits": True, "pressure": 3, "notes": "ok"}
    assert diff.status == 200
    assert diff.body["answers"] == {
        "added": {"notes": "ok", "pressure": 5},
        "removed": {"exits": True},
        "changed": {},
    }
    assert staff.get(f"{path}/diff?from=1&to=9").status == 404
    assert staff.get(f"{path}/versions/99999999999999999999999").status == 404
    # Versions are append-only in the database too.
    from django.db import DatabaseError, transaction

    with pytest.raises(DatabaseError), transaction.atomic():
        InspectionVersion.objects.filter(inspection_id=created["id"]).delete()


def test_soft_delete_hides_it_a_manager_restores_it(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id)
    path = f"{INSPECTIONS}/{created['id']}"

    deleted = staff.delete(path)
    again = staff.delete(path)

    assert (deleted.status, again.status) == (204, 204)
    assert staff.get(path).status == 404
    assert staff.get(INSPECTIONS).body["results"] == []
    assert staff.patch(path, {"answers": {"notes": "x"}}).status == 404
    assert [i["id"] for i in manager.get(f"{INSPECTIONS}?deleted=true").body["results"]] == [
        created["id"]
    ]
    assert staff.post(f"{path}/restore").status == 403
    changes = manager.get("/api/v1/sync/changes?since=0").body["changes"]
    assert [c["op"] for c in changes if c["entity"] == "inspection"] == ["upsert", "delete"]

    restored = manager.post(f"{path}/restore")

    assert restored.status == 200
    assert (restored.body["deleted"], restored.body["version"]) == (False, 3)
    assert staff.get(path).status == 200
    assert Inspection.objects.filter(pk=created["id"]).exists()
    assert manager.post(f"{path}/restore").body["code"] == "wrong_status"


def test_an_inspector_cannot_delete_a_submitted_inspection(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    created = new_inspection(staff, template, default_location_id, answers=COMPLETE)
    staff.post(f"{INSPECTIONS}/{created['id']}/submit")

    assert staff.delete(f"{INSPECTIONS}/{created['id']}").body["code"] == "inspection_locked"
    assert manager.delete(f"{INSPECTIONS}/{created['id']}").status == 204


def test_inspectors_see_and_edit_only_their_own_managers_all(
    make_api: Callable[..., Api],
    manager: Api,
    auditor: Api,
    template: str,
    default_location_id: str,
) -> None:
    other_location = manager.post("/api/v1/locations", {"name": "Plant B", "kind": "store"}).body[
        "id"
    ]
    anna = make_api("staff", "anna", locations=(default_location_id,))
    ben = make_api("staff", "ben", locations=(default_location_id, other_location))
    annas = new_inspection(anna, template, default_location_id)
    bens = new_inspection(ben, template, other_location)
    path = f"{INSPECTIONS}/{bens['id']}"

    assert [i["id"] for i in anna.get(INSPECTIONS).body["results"]] == [annas["id"]]
    assert [i["id"] for i in ben.get(INSPECTIONS).body["results"]] == [bens["id"]]
    for attempt in (
        anna.get(path),
        anna.patch(path, {"answers": {"notes": "mine now"}}),
        anna.post(f"{path}/submit"),
        anna.delete(path),
        anna.get(f"{path}/versions"),
    ):
        assert attempt.status == 404, attempt.body
    # Anna may not work at Plant B, nor assign work to Ben.
    elsewhere = anna.post(INSPECTIONS, {"template": template, "location": other_location})
    assert elsewhere.status == 404
    me = ben.get("/api/v1/auth/me").body["id"]
    assign = anna.post(
        INSPECTIONS, {"template": template, "location": default_location_id, "assignee": me}
    )
    assert assign.status == 403
    # Managers and auditors read every location's; a manager assigns an inspector there.
    for reader in (manager, auditor):
        assert {i["id"] for i in reader.get(INSPECTIONS).body["results"]} == {
            annas["id"],
            bens["id"],
        }
    assigned = manager.post(
        INSPECTIONS, {"template": template, "location": other_location, "assignee": me}
    )
    assert (assigned.status, assigned.body["assignee"]) == (201, me)
    nobody_there = manager.post(
        INSPECTIONS,
        {
            "template": template,
            "location": other_location,
            "assignee": anna.get("/api/v1/auth/me").body["id"],
        },
    )
    assert nobody_there.body["fields"] == {"assignee": "not assigned to this location"}
    assert auditor.patch(path, {"answers": {"notes": "x"}}).status == 403
    # The change feed shows an inspector only their own inspections.
    anna_feed = anna.get("/api/v1/sync/changes?since=0").body["changes"]
    assert {c["id"] for c in anna_feed if c["entity"] == "inspection"} == {annas["id"]}


def test_an_inspection_needs_a_published_template(
    manager: Api, staff: Api, default_location_id: str
) -> None:
    from tests.inspections.helpers import BOILER_ROOM

    draft = manager.post(TEMPLATES, BOILER_ROOM).body["id"]

    reply = staff.post(INSPECTIONS, {"template": draft, "location": default_location_id})

    assert reply.status == 400
    assert reply.body["fields"] == {"template": "no published template with this id"}


def test_a_new_template_version_leaves_existing_inspections_on_theirs(
    manager: Api, staff: Api, template: str, default_location_id: str
) -> None:
    import copy

    from tests.inspections.helpers import BOILER_ROOM

    old = new_inspection(staff, template, default_location_id)
    changed = copy.deepcopy(BOILER_ROOM)
    changed["sections"][1]["questions"].append({"id": "temp", "type": "number", "label": "T"})
    manager.request("PUT", f"{TEMPLATES}/{template}", changed)
    manager.post(f"{TEMPLATES}/{template}/publish")
    new = new_inspection(staff, template, default_location_id)

    assert (old["template_version"], new["template_version"]) == (1, 2)
    refused = staff.patch(f"{INSPECTIONS}/{old['id']}", {"answers": {"temp": 20}})
    assert refused.body["fields"] == {"answers.temp": "not a question of this template version"}
    assert staff.patch(f"{INSPECTIONS}/{new['id']}", {"answers": {"temp": 20}}).status == 200


def test_the_report_is_a_pdf_of_each_question_and_its_answer(
    staff: Api, manager: Api, template: str, default_location_id: str
) -> None:
    from tests.documents.pdf_tools import first_page, get_pdf, ink, pdf_info, pdf_text

    created = new_inspection(staff, template, default_location_id, answers=COMPLETE)
    path = f"{INSPECTIONS}/{created['id']}/report"

    mine = get_pdf(staff, path)
    managers = get_pdf(manager, path)

    assert mine.status_code == managers.status_code == 200
    assert mine["Content-Type"] == "application/pdf"
    text = pdf_text(mine.content)
    for words in ("Inspection report", "Boiler room", "draft", "staff", "4.5", "yes", "—"):
        assert words in text, (words, text)
    assert "Boiler room" in pdf_info(mine.content)["Title"]
    # The version printed is the one the chain recorded last for it: its entry and hash.
    recorded = AuditEntry.objects.filter(entity_type="inspection", entity_id=created["id"])
    last = recorded.order_by("-seq").first()
    assert last is not None
    flat = "".join(text.split())
    assert f"entry{last.seq}" in flat and last.hash in flat, text
    assert ink(first_page(mine.content)) > 0.005
    assert staff.get(f"{INSPECTIONS}/{uuid.uuid4()}/report").status == 404
