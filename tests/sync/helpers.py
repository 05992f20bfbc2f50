"""Building sync ops and batches for the tests."""

from __future__ import annotations

import uuid
from typing import Any

from tests.conftest import Api, Reply

DEVICE = "truck-07"


def op(op_type: str, payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
    return {"op_id": str(uuid.uuid4()), "type": op_type, "payload": payload or {}, **fields}


def send(
    api: Api, ops: list[dict[str, Any]], *, device: str = DEVICE, dry_run: bool = False
) -> Reply:
    path = "/api/v1/sync/batch" + ("?dry_run=true" if dry_run else "")
    return api.post(path, {"device_id": device, "ops": ops})


def statuses(reply: Reply) -> list[int]:
    return [result["status"] for result in reply.body["results"]]
