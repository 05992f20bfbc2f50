"""`quartermaster cluster status`: the monitor's view of the formation, read straight from its
tables (no `pg_autoctl` needed on the PC that asks), with what it means for an acknowledged
write (`invariants.durability`)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import psycopg

from quartermaster.cluster.invariants import NodeState, durability

_NODES_SQL = """
SELECT nodename, nodehost, nodeport, reportedstate::text, goalstate::text, replicationquorum,
       candidatepriority, reportedlsn::text, health, reportedtli
  FROM pgautofailover.node
 WHERE formationid = %s
 ORDER BY nodeid
"""


def read_status(monitor_url: str, formation: str = "default") -> dict[str, Any]:
    """The formation's nodes, its number-sync-standbys and the durability they give."""
    with psycopg.connect(monitor_url, connect_timeout=5) as monitor:
        found = monitor.execute(
            "SELECT number_sync_standbys FROM pgautofailover.formation WHERE formationid = %s",
            [formation],
        ).fetchone()
        if found is None:
            raise LookupError(f"the monitor has no formation {formation!r}")
        rows = monitor.execute(_NODES_SQL, [formation]).fetchall()
    nodes = [
        NodeState(
            name=str(row[0]),
            host=str(row[1]),
            port=int(row[2]),
            reported_state=str(row[3]),
            goal_state=str(row[4]),
            replication_quorum=bool(row[5]),
            candidate_priority=int(row[6]),
            lsn=str(row[7]),
            healthy=int(row[8]) == 1,
            timeline=int(row[9]),
        )
        for row in rows
    ]
    primary = next((node.name for node in nodes if node.is_primary), None)
    return {
        "formation": formation,
        "number_sync_standbys": int(found[0]),
        "primary": primary,
        "nodes": [{**asdict(node), "role": _role(node)} for node in nodes],
        "durability": durability(nodes, int(found[0])),
    }


def _role(node: NodeState) -> str:
    if node.is_primary:
        return "primary"
    if node.reported_state == node.goal_state == "secondary":
        return "standby"
    if node.reported_state != node.goal_state:
        # On its way somewhere: an old primary told to step down is not a primary any more.
        return f"-> {node.goal_state}"
    return node.reported_state  # catchingup, demoted, …


def status_text(status: dict[str, Any]) -> str:
    lines = [
        f"formation {status['formation']}: number-sync-standbys {status['number_sync_standbys']}"
    ]
    lines.append(
        f"{'node':<12} {'address':<22} {'role':<18} {'state (goal)':<30} {'lsn':<12} health"
    )
    for node in status["nodes"]:
        state = node["reported_state"] + (
            f" ({node['goal_state']})" if node["goal_state"] != node["reported_state"] else ""
        )
        address = f"{node['host']}:{node['port']}"
        lines.append(
            f"{node['name']:<12} {address:<22} {node['role']:<18} {state:<30} "
            f"{node['lsn']:<12} {'ok' if node['healthy'] else 'DOWN'}"
        )
    lines.append(f"writes: {status['durability']}")
    return "\n".join(lines)
