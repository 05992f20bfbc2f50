"""`journal backfill` run twice at once on PostgreSQL (each run its own connection, group
commit off, so the row locks really contend): every missing entry is posted once, not twice."""

from __future__ import annotations

from typing import Any

import pytest

from quartermaster.cli import main
from quartermaster.journal.models import Entry
from quartermaster.journal.selectors import verify_journal
from tests.conftest import Api
from tests.journal.test_backfill_cli import (
    a_days_business,
    balances,
    deposits_held,
    forget_the_journal,
)
from tests.sales.test_concurrency import boss, fresh_locations, run_together  # noqa: F401

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_two_backfills_at_once_post_each_missing_entry_once(
    boss: Api,  # noqa: F811
    fresh_locations: str,  # noqa: F811
    settings: Any,
) -> None:
    settings.GROUP_COMMIT = False
    a_days_business(boss, fresh_locations)
    fresh_balances, fresh_deposits = balances(), deposits_held()
    forget_the_journal()

    codes = run_together([lambda: main(["journal", "backfill"])] * 2)

    assert codes == [0, 0]
    assert Entry.objects.count() == 10
    assert balances() == fresh_balances
    assert deposits_held() == fresh_deposits
    assert verify_journal().ok
