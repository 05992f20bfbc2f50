"""What a batch knows as it runs: the answers stored before it began, the outcome of each op
settled so far, and what each temp id stands for.

The idempotency record is the one source of truth for an op's outcome: an op id with a stored
answer (from an earlier batch, or a concurrent copy of this one) answers it and applies nothing,
and an op id seen earlier in the batch answers what it answered there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from quartermaster.core.types import Actor, Context
from quartermaster.sync.ops import Op, OpResult
from quartermaster.sync.selectors import OP_SCOPE, StoredAnswer, stored_op_results
from quartermaster.sync.temp_ids import TempIds


@dataclass
class BatchMemory:
    actor: Actor
    temp_ids: TempIds
    stored: dict[str, StoredAnswer]
    done: dict[str, OpResult] = field(default_factory=dict)

    def context(self, op: Op) -> Context:
        """What the op's command runs under: keyed by its op id, forever."""
        return Context(
            actor=self.actor,
            idempotency_key=op.op_id,
            idempotency_scope=OP_SCOPE,
            client_ts=op.client_ts,
        )

    def replay(self, op: Op) -> OpResult | None:
        """The op's answer if its op id has one already (stored, or earlier in this batch)."""
        if op.op_id in self.done:
            return replace(self.done[op.op_id], replayed=True)
        stored = self.stored.get(op.op_id)
        if stored is not None:
            id_map = self.temp_ids.created_by(op.op_id)
            return OpResult(op.op_id, stored.status, stored.body, id_map, replayed=True)
        return None

    def settle(self, op: Op, result: OpResult) -> None:
        """After the op's transaction ended: remember its outcome for the rest of the batch."""
        self.done[op.op_id] = result
        self.temp_ids.settle(op, result)


def load(actor: Actor, device_id: str, ops: Sequence[Op]) -> BatchMemory:
    """One query for the stored answers, one for the temp ids, whatever the batch size."""
    stored = stored_op_results(owner_id=actor.user_id, op_ids={op.op_id for op in ops})
    return BatchMemory(actor=actor, temp_ids=TempIds.load(device_id, ops), stored=stored)
