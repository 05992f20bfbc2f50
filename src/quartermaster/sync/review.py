"""Late ops: an op captured on a device for a day that has since been closed (a truck's
day-end) is accepted — booked at server time, its capture time kept in the audit entry — and
its answer says `"review": true` so the device and the back office know a person must look.

Which days are closed is a domain's business (dayend); it registers its check here at start-up
(AppConfig.ready), as domains register outbox deliverers: sync imports no domain above it. A
check answers a whole batch at once (one query, not one per op: a batch is up to 100 ops).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quartermaster.core.types import Actor


@dataclass(frozen=True)
class Captured:
    """An applied op: its capture time as the device sent it ("": captured when booked) and
    its payload."""

    client_ts: str
    payload: dict[str, Any]


# (actor, the batch's applied ops) → for each, True when it falls on a closed day.
Check = Callable[[Actor, Sequence[Captured]], list[bool]]

_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def needs_review(actor: Actor, ops: Sequence[Captured]) -> list[bool]:
    flags = [False] * len(ops)
    if not ops:
        return flags
    for check in _checks:
        flags = [flag or found for flag, found in zip(flags, check(actor, ops), strict=True)]
    return flags
