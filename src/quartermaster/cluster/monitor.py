"""Each server process watches the pg_auto_failover monitor and records every change of primary.

A thread per process LISTENs on the monitor's `state` channel and, on each notification (or
every `CLUSTER_POLL_MS` without one), reads the new rows of `pgautofailover.event`. The pure
`PrimaryTracker` names the changes of primary in them; each is recorded through the command
pipeline as the system actor under the key of its epoch, so with several processes the audit
chain holds it once, and each process then tells its sockets (`primary_changed`). A change is
retried until it is recorded: it happens exactly when the database is failing over.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import connection

from quartermaster.cluster.invariants import MonitorEvent, PrimaryChange, PrimaryTracker
from quartermaster.cluster.services import RecordPrimaryChange, idempotency_key
from quartermaster.core import events
from quartermaster.core.commands import execute
from quartermaster.core.idempotency import OP_SCOPE
from quartermaster.core.types import SYSTEM_ACTOR, Context

logger = logging.getLogger(__name__)

_EVENTS_SQL = """
SELECT eventid, eventtime, nodeid, nodename, nodehost, nodeport,
       reportedstate::text, goalstate::text, coalesce(description, '')
  FROM pgautofailover.event
 WHERE formationid = %s AND eventid > %s
 ORDER BY eventid
"""


def read_events(monitor: psycopg.Connection[Any], formation: str, after: int) -> list[MonitorEvent]:
    rows = monitor.execute(_EVENTS_SQL, [formation, after]).fetchall()
    return [
        MonitorEvent(
            event_id=int(row[0]),
            at=row[1].isoformat() if isinstance(row[1], datetime) else str(row[1]),
            node_id=int(row[2]),
            node_name=str(row[3]),
            host=str(row[4]),
            port=int(row[5]),
            reported_state=str(row[6]),
            goal_state=str(row[7]),
            description=str(row[8]),
        )
        for row in rows
    ]


class MonitorWatcher:
    """The watching thread of one process (`start`/`stop`); `epoch` for /health."""

    def __init__(self, monitor_url: str, *, formation: str = "default", poll_s: float = 1.0):
        self.monitor_url = monitor_url
        self.formation = formation
        self.poll_s = poll_s
        self.tracker = PrimaryTracker()
        self.unrecorded: list[PrimaryChange] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def epoch(self) -> int | None:
        return self.tracker.epoch

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="qm-cluster-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.monitor_url, autocommit=True, connect_timeout=3) as mon:
                    mon.execute("LISTEN state")
                    failures = 0
                    while not self._stop.is_set():
                        self.step(mon)
                        # Wakes on the monitor's next state notification, or after poll_s.
                        for _ in mon.notifies(timeout=self.poll_s, stop_after=1):
                            pass
            except psycopg.Error as error:
                failures += 1
                logger.warning("cluster monitor unreachable (%s); retrying", error)
                self._stop.wait(min(10.0, self.poll_s * 2**failures))
            except Exception:
                failures += 1
                logger.exception("cluster monitor watcher failed; retrying")
                self._stop.wait(min(10.0, self.poll_s * 2**failures))

    def step(self, monitor: psycopg.Connection[Any]) -> None:
        """Read the monitor's new events, then record what is not recorded yet."""
        found = self.tracker.observe(
            read_events(monitor, self.formation, self.tracker.last_event_id)
        )
        # The first primary of the formation is its forming, not a change of primary.
        self.unrecorded.extend(change for change in found if change.old_node is not None)
        self.record_pending()

    def record_pending(self) -> None:
        try:
            while self.unrecorded:
                if not record(self.unrecorded[0]):
                    return  # in flight in another process: its answer is read next time
                self.unrecorded.pop(0)
        except Exception as error:  # the database is failing over: try again next step
            logger.warning("primary change not recorded yet (%s); retrying", error)
        finally:
            connection.close()  # back to the pool between steps


def record(change: PrimaryChange) -> bool:
    """Record `change` (or find it recorded) and tell this process's sockets. False: another
    process holds its key right now."""
    response = execute(
        RecordPrimaryChange(
            epoch=change.epoch,
            at=datetime.fromisoformat(change.at),
            old_node=change.old_node,
            new_node=change.new_node,
            reason=change.reason,
            description=change.description,
        ),
        Context(
            actor=SYSTEM_ACTOR,
            idempotency_key=idempotency_key(change.epoch),
            idempotency_scope=OP_SCOPE,
        ),
    )
    if response.status == 409:
        return False
    if response.status != 201:
        logger.error("primary change %s refused: %s", change.epoch, response.body)
        return True
    if not response.replayed:
        logger.warning(
            "primary changed: %s -> %s (%s, epoch %s)",
            change.old_node,
            change.new_node,
            change.reason,
            change.epoch,
        )
    events.send_cluster_event(
        "primary_changed",
        change.epoch,
        {
            "old_node": change.old_node,
            "new_node": change.new_node,
            "reason": change.reason,
            "at": change.at,
        },
    )
    return True


_watcher: MonitorWatcher | None = None


def start_watching() -> MonitorWatcher | None:
    """Start this process's watcher if a monitor is configured (QM_CLUSTER_MONITOR_URL)."""
    global _watcher
    if _watcher is None and settings.CLUSTER_MONITOR_URL:
        _watcher = MonitorWatcher(
            settings.CLUSTER_MONITOR_URL,
            formation=settings.CLUSTER_FORMATION,
            poll_s=settings.CLUSTER_POLL_MS / 1000,
        )
        _watcher.start()
    return _watcher


def current_epoch() -> int | None:
    """The epoch of the primary this process knows of; None without a monitor."""
    return _watcher.epoch if _watcher is not None else None
