"""How many machines an acknowledged write is on, from the monitor's node states (pure): the
words `quartermaster cluster status` prints, honest about pg_auto_failover's one-standby choice."""

from __future__ import annotations

import pytest

from quartermaster.cluster.invariants import NodeState, durability


def node(name: str, state: str, goal: str | None = None, *, healthy: bool = True) -> NodeState:
    return NodeState(
        name=name, host="10.0.0.1", port=5432, reported_state=state, goal_state=goal or state,
        replication_quorum=True, candidate_priority=50, lsn="0/1", healthy=healthy, timeline=1,
    )  # fmt: skip


def test_one_synchronous_standby_gives_two_copies_and_says_what_happens_when_it_stops() -> None:
    said = durability([node("pc1", "primary"), node("pc2", "secondary")], 0)

    assert said.startswith("two copies")
    assert "wait_primary and accepts writes alone" in said


@pytest.mark.parametrize(
    "nodes",
    [
        [node("pc1", "wait_primary"), node("pc2", "catchingup")],
        [node("pc1", "single")],
        [node("pc1", "primary"), node("pc2", "secondary", healthy=False)],
    ],
)
def test_a_primary_without_a_standby_is_one_copy(nodes: list[NodeState]) -> None:
    assert durability(nodes, 0).startswith("ONE COPY: the primary pc1 accepts writes alone")


def test_two_standbys_with_one_required_survive_one_stopping() -> None:
    nodes = [node("pc1", "primary"), node("pc2", "secondary"), node("pc3", "secondary")]

    said = durability(nodes, 1)

    assert said.startswith("2+ copies: each write waits for 1 of 2 standbys; 1 may stop")


def test_no_primary_means_writes_wait() -> None:
    nodes = [node("pc1", "demoted"), node("pc2", "prepare_promotion", "stop_replication")]

    assert durability(nodes, 0).startswith("no primary")
