"""An op as the device sent it, and what it answers.

Each op is keyed by its op id in the never-expiring "op" idempotency scope, so a replayed op
answers its first result and applies nothing. What an op's status means to the device:

- 2xx and 4xx are final: the device drops the op. Every final result is stored under the op id,
  including refusals decided before the command ran (unknown type, invalid payload, dependency
  failed, group failed), so a replay answers exactly the same, forever.
- 5xx means "send it again later": nothing is stored and nothing was applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quartermaster.core.commands import error_response
from quartermaster.core.errors import DomainError
from quartermaster.core.types import Response

MAX_OPS = 100


@dataclass(frozen=True)
class Op:
    """One queued device operation, as the device sent it."""

    op_id: str
    type: str
    payload: dict[str, Any] = field(default_factory=dict)
    client_temp_id: str | None = None
    client_ts: str = ""
    device_seq: int | None = None
    group: str | None = None
    base_version: int | None = None


@dataclass(frozen=True)
class OpResult:
    """What an op answers. `refusal`: the typed error it was refused with just now (a replayed
    answer is only what was stored), so the engine decides by class, never by the body."""

    op_id: str
    status: int
    body: Any
    id_map: dict[str, str] = field(default_factory=dict)
    replayed: bool = False
    refusal: DomainError | None = field(default=None, compare=False)

    @classmethod
    def refused(cls, op_id: str, error: DomainError) -> OpResult:
        response = error_response(error)
        return cls(op_id, response.status, response.body, refusal=error)

    @classmethod
    def of_response(cls, op_id: str, response: Response) -> OpResult:
        return cls(
            op_id,
            response.status,
            response.body,
            replayed=response.replayed,
            refusal=response.refusal,
        )

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def final(self) -> bool:
        return self.status < 500
