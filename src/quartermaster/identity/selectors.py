"""Reads for identity: credentials, the acting user, devices, user representations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib.auth.hashers import check_password, make_password
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from quartermaster.core.errors import Invalid
from quartermaster.core.pagination import Keyset, Page, PageRequest, text_key, time_key, uuid_key
from quartermaster.core.types import Actor, View
from quartermaster.identity import invariants, parties
from quartermaster.identity.models import Device, RefreshToken, Role, User

# Checked against when the username is unknown, so a miss costs the same time as a hit.
_DUMMY_HASH = make_password(None)


def check_credentials(username: str, password: str) -> User | None:
    user = User.objects.filter(username=username, is_active=True).first()
    if user is None:
        check_password(password, _DUMMY_HASH)
        return None
    return user if user.check_password(password) else None


def load_actor(user_id: UUID, *, device_id: str = "", session: UUID | None = None) -> Actor | None:
    """The active user acting from `device_id` in `session`, or None: unknown, deactivated,
    revoked device, or a session ended (logout, refresh-token reuse, device revoked).

    Every authenticated request asks, so a revocation counts from the next request in every
    server process: one plain statement for the user, their locations, the device's and the
    session's revocation, with no query compiler and no model instances."""
    user_key = _USER_ID.get_db_prep_value(user_id, connection)
    session_key = None if session is None else _FAMILY.get_db_prep_value(session, connection)
    with connection.cursor() as cursor:
        cursor.execute(_ACTOR_SQL, [device_id, session_key, user_key])
        rows = cursor.fetchall()
    if not rows:
        return None
    username, role, _, revoked = rows[0]
    if revoked:
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
_FAMILY = RefreshToken._meta.get_field("family")
_LOCATION_ID = User.locations.through._meta.get_field("location").target_field
# A session is its refresh-token family: ended when any of its tokens is revoked (logout,
# reuse detection and device revocation revoke them all). Both probes are primary-key or
# indexed lookups; a NULL session matches no token.
_ACTOR_SQL = (
    "SELECT u.username, u.role, l.location_id,"
    " (EXISTS (SELECT 1 FROM identity_device d"
    "   WHERE d.device_id = %s AND d.revoked_at IS NOT NULL)"
    "  OR EXISTS (SELECT 1 FROM identity_refreshtoken t"
    "   WHERE t.family = %s AND t.revoked_at IS NOT NULL))"
    " FROM identity_user u LEFT JOIN identity_user_locations l ON l.user_id = u.id"
    " WHERE u.id = %s AND u.is_active"
)


@dataclass(frozen=True)
class UserView(View):
    """A user as the users API shows it and the chain seals it. Never their password or its
    hash: neither is a field here, so no body, feed row or audit entry can carry one."""

    id: UUID
    username: str
    role: str
    location_ids: tuple[UUID, ...]
    is_active: bool
    # The party records (customer, farmer) this user signs in as: kind → id. Wire only: the
    # link is sealed on the party's own record (its `user`), where it is made.
    parties: tuple[tuple[str, UUID], ...] = ()
    joined_at: datetime | None = None
    last_login: datetime | None = None

    def to_wire(self) -> dict[str, Any]:
        """docs/api-additions.md "Users"."""
        linked = dict(self.parties)
        return {
            "id": str(self.id),
            "username": self.username,
            "role": self.role,
            "locations": [str(pk) for pk in self.location_ids],
            "is_active": self.is_active,
            **{kind: _text_or_none(linked.get(kind)) for kind in parties.kind_names()},
            "joined_at": _iso_or_none(self.joined_at),
            "last_login": _iso_or_none(self.last_login),
        }

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: what the back office's updates sealed (a creation: `NewUserView`)."""
        return {**self._sealed_identity(), "is_active": self.is_active}

    def _sealed_identity(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "role": self.role,
            "locations": [str(pk) for pk in self.location_ids],
        }


@dataclass(frozen=True)
class NewUserView(UserView):
    """A user as created. Chain format 1 sealed a creation without `is_active` (every account
    began active); an account created inactive (self sign-up) says so."""

    def to_snapshot(self) -> dict[str, Any]:
        if self.is_active:
            return self._sealed_identity()
        return super().to_snapshot()


