"""WS /ws/changes on a real server: pokes after commit, critical out-of-stock events, auth."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.acceptance.test_served_api import login, server  # noqa: F401  (module fixture)

pytestmark = pytest.mark.slow


def ws_url(base: str, token: str) -> str:
    return base.replace("http://", "ws://") + f"/ws/changes?token={token}"


def receive(socket: Any, timeout: float = 10) -> dict[str, Any]:
    return dict(json.loads(socket.recv(timeout=timeout)))


def test_a_commit_pokes_with_the_feed_seq(server: str) -> None:  # noqa: F811
    headers = login(server, "admin", "admin-demo-pass")
    token = headers["Authorization"].removeprefix("Bearer ")

    with connect(ws_url(server, token)) as socket:
        httpx.post(f"{server}/api/v1/items", json={"name": "poke me", "qty": 3}, headers=headers)
        first = receive(socket)
        httpx.post(f"{server}/api/v1/items", json={"name": "poke me 2", "qty": 3}, headers=headers)
        second = receive(socket)

    assert first["type"] == second["type"] == "poke"
    assert second["seq"] > first["seq"] > 0


def test_a_rejected_change_pokes_nobody(server: str) -> None:  # noqa: F811
    headers = login(server, "admin", "admin-demo-pass")
    token = headers["Authorization"].removeprefix("Bearer ")
    item = httpx.post(
        f"{server}/api/v1/items", json={"name": "quiet", "qty": 1}, headers=headers
    ).json()

    with connect(ws_url(server, token)) as socket:
        rejected = httpx.patch(
            f"{server}/api/v1/items/{item['id']}/qty", json={"delta": -5}, headers=headers
        )
        with pytest.raises(TimeoutError):
            socket.recv(timeout=1)

    assert rejected.status_code == 400


def test_selling_the_last_unit_sends_a_critical_event(server: str) -> None:  # noqa: F811
    headers = login(server, "driver1", "driver1-demo-pass")
    admin = login(server, "admin", "admin-demo-pass")
    item = httpx.post(
        f"{server}/api/v1/items", json={"name": "last one", "qty": 1}, headers=admin
    ).json()
    token = headers["Authorization"].removeprefix("Bearer ")

    with connect(ws_url(server, token)) as socket:
        httpx.patch(f"{server}/items/{item['id']}/qty", json={"delta": -1}, headers=headers)
        messages = [receive(socket), receive(socket)]

    poke, critical = messages
    assert poke["type"] == "poke"
    assert critical["type"] == "critical"
    assert critical["event"] == "out_of_stock"
    assert critical["item"] == item["id"]
    assert critical["seq"] == poke["seq"]


@pytest.mark.parametrize("token", ["not-a-token", ""])
def test_a_bad_token_is_refused_at_the_handshake(server: str, token: str) -> None:  # noqa: F811
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(server, token))

    assert refused.value.response.status_code == 403


def test_the_token_can_travel_in_the_subprotocol_header_instead_of_the_url(
    server: str,  # noqa: F811
) -> None:
    headers = login(server, "admin", "admin-demo-pass")
    token = headers["Authorization"].removeprefix("Bearer ")
    url = server.replace("http://", "ws://") + "/ws/changes"

    with connect(url, subprotocols=["bearer", token]) as socket:
        httpx.post(f"{server}/api/v1/items", json={"name": "by header", "qty": 1}, headers=headers)
        poke = receive(socket)
        chosen = socket.subprotocol

    assert poke["type"] == "poke"
    assert chosen == "bearer"
    with pytest.raises(InvalidStatus):
        connect(url, subprotocols=["bearer", "not-a-token"])
