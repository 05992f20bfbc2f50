"""Reads for identity: credentials, the acting user, devices, user representations."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.utils import timezone

from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, time_key
from quartermaster.core.types import Actor
from quartermaster.identity.models import Device, User

# Checked against when the username is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = make_password(None)


def check_credentials(username: str, password: str) -> User | None:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        check_password(password, _DUMMY_HASH)
        return None
    return user if user.check_password(password) else None


def load_actor(user_id: UUID, *, device_id: str = "") -> Actor | None:
    """The active user acting from `device_id`, or None: unknown, deactivated, revoked device.

    Every authenticated request asks: one plain statement for the user, their locations and the
    device's revocation, no query compiler and no model instances."""
    user_key = _USER_ID.get_db_prep_value(user_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(_ACTOR_SQL, [device_id, user_key])
        rows = cursor.fetchall()
    if not rows:
        return None
    username, role, _, device_revoked = rows[0]
    if device_revoked:
        return None
    location_field = _LOCATION_ID
    return Actor(
        user_id=user_id,
        username=username,
        role=role,
        location_ids=frozenset(
            location_field.to_python(row[2]) for row in rows if row[2] is not None
        ),
        device_id=device_id,
    )


_USER_ID = User._meta.get_field("id")
_LOCATION_ID = User.locations.through._meta.get_field("location").target_field
_ACTOR_SQL = (
    "SELECT u.username, u.role, l.location_id,"
    " EXISTS (SELECT 1 FROM identity_device d"
    "  WHERE d.device_id = %s AND d.revoked_at IS NOT NULL)"
    " FROM identity_user u LEFT JOIN identity_user_locations l ON l.user_id = u.id"
    " WHERE u.id = %s AND u.is_active"
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


def is_device_revoked(device_id: str) -> bool:
    return Device.objects.filter(pk=device_id, revoked_at__isnull=False).exists()


def get_device(device_id: str) -> Device | None:
    return Device.objects.select_related("user").filter(pk=device_id).first()


# Most recently seen first: the devices worth a look (a lost till, a stolen phone) lead.
DEVICE_ORDER = Keyset(fields=(time_key("last_seen_at"), text_key("device_id")), descending=True)


def list_devices(*, page: PageRequest) -> Page[Device]:
    return DEVICE_ORDER.page(Device.objects.select_related("user"), page)


def device_view(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "user_id": str(device.user_id),
        "username": device.user.username,
        "first_seen_at": device.first_seen_at.isoformat(),
        "last_seen_at": device.last_seen_at.isoformat(),
        "revoked_at": device.revoked_at.isoformat() if device.revoked_at else None,
        "online": is_online(device),
    }


def is_online(device: Device) -> bool:
    """Heard from within DEVICE_ONLINE_S: a watching agent syncs every 30 s, and each request
    moves `last_seen_at` (at most once a minute per process: services.touch_device)."""
    if device.revoked_at is not None:
        return False
    return (timezone.now() - device.last_seen_at).total_seconds() <= settings.DEVICE_ONLINE_S
