"""Pure rules of batch sync: device sequence ranges, group shape, temp-id substitution."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from quartermaster.core.errors import Invalid

Ranges = list[list[int]]


def add_seqs(ranges: Ranges, seqs: Iterable[int]) -> Ranges:
    """Merge `seqs` into sorted, disjoint, non-adjacent [first, last] ranges."""
    points = sorted({*seqs})
    merged: Ranges = [list(r) for r in ranges]
    for seq in points:
        merged.append([seq, seq])
    merged.sort()
    out: Ranges = []
    for first, last in merged:
        if out and first <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], last)
        else:
            out.append([first, last])
    return out


def sequence_status(ranges: Ranges) -> tuple[int, Ranges]:
    """(last contiguous seq from 1, the missing [from, to] ranges below the highest seen)."""
    last_contiguous = ranges[0][1] if ranges and ranges[0][0] == 1 else 0
    missing: Ranges = []
    expected = 1
    for first, last in ranges:
        if first > expected:
            missing.append([expected, first - 1])
        expected = last + 1
    return last_contiguous, missing


def check_groups_contiguous(groups: Sequence[str | None]) -> None:
    """A group's ops must sit next to each other: they run as one transaction, and ops in between
    would otherwise be bound to the group's fate."""
    closed: set[str] = set()
    previous: str | None = None
    for index, group in enumerate(groups):
        if group != previous and previous is not None:
            closed.add(previous)
        if group is not None and group in closed:
            raise Invalid(
                f"the ops of group {group!r} must be next to each other",
                fields={f"ops[{index}].group": "group is not contiguous"},
            )
        previous = group


def strings_in(value: Any) -> Iterable[str]:
    """Every string value (not key) nested in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def substitute(value: Any, replace: Callable[[str], str]) -> Any:
    """A copy of a JSON value with each string value passed through `replace`."""
    if isinstance(value, str):
        return replace(value)
    if isinstance(value, dict):
        return {key: substitute(item, replace) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, replace) for item in value]
    return value
