"""WebSocket adapter: `WS /ws/changes` with `Sec-WebSocket-Protocol: bearer, <access token>`
or `?token=<access token>` (API.md "Sync").

After each commit the server sends `{"type": "poke", "seq": N}` and, at once, critical events
(`out_of_stock`) for locations the caller may see, and `primary_changed` (API.md "Cluster") to everyone. Clients then pull `/api/v1/sync/changes`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from quartermaster.core.events import FEED_GROUP
from quartermaster.core.types import Actor
from quartermaster.identity.auth import actor_from_access_token
from quartermaster.identity.permissions import can_see_location


class ChangesConsumer(AsyncJsonWebsocketConsumer):
    actor: Actor | None = None
    # The newest cluster epoch this socket was told of: each is told once, whichever process
    # (or how many of them) sent it.
    cluster_epoch: int = 0

    async def connect(self) -> None:
        token, subprotocol = _token_of(self.scope)
        self.actor = await database_sync_to_async(actor_from_access_token)(token) if token else None
        if self.actor is None:
            await self.close()  # before accept: the handshake is refused (HTTP 403)
            return
        await self.channel_layer.group_add(FEED_GROUP, self.channel_name)
        await self.accept(subprotocol)

    async def disconnect(self, code: int) -> None:
        if self.actor is not None:
            await self.channel_layer.group_discard(FEED_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def feed_commit(self, message: dict[str, Any]) -> None:
        actor = self.actor
        if actor is None:
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
        if self.actor is None or epoch <= self.cluster_epoch:
            return
        self.cluster_epoch = epoch
        await self.send_json(
            {"type": "critical", "event": message["event"], "epoch": epoch, **message["detail"]}
        )


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
