"""Running a unit (`sync.plan`) and settling its ops, each op answered and remembered.

A lone op runs in its own transaction. A 5xx answer (an unexpected failure included) is
"send it again later": nothing of it was applied or stored.

A group runs in one transaction, each op a savepoint inside it; a member whose op id already
has an answer answers it and takes no part (a device resending a group sends all of it, so
either every member is stored or none is). The group's finality follows the op that broke it:
if that op was rejected for good, the group is final (the others 424 `group_failed`, all the
answers stored again after the rollback, the device must record a new group to try again); if
it failed in a retryable way (5xx), nothing of the group is stored and the others fail 503
`group_not_applied`, so the device resends it.

A bulk run is one transaction: one claim of its op ids, one set of statements for their work,
one insert each for their answers, audit entries, feed rows and temp ids. Each op answers
exactly what it would alone (a sale finding too little stock still answers 409
`insufficient_stock` and the ops behind it still run). If the run cannot go in bulk (an op id
in flight or already answered by a concurrent copy, a sale by serial) or fails unexpectedly, it
is rolled back and its ops run one by one, as lone ops.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace

from django.db import transaction

from quartermaster.core.commands import BulkUnavailable, execute_many
from quartermaster.core.conflicts import VersionConflict, record_conflict_again
from quartermaster.core.types import Context
from quartermaster.sync import answers
from quartermaster.sync.errors import GroupFailed, GroupNotApplied, ServerError
from quartermaster.sync.memory import BatchMemory
from quartermaster.sync.models import TempId
from quartermaster.sync.ops import Op, OpResult
from quartermaster.sync.parse import ParsedOp, Ready, parse
from quartermaster.sync.plan import Group, Lone, Unit

logger = logging.getLogger(__name__)


def run(memory: BatchMemory, unit: Unit) -> list[OpResult]:
    """Run `unit` and settle its ops; one result per op, in order."""
    if isinstance(unit, Lone):
        return [run_lone(memory, unit.op, unit.parsed)]
    if isinstance(unit, Group):
        return run_group(memory, unit.ops)
    return run_bulk(memory, unit.run)


def run_lone(memory: BatchMemory, op: Op, parsed: ParsedOp | None = None) -> OpResult:
    replayed = memory.replay(op)
    if replayed is not None:
        return replayed
    result = _answer_in_transaction(memory, op, parsed)
    memory.settle(op, result)
    return result


def _answer_in_transaction(memory: BatchMemory, op: Op, parsed: ParsedOp | None) -> OpResult:
    """Answer `op` in a transaction (a savepoint inside a group's); 500 if it fails unexpectedly,
    with the transaction rolled back."""
    try:
        with transaction.atomic():
            if parsed is None:
                parsed = parse(op, memory.actor, memory.temp_ids)
            return answers.answer(memory, parsed)
    except Exception:
        logger.exception("sync op %s (%s) failed", op.op_id, op.type)
        return OpResult.refused(op.op_id, ServerError())


# -- a group: one transaction, all or nothing --


@dataclass(frozen=True)
class Broken:
    """Why a group rolled back: the op at `index` (of its fresh ops) answered `cause`."""

    index: int
    cause: OpResult


class _GroupBroken(Exception):
    """Raised inside a group's transaction to roll all of it back."""


def run_group(memory: BatchMemory, ops: Sequence[Op]) -> list[OpResult]:
    """A member whose op id has an answer answers it and takes no part; the fresh ones are
    applied together, or answered as a broken group."""
    replays = [memory.replay(op) for op in ops]
    fresh = [op for op, replay in zip(ops, replays, strict=True) if replay is None]
    fresh_results = iter(_run_fresh_members(memory, fresh) if fresh else [])
    return [replay if replay is not None else next(fresh_results) for replay in replays]


def _run_fresh_members(memory: BatchMemory, fresh: Sequence[Op]) -> list[OpResult]:
    outcome = _apply_together(memory, fresh)
    if isinstance(outcome, Broken):
        outcome = answer_broken_group(memory, fresh, outcome)
    for op, result in zip(fresh, outcome, strict=True):
        memory.settle(op, result)
    return outcome


def _apply_together(memory: BatchMemory, ops: Sequence[Op]) -> list[OpResult] | Broken:
    """Apply `ops` in one transaction, each in a savepoint; roll all back at the first failure."""
    applied: list[OpResult] = []
    broken: Broken | None = None
    saved = memory.temp_ids.snapshot()
    try:
        with transaction.atomic():
            for index, op in enumerate(ops):
                result = _answer_in_transaction(memory, op, None)
                if not result.succeeded:
                    broken = Broken(index, result)
                    raise _GroupBroken()
                applied.append(result)
                memory.temp_ids.map_created(op, result)  # later ops of the group may name it
    except _GroupBroken:
        assert broken is not None
        memory.temp_ids.restore(saved)
        return broken
    return applied


def answer_broken_group(memory: BatchMemory, fresh: Sequence[Op], broken: Broken) -> list[OpResult]:
    """The group rolled back: answer every fresh op, and store the answers if final."""
    broken_op = fresh[broken.index]
    group = broken_op.group or ""
    message = f"group {group!r} was not applied: op {broken_op.op_id!r} failed"
    error_class = GroupFailed if broken.cause.final else GroupNotApplied
    results = [
        replace(broken.cause, id_map={})
        if index == broken.index
        else OpResult.refused(
            op.op_id, error_class(message, failed_op_id=broken_op.op_id, group=group)
        )
        for index, op in enumerate(fresh)
    ]
    if not broken.cause.final:
        return results
    # The rollback took the stored answers with it: store the group's answers again. An op
    # whose outcome a concurrent copy stored first answers that outcome.
    with transaction.atomic():
        return [_store_again(memory, op, result) for op, result in zip(fresh, results, strict=True)]


def _store_again(memory: BatchMemory, op: Op, result: OpResult) -> OpResult:
    stored = answers.store_refusal(memory, op, result)
    stored = replace(stored, id_map=memory.temp_ids.save(op, stored))
    if not stored.replayed and isinstance(stored.refusal, VersionConflict):
        # The 409 names a conflict the rollback took away: record it again.
        ctx = Context(actor=memory.actor, client_ts=op.client_ts)
        record_conflict_again(op.type, ctx, stored.refusal)
    return stored


# -- a bulk run: one transaction, one set of statements --


def run_bulk(memory: BatchMemory, run: Sequence[Ready]) -> list[OpResult]:
    results = _apply_in_bulk(memory, run)
    if results is None:
        return [run_lone(memory, ready.op, ready) for ready in run]
    for ready, result in zip(run, results, strict=True):
        memory.settle(ready.op, result)
    return results


def _apply_in_bulk(memory: BatchMemory, run: Sequence[Ready]) -> list[OpResult] | None:
    """The run's answers, stored with its work; None when it must run op by op instead."""
    ops = [ready.op for ready in run]
    try:
        with transaction.atomic():
            responses = execute_many(
                [ready.command for ready in run], [memory.context(op) for op in ops]
            )
            results: list[OpResult] = []
            rows: list[TempId] = []
            for op, response in zip(ops, responses, strict=True):
                result = OpResult.of_response(op.op_id, response)
                id_map, row = (
                    memory.temp_ids.id_map_and_row(op, result) if result.final else ({}, None)
                )
                results.append(replace(result, id_map=id_map))
                if row is not None:
                    rows.append(row)
            memory.temp_ids.save_rows(rows)
    except BulkUnavailable:
        return None
    except Exception:
        logger.exception("sync run of %d %s ops failed; running each alone", len(ops), ops[0].type)
        return None
    return results
