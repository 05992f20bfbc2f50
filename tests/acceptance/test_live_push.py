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


def test_an_op_refused_for_want_of_stock_tells_its_user_at_once(server: str) -> None:  # noqa: F811
    """The master tells the user's sockets that the last unit went elsewhere (issue 14): a
    `critical` `op_rejected`, to that user only; a dry run and a replay tell nobody."""
    admin = login(server, "admin", "admin-demo-pass")
    other = login(server, "manager", "manager-demo-pass")
    item = httpx.post(
        f"{server}/api/v1/items", json={"name": "the last scarf", "qty": 1}, headers=admin
    ).json()
    ops = [
        {"op_id": f"scarf-{n}", "type": "item.adjust",
         "payload": {"item_id": item["id"], "delta": -1}}
        for n in (1, 2)
    ]  # fmt: skip
    batch = {"device_id": "till-scarf", "ops": ops}

    def sync(params: dict[str, str] | None = None) -> list[int]:
        reply = httpx.post(f"{server}/api/v1/sync/batch", json=batch, headers=admin, params=params)
        return [result["status"] for result in reply.json()["results"]]

    with (
        connect(ws_url(server, token_of(admin))) as mine,
        connect(ws_url(server, token_of(other))) as theirs,
    ):
        assert sync({"dry_run": "true"}) == [200, 400]
        with pytest.raises(TimeoutError):
            mine.recv(timeout=1)
        assert sync() == [200, 400]
        heard = [receive(mine) for _ in range(3)]
        assert sync() == [200, 400]  # replayed: told once already
        rejections = [m for m in heard if m.get("event") == "op_rejected"]
        others = [json.loads(theirs.recv(timeout=2)) for _ in range(2)]
        with pytest.raises(TimeoutError):
            mine.recv(timeout=1)

    assert rejections == [
        {"type": "critical", "event": "op_rejected", "op_id": "scarf-2", "op_type": "item.adjust",
         "device_id": "till-scarf", "status": 400, "code": "invalid",
         "error": "qty cannot go below 0"}
    ]  # fmt: skip
    # The other user hears the sale (a poke, out of stock), never the refusal of someone else's op.
    assert all(m.get("event") != "op_rejected" for m in others)


def token_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")
