"""The permission policy: the one module that decides who may do what, where.

Default deny: an action missing from the table is refused for everyone but the system actor.
Record scoping: staff act only at their assigned locations, and a record elsewhere answers 404
so its existence is not revealed.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from quartermaster.core.commands import Actor
from quartermaster.core.errors import NotFound, PermissionDenied
from quartermaster.identity.models import Role

ADMIN, MANAGER, STAFF, AUDITOR, PARTY = (
    Role.ADMIN.value,
    Role.MANAGER.value,
    Role.STAFF.value,
    Role.AUDITOR.value,
    Role.PARTY.value,
)
EVERYONE = frozenset({ADMIN, MANAGER, STAFF, AUDITOR, PARTY})
READERS = frozenset({ADMIN, MANAGER, STAFF, AUDITOR})
SYSTEM_ROLE = "system"

# Roles that see every location; everyone else is scoped to their assigned locations.
UNSCOPED_ROLES = frozenset({ADMIN, MANAGER, AUDITOR, SYSTEM_ROLE})

ALLOWED_ROLES: dict[str, frozenset[str]] = {
    # sessions: anyone may manage their own
    "session.start": EVERYONE,
    "session.refresh": EVERYONE,
    "session.end": EVERYONE,
    "user.create": frozenset({ADMIN}),
    "user.read": frozenset({ADMIN}),
    # items
    "item.read": READERS,
    "item.create": frozenset({ADMIN, MANAGER}),
    "item.delete": frozenset({ADMIN, MANAGER}),
    "item.adjust": frozenset({ADMIN, MANAGER, STAFF}),
    # sync: each op is authorized again as its own command
    "sync.batch": frozenset({ADMIN, MANAGER, STAFF}),
    "sync.changes": EVERYONE,
    "sync.device_status": frozenset({ADMIN, MANAGER, STAFF}),
    # audit
    "audit.read": frozenset({ADMIN, MANAGER, AUDITOR}),
    "audit.verify": frozenset({ADMIN, MANAGER, AUDITOR}),
}


def authorize(actor: Actor, action: str, *, location_id: UUID | None = None) -> None:
    if actor.role == SYSTEM_ROLE:
        return
    roles = ALLOWED_ROLES.get(action)
    if roles is None or actor.role not in roles:
        raise PermissionDenied(f"{actor.role} may not {action}")
    if location_id is not None and not can_see_location(actor, location_id):
        raise NotFound()


def can_see_location(actor: Actor, location_id: UUID) -> bool:
    return actor.role in UNSCOPED_ROLES or location_id in actor.location_ids


@dataclass(frozen=True)
class FeedScope:
    """Which change-feed rows an actor may read.

    `everything`: all rows. Otherwise rows at `location_ids`, plus rows that belong to no
    location when `unlocated` is set (the item catalogue, deletions of catalogue records).
    """

    everything: bool
    location_ids: frozenset[UUID] = frozenset()
    unlocated: bool = False


def feed_scope(actor: Actor) -> FeedScope:
    """Staff read their locations and the shared catalogue. Party users (customers, farmers) read
    nothing yet: feed rows carry no owning party, and a party may see only its own statements,
    so until records name their party the safe answer is none."""
    if actor.role in UNSCOPED_ROLES:
        return FeedScope(everything=True)
    if actor.role == STAFF:
        return FeedScope(everything=False, location_ids=actor.location_ids, unlocated=True)
    return FeedScope(everything=False)


def can_read_device_status(actor: Actor, device_owner_id: UUID | None) -> bool:
    """A device's sync status: its own user, managers and admins."""
    if actor.role in (ADMIN, MANAGER, SYSTEM_ROLE):
        return True
    return device_owner_id is not None and device_owner_id == actor.user_id
