"""Command handlers for identity: users (created, changed, signed up, their passwords), the life
of a session (login, refresh, logout) and the devices sessions run on. Credentials are checked
before the command runs, so no login or old-password check hashes while a write transaction is
open; only setting a new password (a rare, admin's or user's own act) hashes inside one."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from django.apps import apps
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from quartermaster.core import events, policy
from quartermaster.core.canonical import fingerprint
from quartermaster.core.commands import Command
from quartermaster.core.errors import Conflict, Invalid, NotAuthenticated, NotFound
from quartermaster.core.types import Change, Context, Outcome
from quartermaster.identity import invariants, parties, tokens
from quartermaster.identity.errors import DeviceNotYours
from quartermaster.identity.models import Device, RefreshToken, Role, User
from quartermaster.identity.selectors import (
    PasswordView,
    SessionView,
    device_view,
    get_device,
    get_user,
    lock_active_admins,
    user_view,
)

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


def checked_password(password: str, username: str) -> str:
    """A new password: within our length limits and passing the configured validators
    (AUTH_PASSWORD_VALIDATORS). Pure: the validators see an unsaved user, no database."""
    password = invariants.clean_password(password)
    try:
        validate_password(password, User(username=username))
    except DjangoValidationError as error:
        raise Invalid.field("password", " ".join(error.messages)) from error
    return password


def _check_role(role: str | None) -> None:
    if role is not None and role not in Role.values:
        raise Invalid.field("role", f"one of {', '.join(Role.values)}")


def _grant_role(user: User, role: str) -> None:
    user.role = role
    # Back-office access follows the role; see admin.py.
    user.is_staff = role in (Role.ADMIN, Role.MANAGER)
    user.is_superuser = role == Role.ADMIN


class PartyLinkFields(Command):
    """The party records (a customer, a farmer: identity.parties) a user signs in as."""

    customer: UUID | None = None
    farmer: UUID | None = None

    def party_links(self) -> list[tuple[str, UUID]]:
        return [
            (name, party_id)
            for name, party_id in (("customer", self.customer), ("farmer", self.farmer))
            if party_id is not None
        ]


def _link_parties(ctx: Context, user_id: UUID, links: list[tuple[str, UUID]]) -> list[Change]:
    """Link `user_id` to each party record through that record's own update command, inside
    this transaction: its checks (role party, no other record's), its version and its audit."""
    changes: list[Change] = []
    for name, party_id in links:
        kind = parties.kind(name)
        if kind is None:
            raise Invalid.field(name, f"no {name} records on this server")
        command = kind.link(party_id, user_id)
        try:
            command = command.validated()
            policy.authorize(ctx.actor, command.name)
            outcome = command.handle(ctx)
        except NotFound as error:
            raise Invalid.field(name, f"unknown {name}") from error
        except Invalid as error:
            # The party's command names its own field (`user`); here it is this one.
            raise Invalid.field(name, error.message) from error
        changes.extend(outcome.changes)
    return changes


def _save_new(user: User) -> None:
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError as error:  # a concurrent create took the name first
        raise Conflict(f"user {user.username!r} already exists") from error


class CreateUser(PartyLinkFields):
    """Create a user with a role, locations and (a party user) the customer or farmer it signs
    in as. The one way users are made: the CLI, the back office and the users API."""

    name = "user.create"
    username: str
    password: str
    role: str
    locations: tuple[UUID, ...] = ()
    is_active: bool = True

    def validated(self) -> CreateUser:
        _check_role(self.role)
        username = invariants.clean_username(self.username)
        return self.model_copy(
            update={"username": username, "password": checked_password(self.password, username)}
        )

    def fingerprint(self) -> str:
        # The password stays out of the stored fingerprint.
        return fingerprint([self.name, self.model_dump(mode="json", exclude={"password"})])

    def handle(self, ctx: Context) -> Outcome:
        if User.objects.filter(username=self.username).exists():
            raise Conflict(f"user {self.username!r} already exists")
        user = User(username=self.username, is_active=self.is_active)
        _grant_role(user, self.role)
        user.set_password(self.password)
        _save_new(user)
        if self.locations:
            _set_locations(user, self.locations)
        party_changes = _link_parties(ctx, user.id, self.party_links())
        view = user_view(user, new=True)
        return Outcome(
            status=201,
            body=view,
            changes=[Change("user", str(user.id), None, view, publish=False), *party_changes],
        )


def _set_locations(user: User, location_ids: tuple[UUID, ...]) -> None:
    # The model by label: inventory sits above identity in the layering.
    locations = apps.get_model("inventory", "Location")._default_manager
    known = set(locations.filter(pk__in=location_ids).values_list("pk", flat=True))
    unknown = [str(pk) for pk in location_ids if pk not in known]
    if unknown:
        raise Invalid.field("locations", f"no location has the id {', '.join(unknown)}")
    user.locations.set(list(location_ids))  # type: ignore[arg-type]


class SignUp(Command):
    """Self sign-up (seed 003), when the server allows it (QM_SIGNUP): an inactive account of
    the least role (party: it reads only what an admin later links it to), which an admin
    approves by activating it, with the role it needs (UpdateUser)."""

    name = "user.signup"
    syncable: ClassVar[bool] = False
    username: str
    password: str

    def validated(self) -> SignUp:
        username = invariants.clean_username(self.username)
        return self.model_copy(
            update={"username": username, "password": checked_password(self.password, username)}
        )

    def fingerprint(self) -> str:
        return fingerprint([self.name, self.model_dump(mode="json", exclude={"password"})])

    def handle(self, ctx: Context) -> Outcome:
        created = CreateUser.model_construct(
            username=self.username,
            password=self.password,
            role=Role.PARTY.value,
            locations=(),
            is_active=False,
            customer=None,
            farmer=None,
        )
        return created.handle(ctx)


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
        None if before is None else SessionView(before),
        SessionView(after),
        publish=False,
    )


