"""Answer-level merge under real concurrency on PostgreSQL: devices saving from one base at once."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.inspections.models import Inspection
from quartermaster.inventory.selectors import get_default_location
from tests.core.test_concurrency_pg import in_parallel, token_for
from tests.inspections.helpers import BOILER_ROOM
from tests.media.helpers import declare, image_bytes

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

ANSWERS: list[tuple[str, Any]] = [
    ("extinguisher", True),
    ("exits", False),
    ("condition", "good"),
    ("pressure", 2.5),
    ("notes", "fine"),
    ("hazards", ["leak"]),
    ("serviced", "2026-01-31"),
    ("signed", None),  # a media id confirmed in the test
]


def confirmed_over_http(base: str, headers: dict[str, str]) -> str:
    """A signature image uploaded to the live server's local storage and confirmed."""
    content = image_bytes("PNG")
    asked = httpx.post(
        f"{base}/api/v1/media/uploads", json=declare(content, "image/png"), headers=headers
    ).json()
    httpx.put(asked["upload"]["url"], content=content, headers=asked["upload"]["headers"])
    confirmed = httpx.post(f"{base}/api/v1/media/{asked['id']}/confirm", headers=headers)
    assert confirmed.status_code == 200, confirmed.text
    return str(asked["id"])


def test_devices_saving_different_answers_at_once_all_merge(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'manager', 'manager')}"}
    template = httpx.post(f"{base}/api/v1/templates", json=BOILER_ROOM, headers=headers).json()
    httpx.post(f"{base}/api/v1/templates/{template['id']}/publish", headers=headers)
    location = str(get_default_location().id)
    ANSWERS[-1] = ("signed", confirmed_over_http(base, headers))
    inspection = httpx.post(
        f"{base}/api/v1/inspections",
        json={"template": template["id"], "location": location},
        headers=headers,
    ).json()

    def save(index: int) -> int:
        question, value = ANSWERS[index]
        op = {
            "op_id": str(uuid.uuid4()),
            "type": "inspection.update",
            "payload": {"id": inspection["id"], "answers": {question: value}},
            "base_version": 1,
        }
        reply = httpx.post(
            f"{base}/api/v1/sync/batch",
            json={"device_id": f"tablet-{index}", "ops": [op]},
            headers=headers,
            timeout=60,
        )
        return int(reply.json()["results"][0]["status"])

    assert Counter(in_parallel(len(ANSWERS), save)) == {200: len(ANSWERS)}
    stored = Inspection.objects.get(pk=inspection["id"])
    assert stored.answers == dict(ANSWERS)
    assert stored.version == 1 + len(ANSWERS)

    # The same answer from four devices at once: one saves, three conflict.
    def clash(index: int) -> int:
        body = {"answers": {"notes": f"device {index}"}, "base_version": stored.version}
        path = f"{base}/api/v1/inspections/{inspection['id']}"
        return httpx.patch(path, json=body, headers=headers, timeout=60).status_code

    assert Counter(in_parallel(4, clash)) == {200: 1, 409: 3}
    assert verify_chain().ok
