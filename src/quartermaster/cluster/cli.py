"""`quartermaster cluster init-monitor|init-node|status`: a shop's failover cluster in three
commands (README "A shop with failover"). Thin: the two `init-` commands run `pg_autoctl` with
the LAN defaults of `cluster.autoctl` (printed first, so nothing is hidden; `--dry-run` only
prints); `status` reads the monitor. Django is not set up: these run before any database is.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from typing import Any

from quartermaster.cluster import autoctl

EPILOG_MONITOR = """\
Run it as the user PostgreSQL runs as (e.g. `sudo -u postgres quartermaster cluster init-monitor`),
on the smallest machine of the shop. It stays in the foreground as the monitor's service (run it
from systemd: `pg_autoctl show systemd --pgdata DIR`). Then, once, give the nodes' user a password:
  psql -p 5431 -d pg_auto_failover -c "ALTER USER autoctl_node PASSWORD '…'"
and write it into ~/.pgpass on each PC (`*:5431:pg_auto_failover:autoctl_node:…`).
"""

EPILOG_NODE = """\
Run it on each PC that holds a copy of the database, as the PostgreSQL user. The first node
becomes the primary, the next ones synchronous standbys (each write waits for them). It stays in
the foreground as the node's keeper. Give the replication user a password on every node:
  pg_autoctl config set --pgdata DIR replication.password '…'
and, on the primary, the apps' user (the LAN rules --pg-hba-lan adds ask for it):
  psql -p 5432 -d quartermaster -c "ALTER USER postgres PASSWORD '…'"
Then point the app process of every PC at all nodes:
  QM_DATABASE_URL=postgresql://postgres:…@pc1:5432,pc2:5432/quartermaster?target_session_attrs=read-write
  QM_CLUSTER_MONITOR_URL=<the monitor URL>   QM_CACHE_URL=redis://<monitor PC>:6379/0
