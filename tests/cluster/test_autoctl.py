"""`quartermaster cluster init-monitor|init-node`: the pg_autoctl commands with the LAN defaults
(run for real, in --loopback form, by tests/ha), their --help and --dry-run."""

from __future__ import annotations

from pathlib import Path

from quartermaster.cluster import autoctl
from tests.test_cli import run

MONITOR = "postgresql://autoctl_node@10.0.0.9:5431/pg_auto_failover?sslmode=require"


def test_a_node_on_the_lan_replicates_synchronously_and_asks_for_scram_over_tls() -> None:
    command = autoctl.init_node_args(
        pgdata=Path("/srv/qm/node"), pgctl=Path("/usr/lib/postgresql/15/bin/pg_ctl"),
        monitor=MONITOR, name="till-pc",
    )  # fmt: skip

    assert command[:3] == ["pg_autoctl", "create", "postgres"]
    pairs = dict(zip(command[3::2], command[4::2], strict=False))
    assert pairs["--pgport"] == "5432"
    assert pairs["--replication-quorum"] == "true"
    assert pairs["--auth"] == "scram-sha-256"
    assert pairs["--dbname"] == "quartermaster"
    assert "--ssl-self-signed" in command and "--pg-hba-lan" in command
    assert "trust" not in command and "--no-ssl" not in command
    assert command[-1] == "--run"


def test_loopback_is_trust_without_tls_on_127_0_0_1_only() -> None:
    security = autoctl.Security(loopback=True)
    command = autoctl.init_monitor_args(
        pgdata=Path("/tmp/m"), pgctl=Path("pg_ctl"), hostname="127.0.0.1", security=security
    )

    assert command[command.index("--auth") :][:3] == ["--auth", "trust", "--no-ssl"]
    assert autoctl.monitor_url("127.0.0.1", 6000, security=security).endswith("sslmode=disable")
    assert autoctl.monitor_url("mon", password="p@ss/w").startswith(
        "postgresql://autoctl_node:p%40ss%2Fw@mon:5431/"
    )


def test_app_processes_list_every_node_and_want_the_primary() -> None:
    assert autoctl.app_database_url(["pc1:5432", "pc2:5432"], user="postgres") == (
        "postgresql://postgres@pc1:5432,pc2:5432/quartermaster?target_session_attrs=read-write"
    )


def test_help_explains_the_defaults_and_the_passwords(tmp_path: Path) -> None:
    cluster = run(["cluster", "--help"], tmp_path)
    node = run(["cluster", "init-node", "--help"], tmp_path)

    assert cluster.returncode == node.returncode == 0
    for word in ("init-monitor", "init-node", "status", "5431", "SCRAM", "127.0.0.1"):
        assert word in cluster.stdout
    assert "replication.password" in node.stdout
    assert "target_session_attrs=read-write" in node.stdout


def test_dry_run_prints_the_command_and_runs_nothing(tmp_path: Path) -> None:
    result = run(
        ["cluster", "init-node", "--dry-run", "--monitor", MONITOR, "--name", "pc2",
         "--pgdata", str(tmp_path / "node"), "--pgctl", "/usr/bin/pg_ctl"],
        tmp_path,
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("pg_autoctl create postgres --pgdata")
    assert "--name pc2" in result.stdout
    assert not (tmp_path / "node").exists()


def test_init_node_needs_the_monitor(tmp_path: Path) -> None:
    result = run(
        ["cluster", "init-node", "--dry-run", "--pgctl", "/usr/bin/pg_ctl"],
        tmp_path,
        extra_env={"QM_CLUSTER_MONITOR_URL": ""},
    )

    assert result.returncode == 2
    assert "--monitor" in result.stderr


def test_status_says_when_the_monitor_cannot_be_read(tmp_path: Path) -> None:
    result = run(
        ["cluster", "status", "--monitor", "postgresql://autoctl_node@127.0.0.1:1/x"], tmp_path
    )

    assert result.returncode == 2
    assert "cannot read the monitor" in result.stderr
