"""An open WebSocket lives no longer than its access: closed with 4401 when its token expires and
4403 when its session ends, its device is revoked or its user deactivated, in this process at once
(the revocation is announced after commit) and elsewhere at the next periodic re-check.

Driven through the consumer's ASGI interface; requests and commands run for real on the test
database. Each test's scenario runs under `async_to_sync`, so the consumer's database calls come
back to the test's thread and see what it wrote; revocations run their after-commit
announcements as a commit does (`django_capture_on_commit_callbacks` inside a test transaction)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from asgiref.testing import ApplicationCommunicator
from channels.routing import URLRouter
from django.conf import settings
from django.test import Client
from django.urls import path
from django.utils import timezone

from quartermaster.consumers import ChangesConsumer
from quartermaster.core.commands import execute
from quartermaster.core.types import SYSTEM_ACTOR, Context
from quartermaster.identity import tokens
from quartermaster.identity.models import RefreshToken, User
from quartermaster.identity.services import UpdateUser
from tests.conftest import Api, create_user, login

# On PostgreSQL the consumer's database calls close the connection they ran on (Channels'
# close_old_connections, pooled connections are not kept), which cannot happen inside the test's
# transaction: there the test commits for real (PostgreSQL flushes the append-only audit table by
# TRUNCATE; SQLite, by DELETE, cannot, so it keeps the test transaction).
ON_POSTGRES = os.environ.get("QM_DATABASE_URL", "").startswith("postgres")
pytestmark = pytest.mark.django_db(transaction=ON_POSTGRES, serialized_rollback=ON_POSTGRES)

APPLICATION = URLRouter([path("ws/changes", ChangesConsumer.as_asgi())])
CLOSED_EXPIRED = {"type": "websocket.close", "code": 4401}
CLOSED_REVOKED = {"type": "websocket.close", "code": 4403}


class Socket(ApplicationCommunicator):  # type: ignore[misc]
    """A client of `WS /ws/changes` speaking ASGI to the consumer (channels.testing's
    communicator without its live-server module, which needs daphne)."""

    def __init__(self, token: str) -> None:
        scope = {
            "type": "websocket",
            "path": "/ws/changes",
            "query_string": b"",
            "headers": [],
            "subprotocols": ["bearer", token],
        }
        super().__init__(APPLICATION, scope)

    async def connect(self) -> tuple[bool, str | None]:
        await self.send_input({"type": "websocket.connect"})
        answer = await self.receive_output(5)
        return answer["type"] == "websocket.accept", answer.get("subprotocol")

    async def receive_json_from(self, timeout: float = 5) -> dict[str, Any]:
        answer = await self.receive_output(timeout)
        assert answer["type"] == "websocket.send", answer
        return dict(json.loads(answer["text"]))

    async def disconnect(self) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.wait(1)


def in_thread(function: Callable[..., Any]) -> Callable[..., Any]:
    return sync_to_async(function, thread_sensitive=True)


async def open_socket(token: str) -> Socket:
    socket = Socket(token)
    connected, subprotocol = await socket.connect()
    assert (connected, subprotocol) == (True, "bearer")
    return socket


@pytest.fixture
def committed(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """committed(f) → f run in the test's thread with its after-commit work done, as a commit
    would: revocations announce themselves then."""

    def wrap(function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            with django_capture_on_commit_callbacks(execute=True):
                return function(*args, **kwargs)

        return in_thread(run)

    return wrap


def _admin_and_driver(locations: tuple[str, ...] = ()) -> tuple[Api, dict[str, Any]]:
    create_user("admin", "admin")
    create_user("driver", "staff", locations=locations)
    return Api(Client(), login("admin")["access"]), login("driver", device_id="truck-07")


async def _poked(socket: Socket, admin: Api, committed: Any) -> bool:
    await committed(admin.post)("/api/v1/items", {"name": f"probe {uuid.uuid4()}", "qty": 1})
    return bool((await socket.receive_json_from(timeout=5))["type"] == "poke")


def test_logout_closes_the_sessions_socket_with_4403_and_no_other(
    committed: Any, default_location_id: str
) -> None:
    admin, driver = _admin_and_driver((default_location_id,))
    other = login("driver")
    truck = Api(Client(), driver["access"])

    async def scenario() -> None:
        socket, other_socket = (
            await open_socket(driver["access"]),
            await open_socket(other["access"]),
        )

        reply = await committed(truck.post)("/api/v1/auth/logout", {"refresh": driver["refresh"]})

        assert reply.status == 204
        assert await socket.receive_output(5) == CLOSED_REVOKED
        assert await _poked(other_socket, admin, committed)
        assert await socket.receive_nothing()
        await other_socket.disconnect()

    async_to_sync(scenario)()


def test_refresh_token_reuse_closes_the_familys_sockets(committed: Any) -> None:
    _, driver = _admin_and_driver()
    anon = Api(Client())
    rotated = anon.post("/api/v1/auth/refresh", {"refresh": driver["refresh"]})

    async def scenario() -> None:
        socket = await open_socket(rotated.body["access"])

        reuse = await committed(anon.post)("/api/v1/auth/refresh", {"refresh": driver["refresh"]})

        assert reuse.body["code"] == "token_reused"
        assert await socket.receive_output(5) == CLOSED_REVOKED

    async_to_sync(scenario)()


def test_revoking_a_device_closes_its_sockets(committed: Any) -> None:
    admin, driver = _admin_and_driver()

    async def scenario() -> None:
        socket = await open_socket(driver["access"])

        reply = await committed(admin.post)("/api/v1/devices/TRUCK-07/revoke")

        assert reply.status == 200
        assert await socket.receive_output(5) == CLOSED_REVOKED

    async_to_sync(scenario)()


def test_deactivating_a_user_closes_their_sockets(committed: Any) -> None:
    _, driver = _admin_and_driver()

    def deactivate() -> None:
        user = User.objects.get(username="driver")
        command = UpdateUser(user=user.id, role="staff", is_active=False)
        assert execute(command, Context(actor=SYSTEM_ACTOR)).status == 200

    async def scenario() -> None:
        socket = await open_socket(driver["access"])

        await committed(deactivate)()

        assert await socket.receive_output(5) == CLOSED_REVOKED

    async_to_sync(scenario)()


def test_a_revocation_made_elsewhere_closes_the_socket_at_the_next_recheck(
    committed: Any, settings: Any, default_location_id: str
) -> None:
    admin, driver = _admin_and_driver((default_location_id,))
    settings.WS_ACCESS_RECHECK_S = 0.2

    def revoke_elsewhere() -> None:
        # As another server process's logout does: committed there, not announced here.
        RefreshToken.objects.filter(user__username="driver").update(revoked_at=timezone.now())

    async def scenario() -> None:
        socket = await open_socket(driver["access"])
        assert await _poked(socket, admin, committed)

        await in_thread(revoke_elsewhere)()

        assert await socket.receive_output(5) == CLOSED_REVOKED

    async_to_sync(scenario)()


def test_a_socket_closes_with_4401_when_its_token_expires() -> None:
    _admin_and_driver()
    pair = login("driver")
    claims = tokens.decode(pair["refresh"], expected_type="refresh")
    assert claims.family is not None
    # Issued so that it has one to two seconds left (token times are whole seconds), in a live
    # session.
    issued = timezone.now() - timedelta(seconds=settings.ACCESS_TOKEN_TTL_S - 2)
    token = tokens.issue_access(
        user_id=claims.user_id, family=claims.family, device_id="", now=issued
    )

    async def scenario() -> None:
        socket = await open_socket(token)

        assert await socket.receive_output(5) == CLOSED_EXPIRED

    async_to_sync(scenario)()
