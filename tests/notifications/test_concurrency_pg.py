"""Two workers at once on PostgreSQL (`SELECT … FOR UPDATE SKIP LOCKED`): every message is
sent exactly once, both workers take a share, and none waits on the other's rows."""

from __future__ import annotations

import re
from typing import Any

import pytest

from quartermaster import cli
from tests.conftest import Api
from tests.core.test_concurrency_pg import in_parallel
from tests.notifications.conftest import make_farmer, notifications, say
from tests.notifications.fake_provider import FakeProvider

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

FARMERS = 24
WORKERS = 2


def test_two_workers_send_every_message_once(
    admin: Api, anon: Api, provider: FakeProvider, capsys: pytest.CaptureFixture[str]
) -> None:
    provider.latency_s = 0.02  # each send takes a moment, so the workers overlap
    for n in range(FARMERS):
        number = f"98765{n:05d}"
        make_farmer(admin, name=f"Farmer {n}", whatsapp=number, phone=number)
        assert say(anon, f"91{number}", "balance").status == 200
    capsys.readouterr()

    codes = in_parallel(WORKERS, lambda _: cli.main(["outbox", "work", "--drain"]))

    output = capsys.readouterr().out
    sent_by_worker = [int(n) for n in re.findall(r"^outbox: (\d+) sent", output, re.MULTILINE)]
    keys = [send.key for send in provider.of("whatsapp")]
    assert codes == [0] * WORKERS
    assert len(keys) == len(set(keys)) == FARMERS  # each message sent once
    assert provider.duplicates == 0
    assert sum(sent_by_worker) == FARMERS and all(sent_by_worker), sent_by_worker
    assert {n["status"] for n in notifications(admin, "?limit=100")} == {"sent"}
    assert all(n["attempts"] == 1 for n in notifications(admin, "?limit=100"))


def test_a_message_claimed_by_one_worker_is_skipped_by_the_other(
    admin: Api, anon: Api, provider: FakeProvider, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """The first worker holds the only message (the provider hangs); the second finds nothing
    due and leaves at once instead of waiting on the row lock or sending it too."""
    make_farmer(admin)
    say(anon, "919876543210", "balance")
    provider.hang()

    def first_then_second(index: int) -> int:
        if index == 0:
            return cli.main(["outbox", "work", "--once"])
        provider.wait_for_requests(1)
        code = cli.main(["outbox", "work", "--once"])
        provider.release.set()
        return code

    codes = in_parallel(2, first_then_second)

    summaries = re.findall(r"^outbox: .*$", capsys.readouterr().out, re.MULTILINE)
    assert codes == [0, 0]
    assert len(provider.of("whatsapp")) == 1
    assert "outbox: 0 sent, 0 retried, 0 failed" in summaries  # the second found nothing due
