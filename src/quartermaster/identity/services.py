"""Command handlers for identity: users, the life of a session (login, refresh, logout) and the
devices sessions run on. Credentials are checked before the command runs, so no password hashing
happens while a write transaction is open."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from quartermaster.core import events
from quartermaster.core.canonical import fingerprint
from quartermaster.core.commands import Command
from quartermaster.core.errors import Conflict, Invalid, NotAuthenticated, NotFound
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.identity import invariants, tokens
from quartermaster.identity.errors import DeviceNotYours
from quartermaster.identity.models import Device, RefreshToken, Role, User
from quartermaster.identity.selectors import device_view, get_device, user_view

# Open WebSockets listen here for sessions, devices and users whose access just ended, and close
# at once (consumers.py). With the Redis channel layer every server process hears it; the
# in-process layer reaches this process's sockets only, and the others re-check on a timer.
REVOCATIONS_GROUP = "identity.revocations"


def announce_revocation(
    *, session: UUID | None = None, device_key: str | None = None, user_id: UUID | None = None
) -> None:
    """Tell open sockets, once the revocation commits, whose access ended."""
    events.announce_after_commit(
        REVOCATIONS_GROUP,
        {
            "type": "access.revoked",
            "session": str(session or ""),
            "device_key": device_key or "",
            "user": str(user_id or ""),
        },
    )


# How often a device's last-seen time is written: at most once per interval per device.
LAST_SEEN_RESOLUTION_S = 60


class CreateUser(Command):
    name = "user.create"
    username: str
    password: str
    role: str
    location_ids: tuple[UUID, ...] = ()

    def validated(self) -> CreateUser:
        if self.role not in Role.values:
            raise Invalid.field("role", f"one of {', '.join(Role.values)}")
        return self.model_copy(
            update={
                "username": invariants.clean_username(self.username),
                "password": invariants.clean_password(self.password),
            }
        )

    def fingerprint(self) -> str:
        # The password stays out of the stored fingerprint.
        return fingerprint([self.name, self.model_dump(mode="json", exclude={"password"})])

    def handle(self, ctx: Context) -> Outcome:
        if User.objects.filter(username=self.username).exists():
            raise Conflict(f"user {self.username!r} already exists")
        user = User(username=self.username, role=self.role)
        # Back-office access follows the role; see admin.py.
        user.is_staff = self.role in (Role.ADMIN, Role.MANAGER)
        user.is_superuser = self.role == Role.ADMIN
        user.set_password(self.password)
        user.save()
        if self.location_ids:
            user.locations.set(list(self.location_ids))  # type: ignore[arg-type]
        view = user_view(user)
        return Outcome(
            status=201,
            body=view,
            changes=[Change("user", str(user.id), None, view, publish=False)],
        )


def _token_pair(*, user_id: UUID, family: UUID, device_id: str, now: datetime) -> dict[str, Any]:
    jti = uuid.uuid4()
    RefreshToken.objects.create(
        jti=jti,
        family=family,
        user_id=user_id,
        device_id=device_id,
        issued_at=now,
        expires_at=now + timedelta(seconds=settings.REFRESH_TOKEN_TTL_S),
    )
    return {
        "access": tokens.issue_access(user_id=user_id, family=family, device_id=device_id, now=now),
        "refresh": tokens.issue_refresh(
            user_id=user_id, jti=jti, family=family, device_id=device_id, now=now
        ),
        "token_type": "Bearer",
        "expires_in": settings.ACCESS_TOKEN_TTL_S,
    }


def _session_change(family: UUID, before: str | None, after: str) -> Change:
    return Change(
        "session",
        str(family),
        None if before is None else {"state": before},
        {"state": after},
        publish=False,
    )


class UpdateUser(Command):
    """Change a user's role, locations or active flag (the back office). Deactivating a user
    ends every session at once: the bearer check loads only active users."""

    name = "user.update"
    user_id: UUID
    role: str
    location_ids: tuple[UUID, ...] = ()
    is_active: bool = True

    def validated(self) -> UpdateUser:
        if self.role not in Role.values:
            raise Invalid.field("role", f"one of {', '.join(Role.values)}")
        return self

    def handle(self, ctx: Context) -> Outcome:
        user = User.objects.select_for_update().filter(pk=self.user_id).first()
        if user is None:
            raise NotFound()
        before = {**user_view(user), "is_active": user.is_active}
        user.role = self.role
        user.is_active = self.is_active
        user.is_staff = self.role in (Role.ADMIN, Role.MANAGER)
        user.is_superuser = self.role == Role.ADMIN
        user.save(update_fields=["role", "is_active", "is_staff", "is_superuser"])
        user.locations.set(list(self.location_ids))  # type: ignore[arg-type]
        if not self.is_active:
            RefreshToken.objects.filter(user=user, revoked_at__isnull=True).update(
                revoked_at=timezone.now()
            )
            announce_revocation(user_id=user.id)
        after = {**user_view(user), "is_active": user.is_active}
        changes = (
            [] if after == before else [Change("user", str(user.id), before, after, publish=False)]
        )
        return Outcome(status=200, body=after, changes=changes)


class StartSession(Command):
    """Login, after the adapter checked the credentials: register the device, if one is named,
    and open a new refresh-token family bound to it."""

    name = "session.start"
    # Never a batch-sync op: a session answer carries tokens, and op results are kept forever.
    syncable: ClassVar[bool] = False
    device_id: str = ""

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        now = timezone.now()
        changes = []
        device_id = ""
        if self.device_id:
            device, device_change = _register_device(self.device_id, ctx.actor.user_id, now)
            device_id = device.device_id  # the spelling first seen: tokens carry that one
            if device_change is not None:
                changes.append(device_change)
        family = uuid.uuid4()
        pair = _token_pair(user_id=ctx.actor.user_id, family=family, device_id=device_id, now=now)
        changes.append(_session_change(family, None, "active"))
        return Outcome(status=200, body=pair, changes=changes)


class ClaimDevice(Command):
    """Make a device id nobody has used yet the caller's: a token issued without a device syncs
    only as devices of its own user, and its first use of a new id claims it (API.md "Sync").
    The caller's own device is answered as it is; a revoked one or another user's is refused."""

    name = "device.claim"
    syncable: ClassVar[bool] = False
    device_id: str

    def validated(self) -> ClaimDevice:
        device_id = invariants.clean_device_id(self.device_id)
        if not device_id:
            raise Invalid.field("device_id", "must not be blank")
        return self.model_copy(update={"device_id": device_id})

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        device, change = _register_device(self.device_id, ctx.actor.user_id, timezone.now())
        return Outcome(
            status=201 if change is not None else 200,
            body=device_view(device),
            changes=[] if change is None else [change],
        )


def _register_device(device_id: str, user_id: UUID, now: datetime) -> tuple[Device, Change | None]:
    """The device `device_id` names in any spelling, registered to `user_id` when new (with the
    Change that records it). A device belongs to the user who registered it first: a revoked
    device and another user's refuse, so nobody takes over a device or acts in its name."""
    key = invariants.device_key(device_id)
    device = (
        Device.objects.select_for_update(of=("self",))
        .select_related("user")
        .filter(key=key)
        .first()
    )
    if device is None:
        # Two first logins at once: one row wins (the key is unique), the other reads it.
        Device.objects.bulk_create(
            [
                Device(
                    device_id=device_id,
                    key=key,
                    user_id=user_id,
                    first_seen_at=now,
                    last_seen_at=now,
                )
            ],
            ignore_conflicts=True,
        )
        device = Device.objects.select_for_update(of=("self",)).select_related("user").get(key=key)
        if device.first_seen_at == now and device.user_id == user_id:
            return device, Change(
                "device", device.device_id, None, device_view(device), publish=False
            )
    if device.revoked_at is not None:
        raise NotAuthenticated("this device has been revoked")
    if device.user_id != user_id:
        raise DeviceNotYours()
    Device.objects.filter(pk=device.pk).update(last_seen_at=now)
    return device, None


