"""`quartermaster outbox work --help`, as a user runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli import run

pytestmark = pytest.mark.slow


def test_outbox_work_explains_itself(tmp_path: Path) -> None:
    top = run(["--help"], tmp_path)
    work = run(["outbox", "work", "--help"], tmp_path)
    both = run(["outbox", "work", "--once", "--drain"], tmp_path)

    assert "outbox" in top.stdout
    assert work.returncode == 0
    for words in ("--once", "--drain", "QM_OUTBOX_BACKOFF_SCALE", "at least once"):
        assert words in work.stdout
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_a_lease_shorter_than_a_send_is_refused(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0

    refused = run(
        ["outbox", "work", "--once"],
        tmp_path,
        extra_env={"QM_OUTBOX_LEASE_S": "5", "QM_NOTIFY_TIMEOUT_S": "10"},
    )
    once = run(["outbox", "work", "--once"], tmp_path)

    assert refused.returncode == 2
    assert "QM_OUTBOX_LEASE_S (5) must be longer than QM_NOTIFY_TIMEOUT_S (10)" in refused.stdout
    assert once.returncode == 0
    assert once.stdout.splitlines() == [
        "outbox worker running (once)",
        "outbox: 0 sent, 0 retried, 0 failed",
    ]
