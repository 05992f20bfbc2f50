"""Reading pg_auto_failover's event log: which events make a new primary. Pure, no database.

The monitor appends an event for every state a node reports and every goal it assigns
(`pgautofailover.event`). A node *is* the primary once it reports the writable state the monitor
assigned it: `single` (alone), `wait_primary` (its standby is gone or catching up) or `primary`.
A change of primary is the first such event of another node than the current primary; its event
id is the change's epoch. Every process reading the same log finds the same epochs, which is
what lets several processes record each change exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WRITABLE_STATES = frozenset({"single", "wait_primary", "primary"})


@dataclass(frozen=True)
class MonitorEvent:
    """One row of `pgautofailover.event`."""

    event_id: int
    at: str
    node_id: int
    node_name: str
    host: str
    port: int
    reported_state: str
    goal_state: str
    description: str

    @property
    def node(self) -> str:
        return f"{self.node_name} ({self.host}:{self.port})"

    @property
    def makes_primary(self) -> bool:
        return self.reported_state == self.goal_state and self.reported_state in WRITABLE_STATES


@dataclass(frozen=True)
class PrimaryChange:
    """A new primary, as the monitor's log tells it. `old_node` is None for the first one."""

    epoch: int
    at: str
    old_node: str | None
    new_node: str
    reason: str
    description: str


@dataclass
class PrimaryTracker:
    """Walks the event log in order and names each change of primary. Feed it events once
    each, in event id order (`observe`); `last_event_id` is where to read on from."""

    last_event_id: int = 0
    primary_node_id: int | None = None
    primary: PrimaryChange | None = None
    # Whether a person asked the old primary to step down (a switchover) since it became one.
    _planned: bool = False

    def observe(self, events: Iterable[MonitorEvent]) -> list[PrimaryChange]:
        changes: list[PrimaryChange] = []
        for event in events:
            if event.event_id <= self.last_event_id:
                continue
            self.last_event_id = event.event_id
            if event.node_id == self.primary_node_id:
                self._note_about_primary(event)
                continue
            if not event.makes_primary:
                continue
            change = PrimaryChange(
                epoch=event.event_id,
                at=event.at,
                old_node=self.primary.new_node if self.primary else None,
                new_node=event.node,
                reason=self._reason(),
                description=event.description,
            )
            self.primary, self.primary_node_id = change, event.node_id
            self._planned = False
            changes.append(change)
        return changes

    def _note_about_primary(self, event: MonitorEvent) -> None:
        text = event.description.lower()
        if "user-initiated" in text or "perform" in text or "switchover" in text:
            self._planned = True

    def _reason(self) -> str:
        if self.primary is None:
            return "formed"
        if self._planned:
            return "switchover"
        return "failover"

    @property
    def epoch(self) -> int | None:
        return self.primary.epoch if self.primary else None


@dataclass(frozen=True)
class NodeState:
    """One data node as the monitor sees it now (`pgautofailover.node`)."""

    name: str
    host: str
    port: int
    reported_state: str
    goal_state: str
    replication_quorum: bool
    candidate_priority: int
    lsn: str
    healthy: bool
    timeline: int

    @property
    def is_primary(self) -> bool:
        return self.reported_state == self.goal_state and self.reported_state in WRITABLE_STATES

    @property
    def is_sync_standby(self) -> bool:
        return self.reported_state == "secondary" and self.replication_quorum and self.healthy


def durability(nodes: list[NodeState], number_sync_standbys: int) -> str:
    """Where an acknowledged write is now, in words for the person running the shop.

    pg_auto_failover chooses availability with one standby: when it stops answering, the monitor
    moves the primary to `wait_primary` and clears `synchronous_standby_names`, so writes go on
    and rest on one machine until the standby catches up. With two standbys and
    `number-sync-standbys 1`, one of them may stop and every write still waits for the other."""
    primaries = [node for node in nodes if node.is_primary]
    if not primaries:
        return "no primary: writes wait (a failover is under way, or no node is healthy)"
    [primary, *_] = primaries
    standbys = [node for node in nodes if node.is_sync_standby]
    if primary.reported_state in {"single", "wait_primary"} or not standbys:
        return (
            f"ONE COPY: the primary {primary.name} accepts writes alone; an acknowledged write "
            "is on this one machine until a standby catches up"
        )
    if len(standbys) == 1 and number_sync_standbys == 0:
        return (
            f"two copies: each write waits for the standby {standbys[0].name}; if it stops "
            "answering, the primary goes wait_primary and accepts writes alone (availability "
            "first: one standby; two standbys with number-sync-standbys 1 never do)"
        )
    if number_sync_standbys >= 1:
        return (
            f"{number_sync_standbys + 1}+ copies: each write waits for {number_sync_standbys} of "
            f"{len(standbys)} standbys; {len(standbys) - number_sync_standbys} may stop without "
            "writes resting on one machine (if too many stop, writes wait instead)"
        )
    return (
        f"two copies: each write waits for any one of {len(standbys)} standbys; if all stop, "
        "the primary accepts writes alone (number-sync-standbys 0)"
    )
