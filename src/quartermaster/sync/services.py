"""Batch sync: apply a device's queued ops in order, each through `core.commands.execute`.

Each op runs in its own transaction (a group of ops in one transaction, each op a savepoint
inside it), keyed by its op id in the never-expiring "op" idempotency scope, so a replayed op
answers its first result and applies nothing. What an op's status means to the device:

- 2xx and 4xx are final: the device drops the op. Every final result is stored under the op id,
  including rejections decided here before the command ran (unknown type, invalid payload,
  dependency failed, group failed), so a replay answers exactly the same, forever.
- 5xx means "send it again later": nothing is stored and nothing was applied.

Temp ids: a payload string equal to a `client_temp_id` this device used before (in this batch
or an earlier one) is replaced by the permanent id before the command is validated. An op
naming a temp id whose creating op was rejected for good fails 424 `dependency_failed`; if the
creating op failed in a retryable way (5xx), the dependent op fails 503 `dependency_not_applied`
so that the device sends both again (a final 424 there would lose the dependent op).

Groups are all-or-nothing and their finality follows the op that broke them: if an op was
rejected for good, the group is final (the others 424 `group_failed`, all results stored, the
device must record a new group to try again); if an op failed in a retryable way (5xx), nothing
of the group is stored and the others fail 503 `group_not_applied`, so the device resends it.

Two copies of one batch may run at once (a device retrying after a dropped response while the
first copy still runs). Each op id is claimed through core, whether the command runs or the op
is refused before it (one fingerprint rule, `core.commands.key_fingerprint`), so a copy answers
an op with the outcome stored first: a replayed create resolves its temp id for the ops behind
it like a fresh one, a rejection this copy would store answers the other copy's stored outcome
instead, and an op the other copy holds in flight is 503 `op_in_flight` (send it again).

Runs in bulk: consecutive ungrouped fresh ops of one type whose command can run many at once
(`Command.bulk`: `sale.record`, `item.adjust`) run together through `core.commands.execute_many`, in one
transaction: one claim of their op ids, one set of statements for their work, one insert each
for their answers, audit entries, feed rows and temp ids. Each op answers exactly what it would
alone (a sale finding too little stock still answers 409 `insufficient_stock` and the ops behind
it still run). A run stops before an op that names a temp id created inside the run or that is
refused before its command exists; if a run cannot go in bulk (an op id in flight or already
answered by a concurrent copy, a sale by serial) or fails unexpectedly, it is rolled back and
its ops run one by one as above. `QM_SYNC_BULK=0` turns bulk runs off.

`dry_run` runs the whole batch inside one transaction and rolls it back: the results are what
each op would do, and nothing is stored, not even op ids, temp ids or device sequence numbers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from pydantic import ValidationError

from quartermaster.core import policy
from quartermaster.core.commands import (
    BulkUnavailable,
    Command,
    error_response,
    exclusive,
    execute,
    execute_many,
    store_final,
)
from quartermaster.core.conflicts import VERSION_CONFLICT, VersionedUpdate, restore_conflict
from quartermaster.core.errors import DomainError, IdempotencyKeyInFlight, Invalid
from quartermaster.core.types import Actor, Context, Response
from quartermaster.sync import invariants
from quartermaster.sync.errors import (
    BatchTooLarge,
    DependencyFailed,
    DependencyNotApplied,
    DeviceNotYours,
    GroupFailed,
    GroupNotApplied,
    OpInFlight,
    ServerError,
    TempIdReused,
    UnknownOpType,
)
from quartermaster.sync.models import DeviceSyncState, TempId
from quartermaster.sync.selectors import (
    OP_SCOPE,
    current_feed_seq,
    stored_op_results,
    temp_ids_for_batch,
)

logger = logging.getLogger(__name__)

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
    op_id: str
    status: int
    body: Any
    id_map: dict[str, str] = field(default_factory=dict)
    replayed: bool = False

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300

    @property
    def final(self) -> bool:
        return self.status < 500


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
            return _Batch(actor, device_id, ops).run()
        with transaction.atomic():
            result = _Batch(actor, device_id, ops).run()
            transaction.set_rollback(True)
    return replace(result, dry_run=True)


@dataclass
class _TempState:
    """What a temp id stands for right now: a permanent id, or the op that failed to create it."""

    permanent_id: str | None
    op_id: str
    final: bool = True


class _GroupBroken(Exception):
    """Raised inside a group's transaction to roll all of it back."""