class LastAdmin(Conflict):
    """Nobody could manage users any more: the last active admin is not demoted or deactivated."""

    code = "last_admin"

    def __init__(self) -> None:
        super().__init__("this is the last active admin: make another admin first")


class UpdateUser(PartyLinkFields):
    """Change a user's role, locations, active flag, party link or password (an admin: the users
    API, the back office, the CLI). Fields left None stay as they are.

    Deactivating a user ends every session at once: the bearer check loads only active users,
    and their refresh tokens are revoked. A password reset revokes every session too: whoever
    held the old password is signed out everywhere, and the user signs in with the new one."""

    name = "user.update"
    user: UUID
    role: str | None = None
    locations: tuple[UUID, ...] | None = None
    is_active: bool | None = None
    password: str | None = None

    def validated(self) -> UpdateUser:
        _check_role(self.role)
        if self.password is None:
            return self
        # The username is not known without the database; the validators that compare with it
        # ask when the user is loaded, in handle.
        return self.model_copy(update={"password": invariants.clean_password(self.password)})

    def fingerprint(self) -> str:
        # The password stays out of the stored fingerprint; whether one was set does not.
        dumped = self.model_dump(mode="json", exclude={"password"})
        return fingerprint([self.name, dumped, self.password is not None])

    def handle(self, ctx: Context) -> Outcome:
        if self._may_remove_an_admin():
            # Before the target: every remover locks the admins first, in one order, so two
            # admins removing each other cannot deadlock, and the second sees the first's change.
            lock_active_admins()
        user = get_user(self.user, for_update=True)
        if user is None:
            raise NotFound()
        if self.password is not None:
            checked_password(self.password, user.username)
        before = user_view(user)
        self._refuse_losing_the_last_admin(user)
        if self.role is not None:
            _grant_role(user, self.role)
        if self.is_active is not None:
            user.is_active = self.is_active
        if self.password is not None:
            user.set_password(self.password)
        user.save(update_fields=["role", "is_active", "is_staff", "is_superuser", "password"])
        if self.locations is not None:
            _set_locations(user, self.locations)
        party_changes = _link_parties(ctx, user.id, self.party_links())
        after = user_view(user)
        changes = (
            [] if after == before else [Change("user", str(user.id), before, after, publish=False)]
        )
        if not user.is_active or self.password is not None:
            reason = "deactivated" if not user.is_active else "password reset"
            changes += end_sessions(user.id, reason=reason)
            announce_revocation(user_id=user.id)
        if self.password is not None:
            changes.append(password_change(user.id, "reset"))
        return Outcome(status=200, body=after, changes=[*changes, *party_changes])

    def _may_remove_an_admin(self) -> bool:
        return (self.role is not None and self.role != Role.ADMIN) or self.is_active is False

    def _refuse_losing_the_last_admin(self, user: User) -> None:
        # The active admins are locked (lock_active_admins) whenever this change could remove
        # one, so two admins removing each other at once are decided one after the other.
        stays_admin = (self.role or user.role) == Role.ADMIN and self.is_active is not False
        if user.role != Role.ADMIN or not user.is_active or stays_admin:
            return
        others = User.objects.filter(role=Role.ADMIN, is_active=True).exclude(pk=user.pk)
        if not others.exists():
            raise LastAdmin()


def end_sessions(user_id: UUID, *, reason: str, keep: UUID | None = None) -> list[Change]:
    """Revoke every live session of `user_id` but `keep`, at once (open sockets close on the
    announcement), each recorded as its state change."""
    live = RefreshToken.objects.filter(user_id=user_id, revoked_at__isnull=True)
    if keep is not None:
        live = live.exclude(family=keep)
    families = sorted(set(live.values_list("family", flat=True)), key=str)
    if not families:
        return []
    live.update(revoked_at=timezone.now())
    for family in families:
        announce_revocation(session=family)
    return [_session_change(family, "active", f"revoked: {reason}") for family in families]


def password_change(user_id: UUID, how: str) -> Change:
    """A password was set: recorded that it was and how, never what it is."""
    return Change("user.password", str(user_id), None, PasswordView(how), publish=False)


class ChangeOwnPassword(Command):
    """Change one's own password, after the adapter checked the old one (as login does, with
    its lockout). Every other session of the user ends at once; the session the request came
    from (`keep_session`) is kept: its tokens keep working, nothing is re-issued."""

    name = "user.password.change"
    # Never a batch-sync op: a password is not kept in a device's outbox.
    syncable: ClassVar[bool] = False
    password: str
    keep_session: UUID | None = None

    def fingerprint(self) -> str:
        return fingerprint([self.name, self.model_dump(mode="json", exclude={"password"})])

    def validated(self) -> ChangeOwnPassword:
        return self.model_copy(update={"password": invariants.clean_password(self.password)})

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        user = get_user(ctx.actor.user_id, for_update=True)
        if user is None or not user.is_active:
            raise NotAuthenticated("authentication required")
        checked_password(self.password, user.username)
        user.set_password(self.password)
        user.save(update_fields=["password"])
        changes = end_sessions(user.id, reason="password changed", keep=self.keep_session)
        changes.append(password_change(user.id, "changed"))
        return Outcome(status=204, body=None, changes=changes)


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
