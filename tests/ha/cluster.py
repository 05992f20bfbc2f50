"""A real pg_auto_failover group on 127.0.0.1 for the failover tests: a monitor, a primary and a
synchronous standby, run by `pg_autoctl` (scripts/ensure-pg-auto-failover.sh installs it).

PostgreSQL refuses to run as root, so as root the processes run as the `postgres` user; their
HOME, XDG folders and socket folder point into a scratch folder that user owns. Failure
detection is tuned down from the defaults (~50 s without writes) to ~10 s: the monitor checks
health every second and promotes after 3 s unhealthy + 6 s demote wait; keepers assume a
partition after 4 s. Every wait polls with a deadline.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg

from quartermaster.cluster import autoctl
from tests.acceptance.test_served_api import free_port

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "500",
    "pgautofailover.node_considered_unhealthy_timeout": "3000",
    "pgautofailover.primary_demote_timeout": "6000",
}
NETWORK_PARTITION_TIMEOUT_S = "4"
DATABASE = "qm"
LOOPBACK = autoctl.Security(loopback=True)


def wait_for(
    what: str, probe: Callable[[], T | None], *, deadline_s: float, every_s: float = 0.2
) -> T:
    """Poll `probe` until it returns something other than None/False, or fail after deadline."""
    deadline = time.monotonic() + deadline_s
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            found = probe()
            if found is not None and found is not False:
                return found
        except Exception as error:  # not up yet: keep polling
            last_error = error
        time.sleep(every_s)  # the poll interval, not a wait for an outcome
    raise TimeoutError(f"{what}: not within {deadline_s} s (last error: {last_error})")


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Cluster:
    scratch: Path
    bindir: Path
    monitor_port: int
    nodes: list[Node]
    user: str | None
    monitor_process: subprocess.Popen[bytes] | None = None
    log_files: list[Path] = field(default_factory=list)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def monitor_url(self) -> str:
        return autoctl.monitor_url("127.0.0.1", self.monitor_port, security=LOOPBACK)

    @property
    def database_url(self) -> str:
        hosts = ",".join(node.address for node in self.nodes)
        return f"postgresql://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"

    def node_url(self, node: Node, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{node.port}/{database}?sslmode=disable"

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    # --- processes ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        home = self.scratch / "home"
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_RUNTIME_DIR": str(home / "run"),
            "PG_REGRESS_SOCK_DIR": str(self.scratch / "sock"),
            "PGHOST": str(self.scratch / "sock"),
            "LANG": "C.UTF-8",
        }

    def autoctl(self, args: list[str], log_name: str) -> subprocess.Popen[bytes]:
        log = self.scratch / f"{log_name}.log"
        self.log_files.append(log)
        with open(log, "ab") as handle:
            return subprocess.Popen(
                ["pg_autoctl", *args],
                cwd=self.scratch,
                env=self.env(),
                stdout=handle,
                stderr=subprocess.STDOUT,
                user=self.user,
                start_new_session=True,  # its own process group: killed as one
            )

    def autoctl_run(self, args: list[str]) -> str:
        done = subprocess.run(
            ["pg_autoctl", *args],
            cwd=self.scratch,
            env=self.env(),
            capture_output=True,
            text=True,
            user=self.user,
            timeout=60,
            check=True,
        )
        return done.stdout

    def start_monitor(self) -> None:
        # Exactly what `quartermaster cluster init-monitor --loopback` runs.
        command = autoctl.init_monitor_args(
            pgdata=self.scratch / "monitor", pgctl=self.bindir / "pg_ctl", port=self.monitor_port,
            hostname="127.0.0.1", security=LOOPBACK,
        )  # fmt: skip
        self.monitor_process = self.autoctl(command[1:], "monitor")
        wait_for("the monitor", self._monitor_answers, deadline_s=60)
        with psycopg.connect(self._monitor_superuser_url(), autocommit=True) as connection:
            for name, value in MONITOR_SETTINGS.items():
                connection.execute(f"ALTER SYSTEM SET {name} = '{value}'")
            connection.execute("SELECT pg_reload_conf()")

    def _monitor_superuser_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.monitor_port}/pg_auto_failover"

    def _monitor_answers(self) -> bool:
        with psycopg.connect(self.monitor_url, connect_timeout=2) as connection:
            connection.execute("SELECT count(*) FROM pgautofailover.formation").fetchone()
        return True

    def start_node(self, node: Node) -> None:
        # Exactly what `quartermaster cluster init-node --loopback` runs.
        command = autoctl.init_node_args(
            pgdata=node.pgdata, pgctl=self.bindir / "pg_ctl", monitor=self.monitor_url,
            name=node.name, port=node.port, hostname="127.0.0.1", database=DATABASE,
            security=LOOPBACK,
        )  # fmt: skip
        node.process = self.autoctl(command[1:], node.name)

    def configure_keeper(self, node: Node) -> None:
        self.autoctl_run(
            ["config", "set", "--pgdata", str(node.pgdata),
             "timeout.network_partition_timeout", NETWORK_PARTITION_TIMEOUT_S]
        )  # fmt: skip

    # --- state -------------------------------------------------------------------------------

    def states(self) -> dict[str, tuple[str, str]]:
        """node name → (reported state, goal state), from the monitor."""
        with psycopg.connect(self.monitor_url, connect_timeout=2) as connection:
            rows = connection.execute(
                "SELECT nodename, reportedstate::text, goalstate::text FROM pgautofailover.node"
            ).fetchall()
        return {str(name): (str(reported), str(goal)) for name, reported, goal in rows}

    def is_writable_primary(self, node: Node) -> bool:
        reported, goal = self.states().get(node.name, ("", ""))
        return reported == goal and reported in {"single", "wait_primary", "primary"}

    def writable_primary(self, *, deadline_s: float) -> Node:
        """The one node that accepts writes, once there is exactly one (a transition passes)."""

        def one() -> Node | None:
            found = [node for node in self.nodes if self.is_writable_primary(node)]
            return found[0] if len(found) == 1 else None

        return wait_for("one writable primary", one, deadline_s=deadline_s, every_s=0.5)

    def settled(self, *, deadline_s: float) -> tuple[Node, Node]:
        """(primary, synchronous standby) once both have reached their goal states."""

        def pair() -> tuple[Node, Node] | None:
            states = self.states()
            primaries = [n for n in self.nodes if states.get(n.name) == ("primary", "primary")]
            standbys = [n for n in self.nodes if states.get(n.name) == ("secondary", "secondary")]
            if len(primaries) == 1 and len(standbys) == 1:
                return primaries[0], standbys[0]
            return None

        return wait_for("a primary and its synchronous standby", pair, deadline_s=deadline_s,
                        every_s=0.5)  # fmt: skip

    def kill_node(self, node: Node) -> None:
        """kill -9 of the node's keeper (its process group) and its postmaster: a PC dying."""
        postmaster = _postmaster_pid(node.pgdata)
        if node.process is not None and node.process.poll() is None:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait()
        if postmaster is not None:
            _kill_quietly(postmaster, signal.SIGKILL)

    def restart_node(self, node: Node) -> None:
        """The PC is back: its keeper runs again on the data it had (`pg_autoctl run`)."""
        node.process = self.autoctl(["run", "--pgdata", str(node.pgdata)], node.name)

    def switchover(self, node: Node) -> None:
        """A planned change of primary, asked on `node`, answered once it is done."""
        self.autoctl_run(["perform", "switchover", "--pgdata", str(node.pgdata)])

    def keeper_pids(self, node: Node) -> list[int]:
        """The node's pg_autoctl processes (the keeper and its services), not PostgreSQL's."""
        if node.process is None or node.process.poll() is not None:
            return []
        postgres = set(self.postgres_pids(node))
        return [pid for pid in _tree(node.process.pid) if pid not in postgres]

    def postgres_pids(self, node: Node) -> list[int]:
        postmaster = _postmaster_pid(node.pgdata)
        return _tree(postmaster) if postmaster is not None else []

    def stop(self) -> None:
        processes = [node.process for node in self.nodes] + [self.monitor_process]
        for node in self.nodes:  # a test may have paused some: paused, they ignore SIGQUIT
            signal_all(self.keeper_pids(node) + self.postgres_pids(node), signal.SIGCONT)
        for process in processes:
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGCONT)
                os.killpg(process.pid, signal.SIGQUIT)  # immediate: scratch data
        for process in processes:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for pgdata in [node.pgdata for node in self.nodes] + [self.scratch / "monitor"]:
            postmaster = _postmaster_pid(pgdata)
            if postmaster is not None:
                _kill_quietly(postmaster, signal.SIGQUIT)

    def logs(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}" for log in self.log_files
        )