class _Batch:
    def __init__(self, actor: Actor, device_id: str, ops: Sequence[Op]) -> None:
        self.actor = actor
        self.device_id = device_id
        self.ops = ops
        self.results: dict[int, OpResult] = {}
        self.done: dict[str, OpResult] = {}  # op id → result, for an op id twice in one batch

    def run(self) -> BatchResult:
        self.device = _register_device(self.actor, self.device_id)
        self._load()
        index = 0
        while index < len(self.ops):
            group = self.ops[index].group
            end = index + 1
            while group is not None and end < len(self.ops) and self.ops[end].group == group:
                end += 1
            if group is None:
                run = self._bulk_run(index)
                if run:
                    self._run_bulk(index, run)
                    index += len(run)
                    continue
                self.results[index] = self._run_single(self.ops[index])
            else:
                self._run_group(range(index, end))
            index = end
        results = [self.results[i] for i in range(len(self.ops))]
        _record_device_seqs(
            self.device_id,
            [op.device_seq for op, r in zip(self.ops, results, strict=True) if r.final],
        )
        return BatchResult(results=results, cursor=current_feed_seq(), dry_run=False)

    # -- loading: one query for stored results, one for temp ids, whatever the batch size --

    def _load(self) -> None:
        op_ids = {op.op_id for op in self.ops}
        self.stored = stored_op_results(owner_id=self.actor.user_id, op_ids=op_ids)
        strings = {
            text
            for op in self.ops
            for text in invariants.strings_in(op.payload)
            if len(text) <= 100
        }
        strings |= {op.client_temp_id for op in self.ops if op.client_temp_id}
        self.temp_ids: dict[str, _TempState] = {}
        self.created_by: dict[str, dict[str, str]] = {}  # op id → id_map, for replays
        for row in temp_ids_for_batch(device_id=self.device_id, strings=strings, op_ids=op_ids):
            self.temp_ids[row.temp_id] = _TempState(row.permanent_id, row.op_id)
            if row.permanent_id is not None:
                self.created_by[row.op_id] = {row.temp_id: row.permanent_id}

    # -- one op, in its own transaction --

    def _replay(self, op: Op) -> OpResult | None:
        if op.op_id in self.done:
            return replace(self.done[op.op_id], replayed=True)
        if op.op_id in self.stored:
            status, body = self.stored[op.op_id]
            id_map = self.created_by.get(op.op_id, {})
            return OpResult(op.op_id, status, body, id_map, replayed=True)
        return None

    def _run_single(self, op: Op) -> OpResult:
        replayed = self._replay(op)
        if replayed is not None:
            return replayed
        try:
            with transaction.atomic():
                result = self._apply(op)
        except Exception:
            logger.exception("sync op %s (%s) failed", op.op_id, op.type)
            result = _result(op, ServerError())
        self._settle(op, result)
        return result

    def _apply(self, op: Op) -> OpResult:
        """Run one op inside the caller's transaction; store its result if final."""
        try:
            command = self._command_for(op)
        except DomainError as error:
            result = _result(op, error)
            if result.final:
                # A concurrent copy of this op may have stored its outcome (even applied it):
                # then that outcome is the answer.
                result = self._store_rejection(op, result)
                if result.replayed:
                    result = replace(result, id_map=self._save_temp_id(op, result))
            return result
        response = execute(command, self._context(op))
        if _code_of(response) == IdempotencyKeyInFlight.code:
            return _result(op, OpInFlight())
        result = OpResult(op.op_id, response.status, response.body, replayed=response.replayed)
        if not result.succeeded and result.final and not result.replayed:
            # execute stores what the handler decided; a refusal before the handler ran
            # (permission, pure invariants) is stored here so that it is final too.
            result = self._store_rejection(op, result)
        if op.client_temp_id and result.final:
            result = replace(result, id_map=self._save_temp_id(op, result))
        return result

    def _context(self, op: Op) -> Context:
        return Context(
            actor=self.actor,
            idempotency_key=op.op_id,
            idempotency_scope=OP_SCOPE,
            client_ts=op.client_ts,
        )

    def _command_for(self, op: Op) -> Command:
        command_class = Command.registry.get(op.type)
        if command_class is None or not getattr(command_class, "syncable", True):
            raise UnknownOpType(op.type)
        if op.client_temp_id:
            existing = self.temp_ids.get(op.client_temp_id)
            if existing and existing.permanent_id and existing.op_id != op.op_id:
                raise TempIdReused(op.client_temp_id, existing.op_id)
        # Nothing to substitute when no string of the batch names a temp id of this device.
        payload = invariants.substitute(op.payload, self._resolve) if self.temp_ids else op.payload
        if op.base_version is not None:
            # The seam for versioned records: a command that takes base_version receives it.
            if "base_version" not in command_class.model_fields:
                raise Invalid.field("base_version", f"{op.type} ops are not versioned")
            payload = {**payload, "base_version": op.base_version}
        try:
            # Strict, from JSON: a boolean is not an integer, a UUID arrives as a string.
            return command_class.model_validate_json(json.dumps(payload), strict=True)
        except ValidationError as exc:
            fields = {
                ".".join(str(part) for part in error["loc"]) or "payload": error["msg"]
                for error in exc.errors()
            }
            message = "invalid payload: " + "; ".join(f"{k}: {v}" for k, v in fields.items())
            raise Invalid(message, fields=fields) from exc

    def _resolve(self, text: str) -> str:
        state = self.temp_ids.get(text)
        if state is None:
            return text
        if state.permanent_id is not None:
            return state.permanent_id
        message = f"temp id {text!r} was not created: op {state.op_id!r} failed"
        if state.final:
            raise DependencyFailed(message, failed_op_id=state.op_id, temp_id=text)
        raise DependencyNotApplied(message, failed_op_id=state.op_id, temp_id=text)

    def _save_temp_id(self, op: Op, result: OpResult) -> dict[str, str]:
        """The op's id map; a fresh final result also records it for later batches."""
        id_map, row = self._temp_id_row(op, result)
        if row is not None:
            TempId.objects.update_or_create(
                device_id=row.device_id,
                temp_id=row.temp_id,
                defaults={"op_id": row.op_id, "permanent_id": row.permanent_id},
            )
        return id_map

    def _temp_id_row(self, op: Op, result: OpResult) -> tuple[dict[str, str], TempId | None]:
        """The op's id map, and the temp id row to record for a fresh final result (if any)."""
        if op.client_temp_id is None:
            return {}, None
        body = result.body
        permanent = str(body["id"]) if result.succeeded and isinstance(body, dict) else None
        if result.succeeded and permanent is None:
            return {}, None  # the command created nothing with an id
        id_map = {op.client_temp_id: permanent} if permanent else {}
        if result.replayed:
            # Whoever stored this result recorded the temp id in the same transaction; a
            # replayed rejection must not unmap what a later op created.
            return id_map, None
        current = self.temp_ids.get(op.client_temp_id)
        if permanent is None and current is not None and current.permanent_id is not None:
            return {}, None  # a failed op never unmaps what another op created
        row = TempId(
            device_id=self.device_id,
            temp_id=op.client_temp_id,
            op_id=op.op_id,
            permanent_id=permanent,
            created_at=timezone.now(),
        )
        return id_map, row

    def _store_rejection(self, op: Op, result: OpResult) -> OpResult:
        """Store a final rejection under the op id, inside the caller's transaction, and return
        what the op id answers: this rejection, or the outcome stored first (by execute earlier
        in this transaction, or by a concurrent copy of the batch), or 503 while that copy
        still holds the op in flight. Through core, with core's fingerprint of the op."""
        response = store_final(op.type, self._context(op), Response(result.status, result.body))
        if _code_of(response) == IdempotencyKeyInFlight.code:
            return _result(op, OpInFlight())
        if (response.status, response.body) == (result.status, result.body):
            return result  # ours (execute may have stored it already in this transaction)
        return OpResult(op.op_id, response.status, response.body, replayed=response.replayed)

    def _settle(self, op: Op, result: OpResult) -> None:
        """After the op's transaction ended: remember its outcome for the rest of the batch."""
        self.done[op.op_id] = result
        if not op.client_temp_id:
            return
        # A replayed outcome counts exactly like a fresh one: a concurrent copy of this batch may
        # have applied the create, and the ops behind it name its temp id.
        if result.id_map:
            self.temp_ids[op.client_temp_id] = _TempState(
                result.id_map[op.client_temp_id], op.op_id
            )
        elif not result.succeeded:
            current = self.temp_ids.get(op.client_temp_id)
            if current is None or current.permanent_id is None:
                self.temp_ids[op.client_temp_id] = _TempState(None, op.op_id, final=result.final)

    # -- a run of ops in bulk: one transaction, one set of statements --

    def _bulk_run(self, start: int) -> list[Command]:
        """The commands of the bulk run starting at `start`, or [] when it is not worth one."""
        first = self.ops[start]
        command_class = Command.registry.get(first.type)
        if not settings.SYNC_BULK or command_class is None or not command_class.bulk:
            return []
        following = self.ops[start + 1] if start + 1 < len(self.ops) else None
        if following is None or following.type != first.type or following.group is not None:
            return []  # a run of one: answered alone, without parsing it twice
        commands: list[Command] = []
        op_ids: set[str] = set()
        created: set[str] = set()  # temp ids the run's ops create
        for op in self.ops[start : start + MAX_OPS]:
            if op.group is not None or op.type != first.type or op.op_id in op_ids:
                break
            if self._replay(op) is not None or op.client_temp_id in created:
                break
            if created and not created.isdisjoint(invariants.strings_in(op.payload)):
                break  # it names what the run creates: known only once the run is written
            try:
                command = self._command_for(op)
            except DomainError:
                break  # refused before its command exists: answered alone, in order
            commands.append(command)
            op_ids.add(op.op_id)
            if op.client_temp_id:
                created.add(op.client_temp_id)
        return commands if len(commands) > 1 else []

    def _run_bulk(self, start: int, commands: list[Command]) -> None:
        ops = self.ops[start : start + len(commands)]
        results: list[OpResult] | None = None
        try:
            with transaction.atomic():
                responses = execute_many(commands, [self._context(op) for op in ops])
                results = []
                rows = []
                for op, response in zip(ops, responses, strict=True):
                    result = OpResult(op.op_id, response.status, response.body)
                    id_map, row = self._temp_id_row(op, result) if result.final else ({}, None)
                    results.append(replace(result, id_map=id_map))
                    if row is not None:
                        rows.append(row)
                TempId.objects.bulk_create(
                    rows,
                    update_conflicts=True,
                    unique_fields=["device", "temp_id"],
                    update_fields=["op_id", "permanent_id"],
                )
        except BulkUnavailable:
            results = None
        except Exception:
            logger.exception(
                "sync run of %d %s ops failed; running each alone", len(ops), ops[0].type
            )
            results = None
        if results is None:
            for offset, op in enumerate(ops):
                self.results[start + offset] = self._run_single(op)
            return
        for offset, (op, result) in enumerate(zip(ops, results, strict=True)):
            self.results[start + offset] = result
            self._settle(op, result)

    # -- a group: one transaction, all or nothing --

    def _run_group(self, indexes: range) -> None:
        """Run a group's fresh ops in one transaction, each in a savepoint. A member whose op id
        already has a stored result answers it and takes no part (a device resending a group
        sends all of it, so either every member is stored or none is)."""
        fresh: list[int] = []
        for index in indexes:
            replayed = self._replay(self.ops[index])
            if replayed is not None:
                self.results[index] = replayed
            else:
                fresh.append(index)
        if not fresh:
            return
        applied: dict[int, OpResult] = {}
        broken: tuple[int, OpResult] | None = None
        saved_temp_ids = dict(self.temp_ids)
        try:
            with transaction.atomic():
                for index in fresh:
                    op = self.ops[index]
                    try:
                        with transaction.atomic():
                            result = self._apply(op)
                    except Exception:
                        logger.exception("sync op %s (%s) failed", op.op_id, op.type)
                        result = _result(op, ServerError())
                    if not result.succeeded:
                        broken = (index, result)
                        raise _GroupBroken()
                    applied[index] = result
                    # Later ops of the group may name what this one created.
                    if op.client_temp_id and result.id_map:
                        self.temp_ids[op.client_temp_id] = _TempState(
                            result.id_map[op.client_temp_id], op.op_id
                        )
        except _GroupBroken:
            pass
        if broken is None:
            for index, result in applied.items():
                self.results[index] = result
                self._settle(self.ops[index], result)
            return
        self.temp_ids = saved_temp_ids
        self._break_group(fresh, *broken)

    def _restore_conflict(self, op: Op, result: OpResult) -> None:
        command_class = Command.registry.get(op.type)
        if command_class is None or not issubclass(command_class, VersionedUpdate):
            return
        ctx = Context(actor=self.actor, client_ts=op.client_ts)
        restore_conflict(op.type, ctx, command_class.entity, result.body)

    def _break_group(self, fresh: list[int], broken_index: int, cause: OpResult) -> None:
        """The group rolled back. Answer every fresh op, and store the answers if final."""
        broken_op = self.ops[broken_index]
        group = broken_op.group or ""
        message = f"group {group!r} was not applied: op {broken_op.op_id!r} failed"
        error_class = GroupFailed if cause.final else GroupNotApplied
        results: dict[int, OpResult] = {}
        for index in fresh:
            op = self.ops[index]
            if index == broken_index:
                results[index] = replace(cause, id_map={})
            else:
                error = error_class(message, failed_op_id=broken_op.op_id, group=group)
                results[index] = _result(op, error)
        if cause.final:
            # The rollback took the stored results with it: store the group's answers again.
            # An op whose outcome a concurrent copy stored first answers that outcome.
            with transaction.atomic():
                for index in fresh:
                    op = self.ops[index]
                    results[index] = self._store_rejection(op, results[index])
                    results[index] = replace(
                        results[index], id_map=self._save_temp_id(op, results[index])
                    )
                    if (
                        index == broken_index
                        and not results[index].replayed
                        and _code_of_body(results[index].body) == VERSION_CONFLICT
                    ):
                        # The 409 names a conflict the rollback took away: record it again.
                        self._restore_conflict(op, results[index])
        for index in fresh:
            self.results[index] = results[index]
            self._settle(self.ops[index], results[index])


def _code_of_body(body: Any) -> str | None:
    return body.get("code") if isinstance(body, dict) else None


def _result(op: Op, error: DomainError) -> OpResult:
    response = error_response(error)
    return OpResult(op.op_id, response.status, response.body)


def _code_of(response: Response) -> str | None:
    body = response.body
    return body.get("code") if isinstance(body, dict) else None


def _register_device(actor: Actor, device_id: str) -> DeviceSyncState:
    with transaction.atomic():
        device, _ = DeviceSyncState.objects.get_or_create(
            device_id=device_id, defaults={"user_id": actor.user_id}
        )
    if device.user_id != actor.user_id:
        raise DeviceNotYours()
    return device


def _record_device_seqs(device_id: str, seqs: Sequence[int | None]) -> None:
    """Note the device_seq of every op with a final result (a 5xx op is still missing)."""
    with transaction.atomic():
        device = DeviceSyncState.objects.select_for_update().get(pk=device_id)
        delivered = [seq for seq in seqs if seq is not None]
        if delivered:
            device.seen_seq_ranges = invariants.add_seqs(device.seen_seq_ranges, delivered)
        device.last_seen = timezone.now()
        device.save(update_fields=["seen_seq_ranges", "last_seen"])