# device_id → monotonic time of this process's last write of its last-seen time. In-process on
# purpose: no cache round trip per request; each process writes at most once a minute a device.
_last_touched: dict[str, float] = {}
_MAX_TRACKED_DEVICES = 50_000


def touch_device(device_id: str) -> None:
    """Note that `device_id` was just seen, at most once per LAST_SEEN_RESOLUTION_S per process.

    Not a command on purpose: last-seen is an observation, not a change anyone made, and an
    audit entry per request would bury the chain.
    """
    if not device_id:
        return
    now = time.monotonic()
    if now - _last_touched.get(device_id, -LAST_SEEN_RESOLUTION_S) < LAST_SEEN_RESOLUTION_S:
        return
    if len(_last_touched) >= _MAX_TRACKED_DEVICES:
        _last_touched.clear()
    _last_touched[device_id] = now
    Device.objects.filter(pk=device_id, revoked_at__isnull=True).update(last_seen_at=timezone.now())


class RevokeDevice(Command):
    """Revoke a device: its access tokens fail the bearer check from now on and its refresh-token
    families are revoked, so nothing issued to it works any more. Revoking twice is fine."""

    name = "device.revoke"
    device_id: str

    def handle(self, ctx: Context) -> Outcome:
        device = get_device(self.device_id, for_update=True)
        if device is None:
            raise NotFound()
        if device.revoked_at is not None:
            return Outcome(status=200, body=device_view(device))
        before = device_view(device)
        now = timezone.now()
        device.revoked_at = now
        device.save(update_fields=["revoked_at"])
        RefreshToken.objects.filter(device_id=device.device_id, revoked_at__isnull=True).update(
            revoked_at=now
        )
        announce_revocation(device_key=device.key)
        after = device_view(device)
        return Outcome(
            status=200,
            body=after,
            changes=[Change("device", device.device_id, before, after, publish=False)],
        )


