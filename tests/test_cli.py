"""The `quartermaster` command, run as a user would run it (a subprocess on its own database)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def run(
    args: list[str], data_dir: Path, *, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "QM_DATA_DIR": str(data_dir),
        "QM_DATABASE_URL": "",
        "PYTHONPATH": str(Path(__file__).parents[1] / "src"),
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "quartermaster", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run(["--help"], tmp_path)

    assert result.returncode == 0
    for command in ("serve", "migrate", "demo", "createuser", "audit"):
        assert command in result.stdout
    assert "verify" in run(["audit", "--help"], tmp_path).stdout


def test_createuser_reads_the_password_from_stdin_and_audit_verifies(tmp_path: Path) -> None:
    assert run(["migrate"], tmp_path).returncode == 0

    created = run(["createuser", "clerk", "--role", "staff"], tmp_path, stdin="s3cret-pass!\n")
    duplicate = run(["createuser", "clerk", "--role", "staff"], tmp_path, stdin="s3cret-pass!\n")
    too_short = run(["createuser", "other", "--role", "staff"], tmp_path, stdin="short\n")
    verified = run(["audit", "verify"], tmp_path)

    assert created.returncode == 0, created.stdout + created.stderr
    assert "created user clerk (staff)" in created.stdout
    assert duplicate.returncode == 1 and "already exists" in duplicate.stdout
    assert too_short.returncode == 1 and "password" in too_short.stdout
    assert verified.returncode == 0
    assert "audit chain OK: 1 entry" in verified.stdout


def test_audit_verify_fails_and_names_the_entry_after_tampering(tmp_path: Path) -> None:
    run(["demo"], tmp_path)
    database = tmp_path / "quartermaster.sqlite3"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]);"
            "c.execute('DROP TRIGGER audit_no_update');"
            "c.execute(\"UPDATE core_auditentry SET actor='mallory' WHERE seq=3\"); c.commit()",
            str(database),
        ],
        check=True,
    )

    result = run(["audit", "verify"], tmp_path)

    assert result.returncode == 1
    assert "BROKEN at seq 3" in result.stdout


def test_demo_prints_the_demo_users_and_is_rerunnable(tmp_path: Path) -> None:
    first = run(["demo"], tmp_path)
    second = run(["demo"], tmp_path)

    assert first.returncode == 0, first.stderr
    for username in ("admin", "manager", "driver1", "cashier1"):
        assert f"user {username}" in first.stdout
    assert "admin-demo-pass" in first.stdout
    assert second.returncode == 0
    assert "exists" in second.stdout


def test_serve_refuses_debug_on_a_public_address(tmp_path: Path) -> None:
    result = run(
        ["serve", "--host", "0.0.0.0", "--port", "8999"], tmp_path, extra_env={"QM_DEBUG": "1"}
    )

    assert result.returncode == 2
    assert "DEBUG" in result.stdout


def test_purge_keys_reports_what_it_forgot(tmp_path: Path) -> None:
    run(["migrate"], tmp_path)

    result = run(["purge-keys"], tmp_path)

    assert result.returncode == 0, result.stderr
    assert "forgot 0 HTTP idempotency keys" in result.stdout


def test_serve_refuses_several_workers_without_a_shared_cache(tmp_path: Path) -> None:
    result = run(["serve", "--workers", "2", "--port", "8998"], tmp_path)

    assert result.returncode == 2
    assert "--workers 2" in result.stdout
    assert "QM_CACHE_URL" in result.stdout
    assert "QM_CHANNEL_LAYER_URL" in result.stdout
    assert "serving" not in result.stdout


def test_serve_refuses_several_workers_whose_sockets_hear_only_their_own_commits(
    tmp_path: Path,
) -> None:
    # Limits shared, fan-out kept in-process on purpose: still refused, naming only the fan-out.
    # (Nothing connects to Redis before the refusal, so no server is needed.)
    shared_limits = {"QM_CACHE_URL": "redis://127.0.0.1:1/0", "QM_CHANNEL_LAYER_URL": "memory://"}
    result = run(["serve", "--workers", "2", "--port", "8998"], tmp_path, extra_env=shared_limits)

    assert result.returncode == 2
    assert "WebSocket fan-out" in result.stdout
    assert "rate limits" not in result.stdout
    assert "serving" not in result.stdout


def test_an_app_of_a_failover_cluster_is_one_of_several_processes(tmp_path: Path) -> None:
    monitor = {"QM_CLUSTER_MONITOR_URL": "postgresql://autoctl_node@127.0.0.1:1/pg_auto_failover"}
    result = run(["serve", "--port", "8998"], tmp_path, extra_env=monitor)

    assert result.returncode == 2
    assert "failover cluster" in result.stdout
    assert "QM_CACHE_URL" in result.stdout
    assert "serving" not in result.stdout
