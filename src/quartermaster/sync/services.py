"""Batch sync: apply a device's queued ops in order, each through `core.commands.execute`.

A batch is a short state machine. Load what the batch can know up front (`sync.memory`: the
answers stored under its op ids, the temp ids it names); then, from the first op to the last,
form the next unit (`sync.plan`: a lone op, a group, a bulk run), run it and settle its ops
(`sync.units`); each op is parsed once, when its unit is reached, into a validated command or a
typed refusal (`sync.parse`) and answered with what its op id holds (`sync.answers`); last,
note which device sequence numbers arrived (`sync.devices`) and answer one result per op.

Where each rule lives:

- an op's status (2xx/4xx final and stored under the op id, 5xx "send it again"): `sync.ops`;
- temp ids, 424 `dependency_failed` vs 503 `dependency_not_applied`: `sync.temp_ids`;
- two copies of one batch at once, 503 `op_in_flight`: `sync.answers`;
- groups and their finality, bulk runs and their fallback: `sync.units`; how runs are formed
  and `QM_SYNC_BULK`: `sync.plan`;
- device_seq: `sync.devices`.

`dry_run` runs the whole batch inside one transaction and rolls it back: the results are what
each op would do, and nothing is stored, not even op ids, temp ids or device sequence numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction

from quartermaster.core import events, policy
from quartermaster.core.commands import exclusive
from quartermaster.core.types import Actor
from quartermaster.sync import invariants, memory, plan, units
from quartermaster.sync.devices import record_device_seqs, register_device
from quartermaster.sync.errors import BatchTooLarge
from quartermaster.sync.ops import MAX_OPS, Op, OpResult
from quartermaster.sync.selectors import current_feed_seq


@dataclass(frozen=True)
class BatchResult:
    results: list[OpResult]
    cursor: int
    dry_run: bool

    @property
    def all_succeeded(self) -> bool:
        return all(result.succeeded for result in self.results)


def apply_batch(*, actor: Actor, device_id: str, ops: Sequence[Op], dry_run: bool) -> BatchResult:
    """Apply `ops` in order for `actor` on `device_id` and return one result per op."""
    policy.authorize(actor, "sync.batch")
    if len(ops) > MAX_OPS:
        raise BatchTooLarge(f"at most {MAX_OPS} ops per batch")
    invariants.check_groups_contiguous([op.group for op in ops])
    actor = replace(actor, device_id=device_id)
    # The batch runs its own transactions: it holds the process's writer baton meanwhile.
    with exclusive():
        if not dry_run:
            return _run(actor, device_id, ops)
        with transaction.atomic():
            result = _run(actor, device_id, ops)
            transaction.set_rollback(True)
    return replace(result, dry_run=True)


def _run(actor: Actor, device_id: str, ops: Sequence[Op]) -> BatchResult:
    stream = register_device(actor, device_id)
    known = memory.load(actor, device_id, ops)
    results: list[OpResult] = []
    while len(results) < len(ops):
        unit = plan.next_unit(known, ops, start=len(results))
        results.extend(units.run(known, unit))
    record_device_seqs(
        stream, [op.device_seq for op, result in zip(ops, results, strict=True) if result.final]
    )
    _tell_out_of_stock(actor, device_id, ops, results)
    return BatchResult(results=results, cursor=current_feed_seq(), dry_run=False)


def _tell_out_of_stock(
    actor: Actor, device_id: str, ops: Sequence[Op], results: Sequence[OpResult]
) -> None:
    """The master tells the user at once that an op of theirs was refused for want of stock
    (the last unit went to another till first): `op_rejected` on every socket of theirs, sent
    after commit, so a dry run (rolled back) tells nobody. A replayed answer was told already."""
    if actor.user_id is None:
        return
    for op, result in zip(ops, results, strict=True):
        refusal = result.refusal
        if refusal is None or result.replayed or not refusal.out_of_stock:
            continue
        detail = {
            "op_id": op.op_id,
            "op_type": op.type,
            "device_id": device_id,
            "status": result.status,
            "code": refusal.code,
            "error": refusal.message,
        }
        events.tell_user_after_commit(actor.user_id, "op_rejected", detail)
