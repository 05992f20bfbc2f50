"""Bearer authentication for the HTTP and WebSocket adapters: access token → Actor.

Per request: decode and verify the token (no database); then, in one statement, load the active
user and their locations and refuse a revoked device or an ended session (logout, refresh-token
reuse, device revocation): a revocation counts from the very next request, in every process.
Then count the user's requests against their rate limit, and note the device as seen (at most
one write a minute).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from ninja.security import HttpBearer

from quartermaster.core import ratelimit
from quartermaster.core.errors import NotAuthenticated
from quartermaster.core.http import api_user_limit
from quartermaster.core.types import Actor
from quartermaster.identity import tokens
from quartermaster.identity.selectors import load_actor
from quartermaster.identity.services import touch_device


@dataclass(frozen=True)
class Access:
    """Who a valid access token lets in, and what it was issued under (for re-checks)."""

    actor: Actor
    claims: tokens.Claims

    def still_valid(self) -> bool:
        """The session, device and user are still live (one statement; an expired token is
        the caller's to check against `claims.expires_at`)."""
        return _load(self.claims) is not None


def _load(claims: tokens.Claims, *, session_may_be_ended: bool = False) -> Actor | None:
    session = None if session_may_be_ended else claims.family
    return load_actor(claims.user_id, device_id=claims.device_id, session=session)


def access_of(token: str, *, session_may_be_ended: bool = False) -> Access | None:
    try:
        claims = tokens.decode(token, expected_type="access")
    except NotAuthenticated:
        return None
    actor = _load(claims, session_may_be_ended=session_may_be_ended)
    if actor is None:
        return None
    touch_device(actor.device_id)
    return Access(actor, claims)


def actor_from_access_token(token: str) -> Actor | None:
    access = access_of(token)
    return None if access is None else access.actor


class BearerAuth(HttpBearer):
    """The API's bearer check. `session_may_be_ended` is for logout alone: a valid access token
    whose session has ended still authenticates there, so logging out twice, or after the session
    was revoked, answers 204 as the first time did. A deactivated user, a revoked device and a bad
    or expired token are refused everywhere."""

    def __init__(self, *, session_may_be_ended: bool = False) -> None:
        super().__init__()
        self.session_may_be_ended = session_may_be_ended

    def __call__(self, request: HttpRequest) -> Actor | None:
        """ninja's HttpBearer reading the header from `request.META`: the same scheme check
        and token, without building `request.headers` (every header parsed) per request."""
        scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme.lower() != self.openapi_scheme:
            # (ninja also logs the whole header here under DEBUG: a credential, so not here.)
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        access = access_of(token, session_may_be_ended=self.session_may_be_ended)
        if access is None:
            return None
        # Raises RateLimited (429 with Retry-After), rendered by core.http.
        ratelimit.check(api_user_limit(), str(access.actor.user_id))
        return access.actor
