"""Real concurrency on PostgreSQL: a live server, several devices sending the same truck's count
and several managers approving it at once (group commit off, so each request is its own
transaction). One count, one close, one loss, one journal entry."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from quartermaster.cli import main as cli_main
from quartermaster.dayend.models import DayEnd
from quartermaster.inventory.models import Movement
from quartermaster.journal.models import Entry
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 6


def test_a_truck_day_is_counted_once_and_closed_once_under_contention(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    base = f"{live_server.url}/api/v1"
    admin = {"Authorization": f"Bearer {token_for(live_server.url, 'admin')}"}
    with httpx.Client(timeout=60, headers=admin) as client:
        truck = client.post(f"{base}/locations", json={"name": "Truck 07", "kind": "vehicle"})
        truck_id = truck.json()["id"]
        gas = client.post(f"{base}/items", json={"name": "LPG 14.2 kg", "qty": 0}).json()["id"]
        receipt = {"to_location": truck_id, "lines": [{"item": gas, "qty": 10}]}
        assert client.post(f"{base}/receipts", json=receipt).status_code == 201
    count = {
        "location": truck_id,
        "date": datetime.now(ZoneInfo(settings.DAY_END_TIMEZONE)).date().isoformat(),
        "counted": [{"item": gas, "qty": 9, "reason": "leaking, returned to plant"}],
        "cash_handed_in": "0.00",
    }

    def post(path: str, body: dict[str, Any] | None) -> httpx.Response:
        with httpx.Client(timeout=60, headers=admin) as client:
            return client.post(f"{base}{path}", json=body)

    counted = in_parallel(THREADS, lambda _: post("/day-ends", count))
    [day_end] = [reply.json() for reply in counted if reply.status_code == 201]
    approved = in_parallel(THREADS, lambda _: post(f"/day-ends/{day_end['id']}/approve", None))

    assert Counter(reply.status_code for reply in counted) == {201: 1, 409: THREADS - 1}
    assert {reply.json()["code"] for reply in counted if reply.status_code == 409} == {
        "day_end_exists"
    }
    assert Counter(reply.status_code for reply in approved) == {200: 1, 409: THREADS - 1}
    assert {reply.json()["code"] for reply in approved if reply.status_code == 409} == {
        "day_closed"
    }
    assert DayEnd.objects.get().status == "closed"
    assert Movement.objects.filter(reference=f"day_end:{day_end['number']}").count() == 1
    assert Entry.objects.count() == 0  # the money agreed: nothing to post
    assert cli_main(["stock", "rebuild", "--check"]) == 0
    assert cli_main(["audit", "verify"]) == 0
