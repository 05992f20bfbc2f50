"""The hook through which core asks identity's permission policy, which it cannot import.

identity installs its policy at start-up (IdentityConfig.ready); every decision is made there.
"""

from __future__ import annotations

import enum
from typing import Final, Protocol
from uuid import UUID

from quartermaster.core.types import Actor


class _NoRecord(enum.Enum):
    NO_RECORD = "no record"


# `owner_id` when no particular record is asked about (may this role take the action at all?).
# `owner_id=None` is different: a record that belongs to nobody, which own-records-only roles
# may not see.
NO_RECORD: Final = _NoRecord.NO_RECORD
Owner = UUID | None | _NoRecord


class Authorizer(Protocol):
    def __call__(
        self,
        actor: Actor,
        action: str,
        *,
        location_id: UUID | None = None,
        owner_id: Owner = NO_RECORD,
    ) -> None: ...


_authorizer: Authorizer | None = None


def install(authorizer: Authorizer) -> None:
    global _authorizer
    _authorizer = authorizer


def authorize(
    actor: Actor, action: str, *, location_id: UUID | None = None, owner_id: Owner = NO_RECORD
) -> None:
    """Raise PermissionDenied (403), or NotFound (404) for a record outside the actor's locations
    or, for own-records-only actions, one the actor does not own."""
    if _authorizer is None:
        raise RuntimeError("no permission policy installed")
    _authorizer(actor, action, location_id=location_id, owner_id=owner_id)