def _postmaster_pid(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_quietly(pid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)


def signal_all(pids: list[int], sig: signal.Signals) -> None:
    for pid in pids:
        _kill_quietly(pid, sig)


def _tree(root: int) -> list[int]:
    """`root` and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The parent id follows the command name, which is in parentheses and may hold spaces.
            stat = (entry / "stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def ensure_pg_auto_failover() -> Path:
    """The PostgreSQL bin folder pg_auto_failover runs with, installing it if needed."""
    script = ROOT / "scripts" / "ensure-pg-auto-failover.sh"
    done = subprocess.run([str(script)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed:\n{done.stderr}")
    return Path(done.stdout.strip())


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """Monitor + primary `node1` + synchronous standby `node2`, up and replicating."""
    bindir = ensure_pg_auto_failover()
    user = "postgres" if os.geteuid() == 0 else None
    scratch = Path(tempfile.mkdtemp(prefix="qm-ha-", dir="/var/tmp"))
    for folder in ("sock", "home"):
        (scratch / folder).mkdir()
    if user is not None:
        owner = pwd.getpwnam(user)
        for path in (scratch, scratch / "sock", scratch / "home"):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    ports = _free_ports(3)
    cluster = Cluster(
        scratch=scratch,
        bindir=bindir,
        monitor_port=ports[0],
        nodes=[Node(f"node{i}", port, scratch / f"node{i}") for i, port in enumerate(ports[1:], 1)],
        user=user,
    )
    try:
        _form(cluster)
        yield cluster
    except BaseException:
        print(cluster.logs())
        raise
    finally:
        cluster.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _form(cluster: Cluster) -> None:
    cluster.start_monitor()
    first, second = cluster.nodes
    cluster.start_node(first)
    wait_for(f"{first.name} alone", lambda: cluster.is_writable_primary(first), deadline_s=60)
    cluster.start_node(second)

    def replicating() -> bool:
        # The standby's base backup waits for a checkpoint, spread over minutes by default:
        # asking for an immediate one finishes it at once.
        with psycopg.connect(cluster.node_url(first, "postgres"), autocommit=True) as connection:
            connection.execute("CHECKPOINT")
        states = cluster.states()
        return states.get(first.name) == ("primary", "primary") and states.get(second.name) == (
            "secondary",
            "secondary",
        )

    wait_for("a synchronous standby", replicating, deadline_s=90, every_s=0.5)
    for node in cluster.nodes:
        cluster.configure_keeper(node)


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def synchronous_standby_names(cluster: Cluster, node: Node) -> Any:
    with psycopg.connect(cluster.node_url(node, "postgres")) as connection:
        row = connection.execute("SHOW synchronous_standby_names").fetchone()
    return row[0] if row else None
