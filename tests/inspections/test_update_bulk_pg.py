"""Bulk runs of `inspection.update` under real concurrency on PostgreSQL: two devices' batches
on the same inspection at once lose no update and leave its versions gap-free."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.core.audit import verify_chain
from quartermaster.inspections.models import Inspection, InspectionVersion
from quartermaster.inventory.selectors import get_default_location
from tests.core.test_concurrency_pg import in_parallel, token_for
from tests.inspections.helpers import BOILER_ROOM

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

OPS = 20
# Each device changes answers of its own: every update merges with the other's.
QUESTIONS = {"tablet-a": ("notes", "pressure"), "tablet-b": ("condition", "exits")}


def answer(question: str, n: int) -> Any:
    if question == "notes":
        return f"note {n}"
    if question == "pressure":
        return n % 10
    if question == "condition":
        return ["good", "fair", "poor"][n % 3]
    return n % 2 == 0


def test_two_devices_batches_on_one_inspection_at_once_lose_nothing(live_server: Any) -> None:
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'manager', 'manager')}"}
    template = httpx.post(f"{base}/api/v1/templates", json=BOILER_ROOM, headers=headers).json()
    httpx.post(f"{base}/api/v1/templates/{template['id']}/publish", headers=headers)
    inspection = httpx.post(
        f"{base}/api/v1/inspections",
        json={"template": template["id"], "location": str(get_default_location().id)},
        headers=headers,
    ).json()
    devices = list(QUESTIONS)

    def batch(index: int) -> list[int]:
        device = devices[index]
        ops = [
            {
                "op_id": str(uuid.uuid4()),
                "type": "inspection.update",
                "payload": {
                    "id": inspection["id"],
                    "answers": {q: answer(q, n) for q in QUESTIONS[device]},
                },
                "base_version": 1,
                "device_seq": n,
            }
            for n in range(1, OPS + 1)
        ]
        reply = httpx.post(
            f"{base}/api/v1/sync/batch",
            json={"device_id": device, "ops": ops},
            headers=headers,
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        return [int(result["status"]) for result in reply.json()["results"]]

    answered = in_parallel(len(devices), batch)

    assert Counter(s for statuses in answered for s in statuses) == {200: OPS * len(devices)}
    stored = Inspection.objects.get(pk=inspection["id"])
    assert stored.version == 1 + OPS * len(devices)
    assert stored.answers == {q: answer(q, OPS) for qs in QUESTIONS.values() for q in qs}
    versions = list(
        InspectionVersion.objects.filter(inspection_id=inspection["id"])
        .order_by("version")
        .values_list("version", "device", "device_seq")
    )
    assert [v for v, _, _ in versions] == list(range(1, stored.version + 1))
    for device in devices:  # each device's updates in its order
        seqs = [seq for _, d, seq in versions if d == device]
        assert seqs == list(range(1, OPS + 1))
    assert verify_chain().ok