def _text_or_none(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def _iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def user_view(user: User, *, new: bool = False) -> UserView:
    return _user_view(user, parties.links_of(user.id), new=new)


def user_views(users: list[User]) -> list[UserView]:
    """Views of a page of users (their locations prefetched), party links in one query a kind."""
    links = parties.links_of_many(user.id for user in users)
    return [_user_view(user, links[user.id]) for user in users]


def _user_view(user: User, links: parties.PartyLinks, *, new: bool = False) -> UserView:
    view_class = NewUserView if new else UserView
    return view_class(
        id=user.id,
        username=user.username,
        role=user.role,
        # .all(): served from a list's prefetch when there is one
        location_ids=tuple(sorted((location.pk for location in user.locations.all()), key=str)),
        is_active=user.is_active,
        parties=links,
        joined_at=user.date_joined,
        last_login=user.last_login,
    )


def get_user(user_id: UUID, *, for_update: bool = False) -> User | None:
    users = User.objects.select_for_update() if for_update else User.objects
    return users.filter(pk=user_id).first()


def lock_active_admins() -> list[UUID]:
    """Lock the active admins' rows until commit, in primary-key order (one order for every
    caller, so lockers cannot deadlock); their ids. On PostgreSQL a row another transaction
    changed meanwhile is read again once it commits: one demoted by then is left out."""
    admins = User.objects.select_for_update().filter(role=Role.ADMIN, is_active=True)
    return list(admins.order_by("pk").values_list("pk", flat=True))


# By username: the order an admin screen lists people in, and stable under new sign-ups.
USER_ORDER = Keyset(fields=(text_key("username"), uuid_key("id")))


def list_users(
    *, page: PageRequest, role: str | None = None, is_active: bool | None = None
) -> Page[User]:
    users = User.objects.all()
    if role is not None:
        users = users.filter(role=role)
    if is_active is not None:
        users = users.filter(is_active=is_active)
    return USER_ORDER.page(users.prefetch_related("locations"), page)


def actor_view(actor: Actor) -> dict[str, Any]:
    return {
        "id": str(actor.user_id),
        "username": actor.username,
        "role": actor.role,
        "locations": sorted(str(pk) for pk in actor.location_ids),
    }


def get_device(device_id: str, *, for_update: bool = False) -> Device | None:
    """The device `device_id` names in any spelling (`invariants.device_key`), or None."""
    try:
        key = invariants.device_key(device_id)
    except Invalid:
        return None  # no stored device has an id that does not clean
    devices = Device.objects.select_related("user")
    if for_update:
        devices = devices.select_for_update(of=("self",))
    # The exact id first: a case variant kept from before ids were one device (migration 0003)
    # is still itself to the back office that lists it.
    found = {device.device_id: device for device in devices.filter(Q(pk=device_id) | Q(key=key))}
    exact = found.get(device_id)
    return exact or next((d for d in found.values() if d.key == key), None)


# Most recently seen first: the devices worth a look (a lost till, a stolen phone) lead.
DEVICE_ORDER = Keyset(fields=(time_key("last_seen_at"), text_key("device_id")), descending=True)


def list_devices(*, page: PageRequest) -> Page[Device]:
    return DEVICE_ORDER.page(Device.objects.select_related("user"), page)


@dataclass(frozen=True)
class DeviceView(View):
    """A device as the devices API shows it; sealed as shown (chain format 1)."""

    device_id: str
    user_id: UUID
    username: str
    first_seen_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None
    online: bool

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1: it began as the wire body of the time, and stays as it is."""
        return {
            "device_id": self.device_id,
            "user_id": str(self.user_id),
            "username": self.username,
            "first_seen_at": self.first_seen_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "revoked_at": _iso_or_none(self.revoked_at),
            "online": self.online,
        }


def device_view(device: Device) -> DeviceView:
    return DeviceView(
        device_id=device.device_id,
        user_id=device.user_id,
        username=device.user.username,
        first_seen_at=device.first_seen_at,
        last_seen_at=device.last_seen_at,
        revoked_at=device.revoked_at,
        online=is_online(device),
    )


@dataclass(frozen=True)
class SessionView(View):
    """A session (a refresh-token family) as recorded: only its state, never a token."""

    state: str

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {"state": self.state}


def is_online(device: Device) -> bool:
    """Heard from within DEVICE_ONLINE_S: a watching agent syncs every 30 s, and each request
    moves `last_seen_at` (at most once a minute per process: services.touch_device)."""
    if device.revoked_at is not None:
        return False
    return (timezone.now() - device.last_seen_at).total_seconds() <= settings.DEVICE_ONLINE_S


@dataclass(frozen=True)
class PasswordView(View):
    """That a user's password was set, and how ("changed" by its user, "reset" by an admin):
    the chain records the event, never the password or its hash."""

    state: str

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        return {"state": self.state}
