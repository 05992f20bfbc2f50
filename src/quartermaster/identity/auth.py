"""Bearer authentication for the HTTP and WebSocket adapters: access token → Actor."""

from __future__ import annotations

from django.http import HttpRequest
from ninja.security import HttpBearer

from quartermaster.core.commands import Actor
from quartermaster.core.errors import NotAuthenticated
from quartermaster.identity import tokens
from quartermaster.identity.selectors import load_actor


def actor_from_access_token(token: str) -> Actor | None:
    try:
        claims = tokens.decode(token, expected_type="access")
    except NotAuthenticated:
        return None
    return load_actor(claims.user_id, device_id=claims.device_id)


class BearerAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Actor | None:
        return actor_from_access_token(token)
