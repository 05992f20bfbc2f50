"""WebSocket adapter: `WS /ws/changes` with `Sec-WebSocket-Protocol: bearer, <access token>`
or `?token=<access token>` (API.md "Sync").

After each commit the server sends `{"type": "poke", "seq": N}` and, at once, critical events
(`out_of_stock`) for locations the caller may see, `primary_changed` (API.md "Cluster") to
everyone, and `op_rejected` to the sockets of the user whose synced op was refused for want of
stock. Clients then pull `/api/v1/sync/changes`.

A socket lives no longer than the access it was opened with: it is closed with 4401 when its
token expires (the client reconnects with a fresh one) and with 4403 when its session ends
(logout, refresh-token reuse), its device is revoked or its user deactivated. Revocations are
announced after commit (`identity.services.REVOCATIONS_GROUP`): with the Redis channel layer every
process closes its sockets at once; the in-process layer reaches this process's sockets only, so
every socket also re-checks its access every `WS_ACCESS_RECHECK_S` seconds (one statement), which
bounds how long a socket elsewhere outlives a revocation.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from quartermaster.core.errors import Invalid
from quartermaster.core.events import FEED_GROUP, user_group
from quartermaster.core.types import Actor
from quartermaster.identity.auth import Access, access_of
from quartermaster.identity.invariants import device_key
from quartermaster.identity.permissions import can_see_location
from quartermaster.identity.services import REVOCATIONS_GROUP

# Close codes (RFC 6455 leaves 4000-4999 to applications): like HTTP's 401 and 403.
CLOSE_TOKEN_EXPIRED = 4401
CLOSE_ACCESS_REVOKED = 4403


class ChangesConsumer(AsyncJsonWebsocketConsumer):
    access: Access | None = None
    _watch: asyncio.Task[None] | None = None
    # The newest cluster epoch this socket was told of: each is told once, whichever process
    # (or how many of them) sent it.
    cluster_epoch: int = 0

    async def connect(self) -> None:
        token, subprotocol = _token_of(self.scope)
        self.access = await database_sync_to_async(access_of)(token) if token else None
        if self.access is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        for group in self._groups():
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept(subprotocol)
        self._watch = asyncio.create_task(self._watch_access(self.access))

    async def disconnect(self, code: int) -> None:
        if self._watch is not None:
            self._watch.cancel()
        if self.access is not None:
            for group in self._groups():
                await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if await self._closed_if_expired():
            return
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def feed_commit(self, message: dict[str, Any]) -> None:
        actor = self._actor()
        if actor is None or await self._closed_if_expired():
            return
        locations = message.get("locations")
        if locations is not None and not any(_visible(actor, loc) for loc in locations):
            return
        await self.send_json({"type": "poke", "seq": message["seq"]})
        for event in message.get("critical", []):
            if _visible(actor, event["location"]):
                await self.send_json({"type": "critical", **event, "seq": message["seq"]})

    async def cluster_event(self, message: dict[str, Any]) -> None:
        """`{"type": "critical", "event": "primary_changed", "epoch", ...}` to everyone signed
        in: every device must learn that the primary moved, wherever it works."""
        epoch = int(message["epoch"])
        if self._actor() is None or epoch <= self.cluster_epoch:
            return
        self.cluster_epoch = epoch
        await self.send_json(
            {"type": "critical", "event": message["event"], "epoch": epoch, **message["detail"]}
        )

    async def user_event(self, message: dict[str, Any]) -> None:
        """`{"type": "critical", "event": "op_rejected", ...}`: sent to this user's group only."""
        if self._actor() is None or await self._closed_if_expired():
            return
        await self.send_json({"type": "critical", "event": message["event"], **message["detail"]})

    async def access_revoked(self, message: dict[str, Any]) -> None:
        access = self.access
        if access is not None and _revokes(message, access):
            await self._end(CLOSE_ACCESS_REVOKED)

    async def _watch_access(self, access: Access) -> None:
        """Close at the token's expiry (4401), or at the first re-check that finds the access
        revoked (4403), whichever comes first."""
        interval = max(float(settings.WS_ACCESS_RECHECK_S), 0.05)
        while True:
            left = access.claims.expires_at - time.time()
            if left <= 0:
                await self._end(CLOSE_TOKEN_EXPIRED)
                return
            await asyncio.sleep(min(left, interval))
            if time.time() >= access.claims.expires_at:
                continue  # expired meanwhile: closed as such above
            if not await database_sync_to_async(access.still_valid)():
                await self._end(CLOSE_ACCESS_REVOKED)
                return

    async def _closed_if_expired(self) -> bool:
        access = self.access
        if access is not None and time.time() >= access.claims.expires_at:
            await self._end(CLOSE_TOKEN_EXPIRED)
        return self.access is None

    async def _end(self, code: int) -> None:
        """Stop hearing anything and close with `code`, once."""
        if self.access is None:
            return
        groups = self._groups()
        self.access = None
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        if self._watch is not None and self._watch is not asyncio.current_task():
            self._watch.cancel()
        await self.close(code)

    def _groups(self) -> list[str]:
        """The groups this socket listens on while its access lasts."""
        groups = [FEED_GROUP, REVOCATIONS_GROUP]
        actor = self._actor()
        if actor is not None and actor.user_id is not None:
            groups.append(user_group(actor.user_id))
        return groups

    def _actor(self) -> Actor | None:
        return None if self.access is None else self.access.actor


def _revokes(message: dict[str, Any], access: Access) -> bool:
    """Whether a revocation announcement names this socket's session, device or user."""
    claims = access.claims
    return (
        message.get("session") == str(claims.family)
        or message.get("user") == str(claims.user_id)
        or bool(claims.device_id and message.get("device_key") == _key_of(claims.device_id))
    )


def _key_of(device_id: str) -> str:
    try:
        return device_key(device_id)
    except Invalid:  # an id from before ids were cleaned: only its exact spelling matches
        return device_id


BEARER_SUBPROTOCOL = "bearer"


def _token_of(scope: dict[str, Any]) -> tuple[str, str | None]:
    """The access token and the subprotocol to accept: from `Sec-WebSocket-Protocol: bearer,
    <token>` (kept out of URLs and access logs; the server answers with `bearer`), else from
    `?token=` (older clients)."""
    offered = list(scope.get("subprotocols") or [])
    if len(offered) == 2 and offered[0] == BEARER_SUBPROTOCOL:
        return offered[1], BEARER_SUBPROTOCOL
    query = parse_qs(scope.get("query_string", b"").decode())
    return (query.get("token") or [""])[0], None


def _visible(actor: Actor, location_id: str) -> bool:
    return can_see_location(actor, UUID(location_id))
