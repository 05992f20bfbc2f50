"""`quartermaster agent …` run as a user would run it, offline: record, status, conflicts, sync
against no server. The round trip against a real server is in tests/acceptance."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from quartermaster.client.store import DeviceStore, Outcome

pytestmark = pytest.mark.slow

SRC = str(Path(__file__).parents[2] / "src")


def agent(args: list[str], db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quartermaster", "agent", *args],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PYTHONPATH": SRC,
            "QM_AGENT_DB": str(db),
            "QM_AGENT_SERVER": "",
            "QM_AGENT_USERNAME": "",
            "QM_AGENT_PASSWORD": "",
            **env,
        },
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_help_names_every_agent_command(tmp_path: Path) -> None:
    result = agent(["--help"], tmp_path / "a.sqlite3")

    assert result.returncode == 0
    for command in ("record", "sync", "status", "conflicts", "QM_AGENT_SERVER"):
        assert command in result.stdout
    assert "--payload" in agent(["record", "--help"], tmp_path / "a.sqlite3").stdout
    assert "--once" in agent(["sync", "--help"], tmp_path / "a.sqlite3").stdout


def test_agent_commands_never_import_django(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from quartermaster.cli import main\n"
        f"main(['agent', '--help'] if False else ['agent', 'status', '--db', {str(tmp_path / 'a.sqlite3')!r}])\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'ninja')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC},
        check=True,
    )

    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_record_offline_then_status_counts_it(tmp_path: Path) -> None:
    db = tmp_path / "device" / "agent.sqlite3"

    made = agent(
        ["record", "item.create", "--payload", '{"name": "Valve", "qty": 5}', "--new-temp-id"],
        db,
    )
    adjusted = agent(
        ["record", "item.adjust", "--payload", '{"item_id": "temp_x", "delta": 1}', "--device",
         "truck-07"],
        db,
    )  # fmt: skip
    bad = agent(["record", "item.create", "--payload", "[1, 2]"], db)
    status = agent(["status", "--json"], db)

    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("temp_") and len(made.stdout.split()) == 1  # only the id
    assert "recorded op #2 item.adjust" in adjusted.stdout
    assert bad.returncode == 2 and "JSON object" in bad.stdout
    state = json.loads(status.stdout)
    assert state["device_id"] == "truck-07"
    assert state["ops"] == {"pending": 2, "done": 0, "rejected": 0, "conflicts": 0}
    assert state["last_sync_at"] is None


def test_conflicts_lists_rejected_ops_with_the_error_body(tmp_path: Path) -> None:
    db = tmp_path / "agent.sqlite3"
    with DeviceStore(db) as store:
        op = store.record("item.adjust", {"item_id": "u1", "delta": -9})
        store.save_outcomes(
            [
                Outcome(
                    op.op_id,
                    409,
                    {"error": "not enough stock", "code": "insufficient_stock"},
                    {},
                    final=True,
                )
            ]
        )

    listed = agent(["conflicts"], db)
    as_json = json.loads(agent(["conflicts", "--json"], db).stdout)

    assert listed.returncode == 0
    assert "conflict #1 item.adjust → 409 (insufficient_stock) not enough stock" in listed.stdout
    assert as_json[0]["op_id"] == op.op_id and as_json[0]["conflict"] is True
    assert as_json[0]["body"]["code"] == "insufficient_stock"


def test_sync_without_a_server_says_how_to_give_one(tmp_path: Path) -> None:
    result = agent(["sync"], tmp_path / "agent.sqlite3")

    assert result.returncode == 2
    assert "QM_AGENT_SERVER" in result.stdout


def test_sync_once_against_an_unreachable_server_keeps_the_ops(tmp_path: Path) -> None:
    db = tmp_path / "agent.sqlite3"
    agent(["record", "item.create", "--payload", '{"name": "Valve", "qty": 5}'], db)

    result = agent(
        ["sync", "--once", "--server", "http://127.0.0.1:9", "--username", "u", "--password", "p"],
        db,
    )
    status = json.loads(agent(["status", "--json"], db).stdout)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "ConnectError" in result.stdout and "run `agent sync` again" in result.stdout
    assert status["ops"]["pending"] == 1
    assert status["server"] == "http://127.0.0.1:9"