"""


def add_cluster_parser(commands: Any) -> None:
    cluster = commands.add_parser(
        "cluster",
        help="a failover cluster on PostgreSQL with pg_auto_failover (monitor, nodes, status)",
        description="Thin wrappers over pg_autoctl with defaults for a shop's LAN: monitor on "
        f"port {autoctl.MONITOR_PORT}, nodes on {autoctl.NODE_PORT}, data under "
        "~/quartermaster-cluster/, synchronous replication on, trust only on 127.0.0.1 and "
        "SCRAM passwords with TLS (self-signed) on the LAN.",
    )
    sub = cluster.add_subparsers(dest="cluster_command", required=True, metavar="COMMAND")

    monitor = sub.add_parser(
        "init-monitor",
        help="create and run the monitor (the machine that decides who is primary)",
        epilog=EPILOG_MONITOR,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(monitor, folder="monitor", port=autoctl.MONITOR_PORT)
    monitor.set_defaults(func=cmd_init_monitor)

    node = sub.add_parser(
        "init-node",
        help="create and run a data node (primary or synchronous standby) on this PC",
        epilog=EPILOG_NODE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(node, folder="node", port=autoctl.NODE_PORT)
    _monitor_option(node)
    node.add_argument(
        "--name", default=socket.gethostname(), help="this node's name (default: the PC's name)"
    )
    node.add_argument(
        "--database", default=autoctl.DATABASE, help=f"database name (default {autoctl.DATABASE})"
    )
    node.add_argument(
        "--candidate-priority",
        type=int,
        default=autoctl.CANDIDATE_PRIORITY,
        help="0 never promotes this node; higher is preferred (default "
        f"{autoctl.CANDIDATE_PRIORITY})",
    )
    node.set_defaults(func=cmd_init_node)

    status = sub.add_parser(
        "status",
        help="each node's role and state, and how many machines an acknowledged write is on",
    )
    _monitor_option(status)
    status.add_argument("--formation", default=autoctl.FORMATION)
    status.add_argument("--json", action="store_true", help="machine-readable")
    status.set_defaults(func=cmd_status)


def _common(parser: argparse.ArgumentParser, *, folder: str, port: int) -> None:
    parser.add_argument(
        "--pgdata",
        type=Path,
        default=autoctl.default_home() / folder,
        help=f"data folder (default ~/quartermaster-cluster/{folder})",
    )
    parser.add_argument("--port", type=int, default=port, help=f"PostgreSQL port (default {port})")
    parser.add_argument(
        "--hostname", help="the address the other machines reach this one at (default: detected)"
    )
    parser.add_argument("--pgctl", type=Path, help="pg_ctl to use (default: the newest with the "
                        "pg_auto_failover extension)")  # fmt: skip
    parser.add_argument(
        "--loopback",
        action="store_true",
        help="a trial on one machine: 127.0.0.1 only, trust, no TLS (never on a LAN)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the pg_autoctl command only")
    parser.add_argument(
        "--no-run", dest="run", action="store_false", help="create, but do not stay running"
    )


def _monitor_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--monitor",
        default=os.environ.get("QM_CLUSTER_MONITOR_URL", ""),
        help="the monitor's URL (default QM_CLUSTER_MONITOR_URL), e.g. "
        + autoctl.monitor_url("monitor-pc"),
    )


def _security(args: argparse.Namespace) -> autoctl.Security:
    return autoctl.Security(loopback=args.loopback)


def cmd_init_monitor(args: argparse.Namespace) -> int:
    pgctl = args.pgctl or autoctl.find_pgctl()
    if pgctl is None:
        return _fail(
            "no PostgreSQL with pg_auto_failover found: scripts/ensure-pg-auto-failover.sh"
        )
    security = _security(args)
    hostname = args.hostname or ("127.0.0.1" if args.loopback else None)
    command = autoctl.init_monitor_args(pgdata=args.pgdata, pgctl=pgctl, port=args.port,
                                        hostname=hostname, security=security, run=args.run)  # fmt: skip
    url = autoctl.monitor_url(hostname or "<this PC>", args.port, security=security)
    _say(f"# the nodes and app processes reach this monitor at: {url}")
    return _run(command, args.dry_run)


def cmd_init_node(args: argparse.Namespace) -> int:
    if not args.monitor:
        return _fail("--monitor URL (or QM_CLUSTER_MONITOR_URL) is needed")
    pgctl = args.pgctl or autoctl.find_pgctl()
    if pgctl is None:
        return _fail(
            "no PostgreSQL with pg_auto_failover found: scripts/ensure-pg-auto-failover.sh"
        )
    hostname = args.hostname or ("127.0.0.1" if args.loopback else None)
    command = autoctl.init_node_args(
        pgdata=args.pgdata, pgctl=pgctl, monitor=args.monitor, name=args.name, port=args.port,
        hostname=hostname, database=args.database, security=_security(args),
        candidate_priority=args.candidate_priority, run=args.run,
    )  # fmt: skip
    return _run(command, args.dry_run)


def cmd_status(args: argparse.Namespace) -> int:
    import psycopg

    from quartermaster.cluster.status import read_status, status_text

    if not args.monitor:
        return _fail("--monitor URL (or QM_CLUSTER_MONITOR_URL) is needed")
    try:
        status = read_status(args.monitor, args.formation)
    except (psycopg.Error, LookupError) as error:
        return _fail(f"cannot read the monitor: {error}".strip())
    _say(json.dumps(status, indent=2) if args.json else status_text(status))
    return 0 if status["primary"] else 1


def _run(command: list[str], dry_run: bool) -> int:
    _say(shlex.join(command))
    if dry_run:
        return 0
    if os.geteuid() == 0:
        return _fail(
            "PostgreSQL refuses to run as root: run this as its user, e.g. sudo -u postgres"
        )
    # The service runs in this process's place (Ctrl+C stops it); the arguments are ours.
    os.execvp(command[0], command)  # noqa: S606


def _say(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _fail(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2
