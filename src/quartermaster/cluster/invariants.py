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
