"""Command handlers for identity: creating users and the life of a session (login, refresh,
logout). Credentials are checked before the command runs, so no password hashing happens while
a write transaction is open."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

from django.conf import settings
from django.utils import timezone

from quartermaster.core.canonical import fingerprint
from quartermaster.core.commands import Change, Command, Context, Outcome
from quartermaster.core.errors import Conflict, Invalid, NotAuthenticated
from quartermaster.identity import invariants, tokens
from quartermaster.identity.models import RefreshToken, Role, User
from quartermaster.identity.selectors import user_view


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
        "access": tokens.issue_access(user_id=user_id, device_id=device_id, now=now),
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


class StartSession(Command):
    """Login, after the adapter checked the credentials: open a new refresh-token family."""

    name = "session.start"
    # Never a batch-sync op: a session answer carries tokens, and op results are kept forever.
    syncable: ClassVar[bool] = False
    device_id: str = ""

    def handle(self, ctx: Context) -> Outcome:
        assert ctx.actor.user_id is not None
        family = uuid.uuid4()
        pair = _token_pair(
            user_id=ctx.actor.user_id,
            family=family,
            device_id=self.device_id,
            now=timezone.now(),
        )
        return Outcome(status=200, body=pair, changes=[_session_change(family, None, "active")])


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
        return Outcome(
            status=204, body=None, changes=[_session_change(token.family, "active", "ended")]
        )
