"""Answering one op inside the caller's transaction, with what its op id holds.

Each op id is claimed through core, whether its command runs (`execute`) or the op is refused
before it (`store_refusal`, with core's one fingerprint rule, `core.commands.key_fingerprint`).
So an op answers the outcome stored first: its own, or that of a concurrent copy of the batch
(a device retrying after a dropped response while the first copy still runs), and 503
`op_in_flight` ("send it again") while that copy holds the op id in flight.
"""

from __future__ import annotations

from dataclasses import replace

from quartermaster.core.commands import execute, store_final
from quartermaster.core.errors import IdempotencyKeyInFlight
from quartermaster.core.types import Response
from quartermaster.sync.errors import OpInFlight
from quartermaster.sync.memory import BatchMemory
from quartermaster.sync.ops import Op, OpResult
from quartermaster.sync.parse import ParsedOp, Ready, Refused


def answer(memory: BatchMemory, parsed: ParsedOp) -> OpResult:
    """Run or refuse one op inside the caller's transaction; its answer is stored if final."""
    if isinstance(parsed, Ready):
        return _run_command(memory, parsed)
    return _refuse(memory, parsed)


def _run_command(memory: BatchMemory, ready: Ready) -> OpResult:
    op = ready.op
    response = execute(ready.command, memory.context(op))
    if isinstance(response.refusal, IdempotencyKeyInFlight):
        return OpResult.refused(op.op_id, OpInFlight())
    # execute stored what the handler decided, or answers what was stored first (replayed).
    result = OpResult.of_response(op.op_id, response)
    if result.final:
        result = replace(result, id_map=memory.temp_ids.save(op, result))
    return result


def _refuse(memory: BatchMemory, refused: Refused) -> OpResult:
    op = refused.op
    result = OpResult.refused(op.op_id, refused.error)
    if not result.final:
        return result  # "send it again": nothing is stored
    # A concurrent copy of this op may have stored its outcome (even applied it): then that
    # outcome is the answer, and a create it applied maps its temp id.
    result = store_refusal(memory, op, result)
    if result.replayed or (refused.by_command and result.final):
        result = replace(result, id_map=memory.temp_ids.save(op, result))
    return result


def store_refusal(memory: BatchMemory, op: Op, result: OpResult) -> OpResult:
    """Store a final refusal under the op id, inside the caller's transaction, and return what
    the op id answers: this refusal, or the outcome a concurrent copy of the batch stored first,
    or 503 while that copy still holds the op in flight."""
    response = store_final(op.type, memory.context(op), Response(result.status, result.body))
    if isinstance(response.refusal, IdempotencyKeyInFlight):
        return OpResult.refused(op.op_id, OpInFlight())
    if response.replayed or response.refusal is not None:
        return OpResult.of_response(op.op_id, response)  # stored first, or why it cannot be
    return result  # stored: ours
