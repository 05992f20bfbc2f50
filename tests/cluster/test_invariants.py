"""Reading pg_auto_failover's event log (pure): which events make a new primary, and why."""

from __future__ import annotations

from quartermaster.cluster.invariants import MonitorEvent, PrimaryTracker


def event(
    event_id: int, node: int, reported: str, goal: str, description: str = ""
) -> MonitorEvent:
    return MonitorEvent(
        event_id=event_id,
        at=f"2026-12-02T06:00:{event_id:02d}+00:00",
        node_id=node,
        node_name=f"node{node}",
        host="127.0.0.1",
        port=5430 + node,
        reported_state=reported,
        goal_state=goal,
        description=description,
    )


# The log of a trial run: forming, then a crash of node 1 (trimmed of health-check noise).
FORMING = [
    event(1, 1, "init", "single"),
    event(2, 1, "single", "single"),
    event(3, 2, "wait_standby", "wait_standby"),
    event(4, 1, "single", "wait_primary"),
    event(5, 1, "wait_primary", "wait_primary"),
    event(6, 2, "catchingup", "catchingup"),
    event(7, 1, "primary", "primary"),
    event(8, 2, "secondary", "secondary"),
]
CRASH = [
    event(9, 1, "primary", "demote_timeout", "node 1 is marked as unhealthy by the monitor"),
    event(10, 2, "prepare_promotion", "stop_replication"),
    event(11, 2, "stop_replication", "stop_replication"),
    event(12, 2, "wait_primary", "wait_primary"),
    event(13, 2, "primary", "primary"),
]


def test_forming_names_the_first_primary_without_an_old_one() -> None:
    tracker = PrimaryTracker()

    changes = tracker.observe(FORMING)

    assert [(c.epoch, c.old_node, c.reason) for c in changes] == [(2, None, "formed")]
    assert tracker.epoch == 2
    assert tracker.last_event_id == 8


def test_a_crash_is_one_change_whose_epoch_is_the_event_that_made_the_new_primary() -> None:
    tracker = PrimaryTracker()
    tracker.observe(FORMING)

    changes = tracker.observe(CRASH)

    assert len(changes) == 1
    [change] = changes
    assert change.epoch == 12
    assert change.old_node == "node1 (127.0.0.1:5431)"
    assert change.new_node == "node2 (127.0.0.1:5432)"
    assert change.reason == "failover"
    assert tracker.epoch == 12


def test_events_read_twice_or_in_pieces_give_the_same_changes() -> None:
    whole = PrimaryTracker().observe(FORMING + CRASH)
    pieces = PrimaryTracker()
    found = []
    for index in range(0, len(FORMING + CRASH), 3):
        found += pieces.observe((FORMING + CRASH)[: index + 3])  # overlapping reads

    assert found == whole


def test_a_switchover_asked_for_by_a_person_says_so() -> None:
    tracker = PrimaryTracker()
    tracker.observe(FORMING)

    changes = tracker.observe(
        [
            event(
                9,
                1,
                "primary",
                "draining",
                "Setting goal state of node 1 to draining after a user-initiated failover.",
            ),
            event(10, 2, "prepare_promotion", "prepare_promotion"),
            event(11, 2, "wait_primary", "wait_primary"),
        ]
    )

    assert [(c.epoch, c.reason) for c in changes] == [(11, "switchover")]


def test_a_node_on_its_way_to_primary_is_not_one_yet() -> None:
    tracker = PrimaryTracker()
    tracker.observe(FORMING)

    # Assigned wait_primary but not reporting it: it cannot take writes yet.
    assert tracker.observe([event(9, 2, "stop_replication", "wait_primary")]) == []
