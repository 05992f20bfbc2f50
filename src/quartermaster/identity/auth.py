"""Bearer authentication for the HTTP and WebSocket adapters: access token → Actor.

Per request: decode and verify the token (no database), load the active user and their
locations, refuse a revoked device, count the user's requests against their rate limit, and
note the device as seen (at most one write a minute).
"""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from quartermaster.core import ratelimit
from quartermaster.core.errors import NotAuthenticated
from quartermaster.core.http import api_user_limit
from quartermaster.core.types import Actor
from quartermaster.identity import tokens
from quartermaster.identity.selectors import load_actor
from quartermaster.identity.services import touch_device


def actor_from_access_token(token: str) -> Actor | None:
    try:
        claims = tokens.decode(token, expected_type="access")
    except NotAuthenticated:
        return None
    actor = load_actor(claims.user_id, device_id=claims.device_id)
    if actor is not None:
        touch_device(actor.device_id)
    return actor


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        actor = actor_from_access_token(token)
        if actor is not None:
            # Raises RateLimited (429 with Retry-After), rendered by core.http.
            ratelimit.check(api_user_limit(), str(actor.user_id))
        return actor
