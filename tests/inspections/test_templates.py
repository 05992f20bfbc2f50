"""Templates through HTTP: authoring, publishing (a published version is immutable, a change is a
new version, question ids keep their type), who reads what, and ETag / 304."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from django.db import DatabaseError, transaction

from quartermaster.inspections.models import Template, TemplateVersion
from tests.conftest import Api, audit_count
from tests.inspections.helpers import BOILER_ROOM, TEMPLATES, published_template

pytestmark = pytest.mark.django_db


def test_a_manager_creates_a_draft_and_publishes_it(manager: Api, staff: Api) -> None:
    created = manager.post(TEMPLATES, BOILER_ROOM)

    assert created.status == 201, created.body
    assert (created.body["version"], created.body["status"]) == (1, "draft")
    assert created.body["published_version"] is None
    assert created.body["sections"][1]["questions"][0] == {
        "id": "pressure",
        "type": "number",
        "label": "Pressure",
        "required": True,
        "min": 0,
        "max": 10,
        "unit": "bar",
    }
    # A draft is the authors' alone.
    assert staff.get(f"{TEMPLATES}/{created.body['id']}").status == 404
    assert staff.get(TEMPLATES).body["results"] == []

    published = manager.post(f"{TEMPLATES}/{created.body['id']}/publish")

    assert published.status == 200
    assert (published.body["status"], published.body["published_version"]) == ("published", 1)
    seen = staff.get(f"{TEMPLATES}/{created.body['id']}")
    assert seen.status == 200
    assert seen.body["sections"] == created.body["sections"]
    again = manager.post(f"{TEMPLATES}/{created.body['id']}/publish")
    assert (again.status, again.body["code"]) == (409, "wrong_status")


def test_only_managers_and_admins_author_templates(staff: Api, auditor: Api, admin: Api) -> None:
    before = audit_count()

    for api in (staff, auditor):
        assert api.post(TEMPLATES, BOILER_ROOM).status == 403

    assert (Template.objects.count(), audit_count()) == (0, before)
    assert admin.post(TEMPLATES, BOILER_ROOM).status == 201


def test_a_change_to_a_published_template_is_a_new_version(manager: Api, staff: Api) -> None:
    template = published_template(manager)
    changed = copy.deepcopy(BOILER_ROOM)
    changed["sections"][0]["questions"].append(
        {"id": "alarm", "type": "yes_no", "label": "Alarm tested?"}
    )

    revised = manager.request("PUT", f"{TEMPLATES}/{template}", changed)

    assert revised.status == 200, revised.body
    assert (revised.body["version"], revised.body["status"]) == (2, "draft")
    assert revised.body["published_version"] == 1
    # Readers still see version 1 until version 2 is published; version 1 is unchanged.
    assert staff.get(f"{TEMPLATES}/{template}").body["version"] == 1
    assert staff.get(f"{TEMPLATES}/{template}?version=2").status == 404
    first = TemplateVersion.objects.get(template_id=template, version=1)
    assert [q["id"] for q in first.sections[0]["questions"]] == [
        "extinguisher",
        "exits",
        "condition",
    ]
    # Replacing the draft keeps its number.
    again = manager.request("PUT", f"{TEMPLATES}/{template}", changed)
    assert again.body["version"] == 2
    manager.post(f"{TEMPLATES}/{template}/publish")
    assert staff.get(f"{TEMPLATES}/{template}").body["version"] == 2
    assert staff.get(f"{TEMPLATES}/{template}?version=1").body["version"] == 1


def test_a_question_id_keeps_its_type_across_versions(manager: Api) -> None:
    template = published_template(manager)
    changed = copy.deepcopy(BOILER_ROOM)
    changed["sections"][0]["questions"][0]["type"] = "text"
    del changed["sections"][0]["questions"][0]["weight"]

    reply = manager.request("PUT", f"{TEMPLATES}/{template}", changed)

    assert reply.status == 400
    assert reply.body["fields"] == {
        "questions.extinguisher": "was a yes_no question; a new id for a new type"
    }
    assert TemplateVersion.objects.filter(template_id=template).count() == 1


def test_the_database_refuses_to_change_a_published_version(manager: Api) -> None:
    template = published_template(manager)

    with pytest.raises(DatabaseError), transaction.atomic():
        TemplateVersion.objects.filter(template_id=template).update(name="changed")


@pytest.mark.parametrize(
    ("question", "field"),
    [
        ({"id": "q", "type": "number", "label": "N", "min": 5, "max": 1}, "min"),
        ({"id": "q", "type": "single_choice", "label": "C"}, "options"),
        ({"id": "q", "type": "single_choice", "label": "C", "options": ["a", "a"]}, "options"),
        ({"id": "q", "type": "text", "label": "T", "weight": 2}, "weight"),
        ({"id": "q", "type": "text", "label": "T", "unit": "kg"}, "unit"),
        ({"id": "q", "type": "photo", "label": "P", "min": 1.5}, "min"),
        ({"id": "q q", "type": "text", "label": "T"}, "id"),
        ({"id": "q", "type": "text", "label": "  "}, "label"),
        ({"id": "q", "type": "yes_no", "label": "Y", "options": ["x"]}, "options"),
    ],
)
def test_bad_questions_are_refused_naming_the_field(
    manager: Api, question: dict[str, Any], field: str
) -> None:
    body = {"name": "T", "sections": [{"id": "s", "title": "S", "questions": [question]}]}

    reply = manager.post(TEMPLATES, body)

    assert reply.status == 400, reply.body
    assert f"sections[0].questions[0].{field}" in reply.body["fields"]
    assert Template.objects.count() == 0


def test_ids_are_unique_across_the_template(manager: Api) -> None:
    body = copy.deepcopy(BOILER_ROOM)
    body["sections"][1]["questions"][0]["id"] = "exits"

    reply = manager.post(TEMPLATES, body)

    assert reply.status == 400
    assert reply.body["fields"] == {
        "sections[1].questions[0].id": "ids must be unique in a template"
    }


def test_types_are_checked_by_the_wire_schema(manager: Api) -> None:
    body = copy.deepcopy(BOILER_ROOM)
    body["sections"][0]["questions"][0]["required"] = 1

    reply = manager.post(TEMPLATES, body)

    assert reply.status == 400
    assert any("required" in field for field in reply.body["fields"])


def big_template(questions: int) -> dict[str, Any]:
    return {
        "name": "Plant room, full survey",
        "sections": [
            {
                "id": f"s{section}",
                "title": f"Section {section}: floors, walls and fixed equipment",
                "questions": [
                    {
                        "id": f"s{section}q{index}",
                        "type": "single_choice",
                        "label": f"Is item {index} of section {section} in the state it should be?",
                        "required": True,
                        "options": ["good", "fair", "poor", "missing"],
                        "weight": 2,
                        "option_scores": {"good": 100, "fair": 50, "poor": 0, "missing": 0},
                    }
                    for index in range(questions // 10)
                ],
            }
            for section in range(10)
        ],
    }


def test_etag_and_304_save_the_bytes_of_a_200_question_template(manager: Api, staff: Api) -> None:
    template = published_template(manager, big_template(200))
    path = f"{TEMPLATES}/{template}"

    first = staff.client.get(path, headers={"Authorization": f"Bearer {staff.token}"})
    tag = first["ETag"]
    again = staff.client.get(
        path, headers={"Authorization": f"Bearer {staff.token}", "If-None-Match": tag}
    )
    weak = staff.client.get(
        path, headers={"Authorization": f"Bearer {staff.token}", "If-None-Match": f"W/{tag}"}
    )
    stale = staff.client.get(
        path, headers={"Authorization": f"Bearer {staff.token}", "If-None-Match": '"other"'}
    )

    assert first.status_code == 200
    body = json.loads(first.content)
    assert sum(len(s["questions"]) for s in body["sections"]) == 200
    assert len(first.content) > 50_000
    assert (again.status_code, again.content, again["ETag"]) == (304, b"", tag)
    assert (weak.status_code, weak.content) == (304, b"")
    assert stale.status_code == 200 and stale.content == first.content
    # The savings: the whole body, every time the template has not changed.
    saved = len(first.content) - len(again.content)
    assert saved == len(first.content)


def test_the_list_has_an_etag_that_changes_with_a_publish(manager: Api, staff: Api) -> None:
    template = published_template(manager)
    headers = {"Authorization": f"Bearer {staff.token}"}
    listed = staff.client.get(TEMPLATES, headers=headers)
    tag = listed["ETag"]
    assert staff.client.get(TEMPLATES, headers={**headers, "If-None-Match": tag}).status_code == 304

    changed = copy.deepcopy(BOILER_ROOM)
    changed["name"] = "Boiler room (2)"
    manager.request("PUT", f"{TEMPLATES}/{template}", changed)
    manager.post(f"{TEMPLATES}/{template}/publish")

    after = staff.client.get(TEMPLATES, headers={**headers, "If-None-Match": tag})
    assert after.status_code == 200
    assert after["ETag"] != tag
    assert json.loads(after.content)["results"][0]["name"] == "Boiler room (2)"
