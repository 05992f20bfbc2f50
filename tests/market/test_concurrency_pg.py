"""Real concurrency on PostgreSQL (a live server, threads, group commit off so the row locks
contend): entries recorded while their rate is posted are never left waiting beside it; two
tablets' quantity edits on one version both count; two settlements of one farmer generated at
once never recover the same advance twice."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.journal.selectors import verify_journal
from quartermaster.market.models import Entry, Settlement
from tests.core.test_concurrency_pg import in_parallel, token_for
from tests.market.helpers import DAY, MARKET, S1_TIME

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def set_up(client: httpx.Client) -> tuple[str, str, str]:
    flower = client.post(
        f"{MARKET}/flowers", json={"code": "jasmine", "name": "J", "name_ta": "ம", "unit": "kg"}
    ).json()["id"]
    farmers = [
        client.post(
            f"{MARKET}/farmers", json={"name": name, "phone": phone, "language": "ta"}
        ).json()["id"]
        for name, phone in (("Murugan", "9876543210"), ("Valli", "9876500000"))
    ]
    return flower, farmers[0], farmers[1]


def test_entries_recorded_while_their_rate_is_posted_all_get_it(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    headers = {"Authorization": f"Bearer {token_for(live_server.url, 'admin')}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
        flower, farmer, _ = set_up(client)
    clerks, each = 6, 6

    def work(thread: int) -> list[int]:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
            if thread == clerks:
                rate = {"flower": flower, "date": DAY, "slot": "s1", "rate": "100.00"}
                return [client.post(f"{MARKET}/rates", json=rate).status_code]
            body = {"farmer": farmer, "flower": flower, "qty": "1.000", "arrived_at": S1_TIME}
            return [client.post(f"{MARKET}/entries", json=body).status_code for _ in range(each)]

    results = in_parallel(clerks + 1, work)

    assert Counter(s for statuses in results for s in statuses) == {201: clerks * each + 1}
    assert Counter(Entry.objects.values_list("status", "rate_minor", "gross_minor")) == {
        ("open", 10_000, 10_000): clerks * each
    }


def test_two_tablets_edit_one_version_at_once_and_both_deltas_count(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    headers = {"Authorization": f"Bearer {token_for(live_server.url, 'admin')}"}
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
        flower, farmer, _ = set_up(client)
        entry = client.post(
            f"{MARKET}/entries",
            json={"farmer": farmer, "flower": flower, "qty": "10.000", "arrived_at": S1_TIME},
        ).json()
    # Tablets 0-3 each add 0.5 kg, 4-7 each take 0.25 kg, all on version 1.
    sent = ["10.500"] * 4 + ["9.750"] * 4

    def edit(thread: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
            return client.patch(
                f"{MARKET}/entries/{entry['id']}", json={"qty": sent[thread], "base_version": 1}
            ).status_code

    statuses = in_parallel(len(sent), edit)

    assert statuses == [200] * len(sent)
    final = Entry.objects.get(pk=entry["id"])
    assert (final.qty_base, final.version) == (10_000 + 4 * 500 - 4 * 250, 1 + len(sent))


def test_settlements_of_one_farmer_generated_at_once_recover_an_advance_once(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    headers = {"Authorization": f"Bearer {token_for(live_server.url, 'admin')}"}
    days = [f"2026-03-{day:02d}" for day in range(1, 7)]
    with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
        flower, farmer, _ = set_up(client)
        rate = {"flower": flower, "date": days[0], "slot": "s1", "rate": "100.00"}
        assert client.post(f"{MARKET}/rates", json=rate).status_code == 201
        for day in days:
            body = {"farmer": farmer, "flower": flower, "qty": "1.000"}
            client.post(f"{MARKET}/entries", json={**body, "arrived_at": f"{day}T04:30:00+05:30"})
        advance = {"farmer": farmer, "amount": "150.00", "method": "cash"}
        assert client.post(f"{MARKET}/advances", json=advance).status_code == 201

    def generate(thread: int) -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=60) as client:
            period = {"period_from": days[thread], "period_to": days[thread]}
            return client.post(
                f"{MARKET}/settlements", json={"farmer": farmer, **period}
            ).status_code

    statuses = in_parallel(len(days), generate)

    assert statuses == [201] * len(days)
    recovered = sum(Settlement.objects.values_list("advance_recovered_minor", flat=True))
    assert recovered == 15_000
    numbers = sorted(Settlement.objects.values_list("number", flat=True))
    assert numbers == [f"STL-{n:06d}" for n in range(1, len(days) + 1)]
    assert verify_journal().ok
