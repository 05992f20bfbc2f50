"""Reads for identity: credentials, the acting user, user representations."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.hashers import check_password, make_password

from quartermaster.core.commands import Actor
from quartermaster.identity.models import User

# Checked against when the username is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = make_password(None)


def check_credentials(username: str, password: str) -> User | None:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        check_password(password, _DUMMY_HASH)
        return None
    return user if user.check_password(password) else None


def load_actor(user_id: UUID, *, device_id: str = "") -> Actor | None:
    row = User.objects.filter(pk=user_id, is_active=True).values("username", "role").first()
    if row is None:
        return None
    location_ids = frozenset(
        User.locations.through.objects.filter(user_id=user_id).values_list("location_id", flat=True)
    )
    return Actor(
        user_id=user_id,
        username=row["username"],
        role=row["role"],
        location_ids=location_ids,
        device_id=device_id,
    )


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "username": user.username,
        "role": user.role,
        "locations": sorted(str(pk) for pk in user.locations.values_list("pk", flat=True)),
    }


def actor_view(actor: Actor) -> dict[str, Any]:
    return {
        "id": str(actor.user_id),
        "username": actor.username,
        "role": actor.role,
        "locations": sorted(str(pk) for pk in actor.location_ids),
    }
