"""An in-memory server speaking the sync contract of API.md, behind httpx.MockTransport.

Small on purpose: items only (`item.create`, `item.adjust`), with the contract's guarantees (op
ids replayed, temp ids per device, 2xx/4xx final), plus switches to inject the faults the client
must survive: the link down, a response lost after the server applied the batch, a 5xx op.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_OPS = 100


@dataclass
class FakeServer:
    users: dict[str, str] = field(default_factory=lambda: {"driver1": "pw"})
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    feed: list[dict[str, Any]] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    temp_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    access_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    logins: int = 0
    refreshes: int = 0
    # Fault switches.
    link_down_for: int = 0  # the next N requests fail to connect
    lose_next_responses: int = 0  # the next N batches are applied, then their answer is lost
    batch_status: int | None = None  # answer every batch with this status (e.g. 503, 400)
    failing_types: set[str] = field(default_factory=set)  # ops of these types get 500

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.link_down_for:
            self.link_down_for -= 1
            raise httpx.ConnectError("link down", request=request)
        path = request.url.path
        if path == "/api/v1/auth/login":
            return self.login(json.loads(request.content))
        if path == "/api/v1/auth/refresh":
            return self.refresh(json.loads(request.content))
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.access_tokens:
            return httpx.Response(401, json={"error": "bad token", "code": "not_authenticated"})
        if path == "/api/v1/sync/batch":
            response = self.batch(json.loads(request.content))
            if self.lose_next_responses and response.status_code in (200, 207):
                self.lose_next_responses -= 1
                raise httpx.ReadError("connection reset after commit", request=request)
            return response
        if path == "/api/v1/sync/changes":
            return self.changes(request.url.params)
        return httpx.Response(404, json={"error": "not_found", "code": "not_found"})

    # --- auth --------------------------------------------------------------------------------

    def _pair(self) -> httpx.Response:
        access, refresh = f"a-{uuid.uuid4().hex}", f"r-{uuid.uuid4().hex}"
        self.access_tokens.add(access)
        self.refresh_tokens.add(refresh)
        body = {"access": access, "refresh": refresh, "token_type": "Bearer", "expires_in": 900}
        return httpx.Response(200, json=body)

    def login(self, body: dict[str, Any]) -> httpx.Response:
        if self.users.get(body.get("username", "")) != body.get("password"):
            return httpx.Response(401, json={"error": "bad credentials", "code": "bad_login"})
        self.logins += 1
        return self._pair()

    def refresh(self, body: dict[str, Any]) -> httpx.Response:
        if body.get("refresh") not in self.refresh_tokens:
            return httpx.Response(401, json={"error": "spent", "code": "not_authenticated"})
        self.refresh_tokens.discard(body["refresh"])
        self.refreshes += 1
        return self._pair()

    def expire_access_tokens(self) -> None:
        self.access_tokens.clear()

    # --- sync --------------------------------------------------------------------------------

    def batch(self, body: dict[str, Any]) -> httpx.Response:
        ops = body["ops"]
        if len(ops) > MAX_OPS:
            return httpx.Response(413, json={"error": "too many ops", "code": "too_large"})
        if self.batch_status is not None:
            return httpx.Response(self.batch_status, json={"error": "injected", "code": "x"})
        self.batches.append(ops)
        device = body["device_id"]
        results = [self.run_op(device, op) for op in ops]
        all_ok = all(200 <= r["status"] < 300 for r in results)
        return httpx.Response(200 if all_ok else 207, json={"results": results, "cursor": "0"})

    def run_op(self, device: str, op: dict[str, Any]) -> dict[str, Any]:
        if op["op_id"] in self.results:
            return self.results[op["op_id"]]
        if op["type"] in self.failing_types:
            return {"op_id": op["op_id"], "status": 500, "body": {"error": "boom"}, "id_map": {}}

        def resolve(value: Any) -> Any:
            return self.temp_ids.get((device, value), value) if isinstance(value, str) else value

        payload = {key: resolve(value) for key, value in op["payload"].items()}
        status, body_out, id_map = 400, {"error": "unknown op type", "code": "invalid"}, {}
        if op["type"] == "item.create":
            item = {"id": str(uuid.uuid4()), "name": payload["name"], "qty": payload["qty"]}
            self.items[item["id"]] = item
            self._feed("upsert", item)
            status, body_out = 201, item
            if op.get("client_temp_id"):
                self.temp_ids[(device, op["client_temp_id"])] = item["id"]
                id_map = {op["client_temp_id"]: item["id"]}
        elif op["type"] == "item.adjust":
            item = self.items.get(payload["item_id"])
            if item is None:
                status, body_out = 404, {"error": "not_found", "code": "not_found"}
            elif item["qty"] + payload["delta"] < 0:
                status = 409
                body_out = {"error": "not enough stock", "code": "insufficient_stock"}
            else:
                item["qty"] += payload["delta"]
                self._feed("upsert", item)
                status, body_out = 200, dict(item)
        elif op["type"] == "item.delete":
            item = self.items.pop(payload["item_id"], None)
            if item is not None:
                self._feed("delete", item)
            status, body_out = 204, None
        if 200 <= status < 300:
            self.applied.append(op["op_id"])
        result = {"op_id": op["op_id"], "status": status, "body": body_out, "id_map": id_map}
        self.results[op["op_id"]] = result
        return result

    def _feed(self, op: str, item: dict[str, Any]) -> None:
        seq = len(self.feed) + 1
        data = dict(item) if op == "upsert" else None
        self.feed.append(
            {"seq": seq, "entity": "item", "id": item["id"], "op": op, "version": seq, "data": data}
        )

    def changes(self, params: httpx.QueryParams) -> httpx.Response:
        since = int(params.get("since") or 0)
        limit = int(params.get("limit") or 50)
        after = [entry for entry in self.feed if entry["seq"] > since]
        page = after[:limit]
        cursor = page[-1]["seq"] if page else since
        body = {"changes": page, "cursor": str(cursor), "has_more": len(after) > limit}
        return httpx.Response(200, json=body)
