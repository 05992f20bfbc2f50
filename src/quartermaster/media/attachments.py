"""The records media are attached to, and the rule that goes with them: whoever may read a
record may read the media attached to it (a photo a manager added to an inspection is the
assigned inspector's to see, whoever uploaded it).

The records' domains (inspections) sit above media, which imports none of them: each registers
at start-up (AppConfig.ready) a check that answers whether a record of its own the actor may
read names the media, as dayend registers its closed-day check with sync.review. Each check
asks the one permission policy (identity.permissions) whether the actor may read its record.
"""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

from quartermaster.core.types import Actor

# (actor, media id) → True when a record the actor may read has the media attached.
Check = Callable[[Actor, UUID], bool]

_checks: list[Check] = []


def register(check: Check) -> None:
    if check not in _checks:
        _checks.append(check)


def attached_to_readable_record(actor: Actor, media_id: UUID) -> bool:
    return any(check(actor, media_id) for check in _checks)