class RotateSession(Command):
    """Spend a refresh token for a new pair. A spent token presented again is theft or a replay:
    the whole family is revoked, and that revocation commits even though the answer is 401."""

    name = "session.refresh"
    # Never a batch-sync op: a session answer carries tokens, and op results are kept forever.
    syncable: ClassVar[bool] = False
    jti: UUID

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        now = timezone.now()
        token = (
            RefreshToken.objects.select_for_update()
            .filter(jti=self.jti, user_id=ctx.actor.user_id)
            .first()
        )
        if token is None or token.revoked_at is not None or token.expires_at <= now:
            raise NotAuthenticated("invalid or expired token")
        if token.spent_at is not None:
            RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
                revoked_at=now
            )
            announce_revocation(session=token.family)
            return Outcome(
                status=401,
                body={"error": "refresh token reused; session revoked", "code": "token_reused"},
                changes=[_session_change(token.family, "active", "revoked: refresh token reused")],
            )
        token.spent_at = now
        token.save(update_fields=["spent_at"])
        pair = _token_pair(
            user_id=token.user_id, family=token.family, device_id=token.device_id, now=now
        )
        return Outcome(
            status=200, body=pair, changes=[_session_change(token.family, "active", "rotated")]
        )


class EndSession(Command):
    """Logout: revoke the family the refresh token belongs to."""

    name = "session.end"
    # Never a batch-sync op: a session answer carries tokens, and op results are kept forever.
    syncable: ClassVar[bool] = False
    jti: UUID

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        token = RefreshToken.objects.filter(jti=self.jti, user_id=ctx.actor.user_id).first()
        if token is None:
            return Outcome(status=204, body=None)
        revoked = RefreshToken.objects.filter(family=token.family, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not revoked:
            return Outcome(status=204, body=None)
        announce_revocation(session=token.family)
        return Outcome(
            status=204, body=None, changes=[_session_change(token.family, "active", "ended")]
        )
