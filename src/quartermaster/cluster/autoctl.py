"""The `pg_autoctl` commands of `quartermaster cluster init-monitor|init-node`: pg_auto_failover
with the defaults a shop's LAN needs, built here (pure) and run by the CLI.

What the defaults choose, and why:

- Ports: the monitor on 5431, each data node on 5432 (PostgreSQL's own), so one PC can hold
  the monitor and a node if it must.
- Data folders under `~/quartermaster-cluster/` (`monitor`, `node`): one place to back up.
- Synchronous replication on: every node joins the write quorum (`--replication-quorum true`)
  and may be promoted (`--candidate-priority 50`); with one standby the primary waits for it on
  every commit while it answers (see `cluster status` for the trade-off when it stops).
- Authentication: PostgreSQL's own rules let the PC itself in (`trust` on 127.0.0.1 and the local
  socket, as initdb writes them); every rule pg_autoctl adds for the other machines asks for a
  SCRAM password (`--auth scram-sha-256`), and `--pg-hba-lan` lets the app processes of the LAN
  reach the shop's database. Traffic is encrypted with self-signed certificates (`--ssl-self-
  signed`): no man-in-the-middle protection, but no password or sale in clear on the shop's
  Wi-Fi. Passwords travel in the monitor URL or `~/.pgpass`, never in these arguments.
- `--pgctl`: the newest PostgreSQL installed that has the pg_auto_failover extension (another
  `pg_ctl` may be first on PATH).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

MONITOR_PORT = 5431
NODE_PORT = 5432
DATABASE = "quartermaster"
FORMATION = "default"
LAN_AUTH = "scram-sha-256"
CANDIDATE_PRIORITY = 50


def default_home() -> Path:
    return Path.home() / "quartermaster-cluster"


def find_pgctl(root: Path = Path("/usr/lib/postgresql")) -> Path | None:
    """The pg_ctl of the newest PostgreSQL installed that pg_auto_failover is built for."""
    found = []
    for bindir in root.glob("*/bin"):
        major = bindir.parent.name
        control = Path("/usr/share/postgresql") / major / "extension" / "pgautofailover.control"
        if major.isdigit() and (bindir / "pg_ctl").exists() and control.exists():
            found.append((int(major), bindir / "pg_ctl"))
    return max(found)[1] if found else None


@dataclass(frozen=True)
class Security:
    """How the machines of the LAN reach each other. `loopback` (tests, a trial on one PC):
    trust and no TLS, reachable from 127.0.0.1 only."""

    auth: str = LAN_AUTH
    ssl: bool = True
    loopback: bool = False

    def args(self) -> list[str]:
        if self.loopback:
            return ["--auth", "trust", "--no-ssl"]
        return ["--auth", self.auth, "--ssl-self-signed" if self.ssl else "--no-ssl"]

    @property
    def sslmode(self) -> str:
        return "require" if self.ssl and not self.loopback else "disable"


def monitor_url(
    host: str, port: int = MONITOR_PORT, *, password: str = "", security: Security = Security()
) -> str:
    """The URL the nodes and app processes reach the monitor at (user `autoctl_node`)."""
    user = "autoctl_node" + (f":{quote(password, safe='')}" if password else "")
    return f"postgresql://{user}@{host}:{port}/pg_auto_failover?sslmode={security.sslmode}"


def init_monitor_args(
    *,
    pgdata: Path,
    pgctl: Path,
    port: int = MONITOR_PORT,
    hostname: str | None = None,
    security: Security = Security(),
    run: bool = True,
) -> list[str]:
    """`pg_autoctl create monitor …`: the monitor's PostgreSQL and its service."""
    args = ["pg_autoctl", "create", "monitor", "--pgdata", str(pgdata), "--pgport", str(port),
            "--pgctl", str(pgctl), *security.args()]  # fmt: skip
    if hostname:
        args += ["--hostname", hostname]
    return args + (["--run"] if run else [])


def init_node_args(
    *,
    pgdata: Path,
    pgctl: Path,
    monitor: str,
    name: str,
    port: int = NODE_PORT,
    hostname: str | None = None,
    database: str = DATABASE,
    formation: str = FORMATION,
    security: Security = Security(),
    candidate_priority: int = CANDIDATE_PRIORITY,
    run: bool = True,
) -> list[str]:
    """`pg_autoctl create postgres …`: a data node (the first one becomes the primary, the next
    ones synchronous standbys) and its keeper service."""
    args = ["pg_autoctl", "create", "postgres", "--pgdata", str(pgdata), "--pgport", str(port),
            "--pgctl", str(pgctl), "--monitor", monitor, "--name", name, "--dbname", database,
            "--formation", formation, "--replication-quorum", "true",
            "--candidate-priority", str(candidate_priority), *security.args()]  # fmt: skip
    if security.loopback:
        args += ["--listen", "127.0.0.1"]
    else:
        args += ["--pg-hba-lan"]
    if hostname:
        args += ["--hostname", hostname]
    return args + (["--run"] if run else [])


def app_database_url(nodes: list[str], *, database: str = DATABASE, user: str = "") -> str:
    """QM_DATABASE_URL for the app processes: every node, the primary chosen by libpq."""
    who = f"{user}@" if user else ""
    return f"postgresql://{who}{','.join(nodes)}/{database}?target_session_attrs=read-write"
