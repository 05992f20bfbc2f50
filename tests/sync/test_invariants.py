"""Pure rules of sync: device sequence ranges."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quartermaster.sync.invariants import add_seqs, sequence_status


def test_ranges_merge_and_report_gaps() -> None:
    ranges = add_seqs([], [1, 2, 4, 7, 6])

    assert ranges == [[1, 2], [4, 4], [6, 7]]
    assert sequence_status(ranges) == (2, [[3, 3], [5, 5]])


@given(st.lists(st.sets(st.integers(min_value=1, max_value=60)), max_size=6))
def test_ranges_hold_exactly_the_seqs_delivered_in_any_batches(batches: list[set[int]]) -> None:
    ranges: list[list[int]] = []
    for batch in batches:
        ranges = add_seqs(ranges, batch)
    seen = set().union(*batches) if batches else set()

    held = {seq for first, last in ranges for seq in range(first, last + 1)}
    last_contiguous, missing = sequence_status(ranges)
    gaps = {seq for first, last in missing for seq in range(first, last + 1)}

    assert held == seen
    assert all(ranges[i][1] + 1 < ranges[i + 1][0] for i in range(len(ranges) - 1))
    assert gaps == set(range(1, max(seen, default=0) + 1)) - seen
    assert last_contiguous == next(n for n in range(len(seen) + 1) if n + 1 not in seen)
