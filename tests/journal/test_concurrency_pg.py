"""Real concurrency on PostgreSQL: a live server, many threads posting to the same accounts at
once, each request its own transaction (group commit off, so the row locks really contend).
No deadlock, no lost update: every balance equals the one recomputed from the lines."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest

from quartermaster.journal.models import AccountBalance, Entry
from quartermaster.journal.selectors import verify_journal
from tests.core.test_concurrency_pg import in_parallel, token_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

THREADS = 12
ENTRIES_EACH = 5


def lines_for(thread: int) -> list[dict[str, str]]:
    """Three accounts every thread touches, in opposite directions and listing orders, plus an
    account every thread opens at the same moment (`fee_income:loading`)."""
    lines = [
        {"account": "cash", "debit": "3.00"},
        {"account": "bank", "credit": "2.00"},
        {"account": "fee_income:loading", "credit": "1.00"},
    ]
    if thread % 2:
        lines = [
            {"account": "fee_income:loading", "debit": "1.00"},
            {"account": "bank", "debit": "2.00"},
            {"account": "cash", "credit": "3.00"},
        ]
    return lines


def test_concurrent_postings_to_the_same_accounts_keep_every_balance(
    live_server: Any, settings: Any
) -> None:
    settings.GROUP_COMMIT = False
    base = live_server.url
    headers = {"Authorization": f"Bearer {token_for(base, 'admin')}"}

    def post_all(thread: int) -> list[int]:
        statuses = []
        with httpx.Client(timeout=60) as client:
            for _ in range(ENTRIES_EACH):
                reply = client.post(
                    f"{base}/api/v1/journal/entries",
                    json={"memo": f"thread {thread}", "lines": lines_for(thread)},
                    headers=headers,
                )
                statuses.append(reply.status_code)
        return statuses

    results = in_parallel(THREADS, post_all)

    assert Counter(status for statuses in results for status in statuses) == {
        201: THREADS * ENTRIES_EACH
    }
    assert sorted(Entry.objects.values_list("seq", flat=True)) == list(
        range(1, THREADS * ENTRIES_EACH + 1)
    )  # gap-free
    report = verify_journal()
    assert report.ok, report
    assert (report.entries, report.accounts) == (THREADS * ENTRIES_EACH, 3)
    half = THREADS // 2 * ENTRIES_EACH  # postings in each direction
    totals = {
        b.account.code: (b.debit_total_minor, b.credit_total_minor)
        for b in AccountBalance.objects.select_related("account")
    }
    assert totals == {
        "cash": (300 * half, 300 * half),
        "bank": (200 * half, 200 * half),
        "fee_income:loading": (100 * half, 100 * half),
    }
