"""Late ops: an op captured on a device for a day that has since been closed (a truck's
day-end) is accepted — booked at server time, its capture time kept in the audit entry — and
its answer says `"review": true` so the device and the back office know a person must look.

Which days are closed is a domain's business (dayend); it registers its check here at start-up
(AppConfig.ready), as domains register outbox deliverers: sync imports no domain above it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from quartermaster.core.types import Actor

# (actor, the op's capture time as sent or "", its payload) → True when it falls on a closed day.
Check = Callable[[Actor, str, dict[str, Any]], bool]

_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def needs_review(actor: Actor, client_ts: str, payload: dict[str, Any]) -> bool:
    """`client_ts` "" (the device sent none): captured now, when it is booked."""
    return any(check(actor, client_ts, payload) for check in _checks)
