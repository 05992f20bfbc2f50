"""Building templates and inspections for the tests."""

from __future__ import annotations

from typing import Any

from tests.conftest import Api

TEMPLATES = "/api/v1/templates"
INSPECTIONS = "/api/v1/inspections"

BOILER_ROOM = {
    "name": "Boiler room",
    "sections": [
        {
            "id": "safety",
            "title": "Safety",
            "questions": [
                {
                    "id": "extinguisher",
                    "type": "yes_no",
                    "label": "Extinguisher?",
                    "required": True,
                    "weight": 3,
                },
                {"id": "exits", "type": "yes_no", "label": "Exits clear?", "weight": 1},
                {
                    "id": "condition",
                    "type": "single_choice",
                    "label": "Condition",
                    "options": ["good", "fair", "poor"],
                    "weight": 2,
                    "option_scores": {"good": 100, "fair": 50, "poor": 0},
                },
            ],
        },
        {
            "id": "readings",
            "title": "Readings",
            "questions": [
                {
                    "id": "pressure",
                    "type": "number",
                    "label": "Pressure",
                    "min": 0,
                    "max": 10,
                    "unit": "bar",
                    "required": True,
                },
                {"id": "notes", "type": "text", "label": "Notes"},
                {
                    "id": "hazards",
                    "type": "multi_choice",
                    "label": "Hazards",
                    "options": ["leak", "noise", "heat"],
                },
                {"id": "serviced", "type": "date", "label": "Last serviced"},
                {"id": "photos", "type": "photo", "label": "Photos", "min": 1, "max": 3},
                {"id": "signed", "type": "signature", "label": "Signature"},
            ],
        },
    ],
}

COMPLETE = {"extinguisher": True, "pressure": 4.5}


def published_template(manager: Api, body: dict[str, Any] | None = None) -> str:
    created = manager.post(TEMPLATES, body or BOILER_ROOM)
    assert created.status == 201, created.body
    published = manager.post(f"{TEMPLATES}/{created.body['id']}/publish")
    assert published.status == 200, published.body
    return str(created.body["id"])


def new_inspection(api: Api, template: str, location: str, **fields: Any) -> dict[str, Any]:
    reply = api.post(INSPECTIONS, {"template": template, "location": location, **fields})
    assert reply.status == 201, reply.body
    return dict(reply.body)
