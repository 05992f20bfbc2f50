"""Forming the batch's units, in order: a lone op, a group, or a bulk run.

Groups are all-or-nothing: a group's contiguous ops run in one transaction (`sync.units`).

Runs in bulk: consecutive ungrouped fresh ops of one type whose command can run many at once
(`Command.bulk`: `sale.record`, `item.adjust`, `market.entry.create`, `inspection.update`) form one unit, run
together through `core.commands.execute_many` in one transaction. A run stops before an op that names a temp id
created inside the run (known only once the run is written), that creates a temp id the run
already creates, whose op id the run already holds or has an answer, or that is refused before
its command runs (answered alone, in order). `QM_SYNC_BULK=0` turns bulk runs off.

A unit is formed when the batch reaches it, after the units before it settled, because the
temp ids its ops name may have been created just before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import takewhile

from django.conf import settings

from quartermaster.core.commands import Command
from quartermaster.sync import invariants
from quartermaster.sync.memory import BatchMemory
from quartermaster.sync.ops import MAX_OPS, Op
from quartermaster.sync.parse import ParsedOp, Ready, Refused, parse


@dataclass(frozen=True)
class Lone:
    """One op in its own transaction; `parsed` when planning parsed it already."""

    op: Op
    parsed: ParsedOp | None = None

    @property
    def ops(self) -> Sequence[Op]:
        return (self.op,)


@dataclass(frozen=True)
class Group:
    """The contiguous ops of one group: applied all together or not at all."""

    ops: Sequence[Op]


@dataclass(frozen=True)
class BulkRun:
    """Two or more parsed ops of one bulk command class, run in one set of statements."""

    run: Sequence[Ready]

    @property
    def ops(self) -> Sequence[Op]:
        return tuple(ready.op for ready in self.run)


Unit = Lone | Group | BulkRun


def next_unit(memory: BatchMemory, ops: Sequence[Op], start: int) -> Unit:
    """The unit that starts at `ops[start]`."""
    first = ops[start]
    if first.group is not None:
        return Group(tuple(takewhile(lambda op: op.group == first.group, ops[start:])))
    if not _may_run_in_bulk(ops, start):
        return Lone(first)
    parsed = parse_bulk_run(memory, ops[start : start + MAX_OPS])
    if len(parsed) > 1:
        return BulkRun(tuple(ready for ready in parsed if isinstance(ready, Ready)))
    return Lone(first, parsed[0] if parsed else None)


def _may_run_in_bulk(ops: Sequence[Op], start: int) -> bool:
    first = ops[start]
    command_class = Command.registry.get(first.type)
    if not settings.SYNC_BULK or command_class is None or not command_class.bulk:
        return False
    # A run of one is answered alone, without parsing it twice.
    following = ops[start + 1] if start + 1 < len(ops) else None
    return following is not None and following.type == first.type and following.group is None


def parse_bulk_run(memory: BatchMemory, ops: Sequence[Op]) -> list[ParsedOp]:
    """Parse the leading ops of `ops` that can run in bulk together: Ready ones, or the first op
    alone when it is refused (so that it is parsed once); [] when the first has an answer."""
    run: list[ParsedOp] = []
    op_ids: set[str] = set()
    created: set[str] = set()  # temp ids the run's ops create
    for op in ops:
        if op.group is not None or op.type != ops[0].type or op.op_id in op_ids:
            break
        if memory.replay(op) is not None or op.client_temp_id in created:
            break
        if created and not created.isdisjoint(invariants.strings_in(op.payload)):
            break  # it names what the run creates: known only once the run is written
        parsed = parse(op, memory.actor, memory.temp_ids)
        if isinstance(parsed, Refused):
            if not run:
                run.append(parsed)
            break
        run.append(parsed)
        op_ids.add(op.op_id)
        if op.client_temp_id:
            created.add(op.client_temp_id)
    return run
