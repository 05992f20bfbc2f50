"""Temp ids: what each of a device's `client_temp_id`s stands for while a batch runs.

A payload string equal to a `client_temp_id` this device used before (in this batch or an
earlier one) is replaced by the permanent id before the command is validated (`resolve`). An op
naming a temp id whose creating op was rejected for good fails 424 `dependency_failed`; if the
creating op failed in a retryable way (5xx), the dependent op fails 503 `dependency_not_applied`
so that the device sends both again (a final 424 there would lose the dependent op).

A replayed outcome maps its temp id exactly like a fresh one (a concurrent copy of the batch may
have applied the create, and the ops behind it name its temp id); a failed op never unmaps what
another op created.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils import timezone

from quartermaster.sync import invariants
from quartermaster.sync.errors import DependencyFailed, DependencyNotApplied, TempIdReused
from quartermaster.sync.models import TempId
from quartermaster.sync.ops import Op, OpResult
from quartermaster.sync.selectors import temp_ids_for_batch

# A payload string longer than this is no temp id: not worth looking up.
_LONGEST_TEMP_ID = 100


@dataclass(frozen=True)
class TempState:
    """What a temp id stands for right now: a permanent id, or the op that failed to create it
    (`final`: for good, or in a retryable way)."""

    permanent_id: str | None
    op_id: str
    final: bool = True


class TempIds:
    """The temp ids one batch can touch, as the batch's ops settle."""

    def __init__(self, device_id: str, rows: Sequence[TempId] = ()) -> None:
        self.device_id = device_id
        self.states = {row.temp_id: TempState(row.permanent_id, row.op_id) for row in rows}
        # What the stored ops of the batch created, as loaded: their replays answer it.
        self._created_by = {
            row.op_id: {row.temp_id: row.permanent_id}
            for row in rows
            if row.permanent_id is not None
        }

    @classmethod
    def load(cls, device_id: str, ops: Sequence[Op]) -> TempIds:
        """One query, whatever the batch size: the temp ids the ops name or create."""
        strings = {
            text
            for op in ops
            for text in invariants.strings_in(op.payload)
            if len(text) <= _LONGEST_TEMP_ID
        }
        strings |= {op.client_temp_id for op in ops if op.client_temp_id}
        op_ids = {op.op_id for op in ops}
        return cls(
            device_id, temp_ids_for_batch(device_id=device_id, strings=strings, op_ids=op_ids)
        )

    def created_by(self, op_id: str) -> dict[str, str]:
        """The id map of what `op_id` created, for replaying its stored answer."""
        return self._created_by.get(op_id, {})

    def resolve(self, payload: dict[str, object]) -> dict[str, object]:
        """`payload` with every temp id replaced by its permanent id; raises DependencyFailed or
        DependencyNotApplied for a temp id whose creating op failed."""
        if not self.states:
            return payload  # no string of the batch names a temp id of this device
        resolved: dict[str, object] = invariants.substitute(payload, self._permanent_id)
        return resolved

    def _permanent_id(self, text: str) -> str:
        state = self.states.get(text)
        if state is None:
            return text
        if state.permanent_id is not None:
            return state.permanent_id
        message = f"temp id {text!r} was not created: op {state.op_id!r} failed"
        if state.final:
            raise DependencyFailed(message, failed_op_id=state.op_id, temp_id=text)
        raise DependencyNotApplied(message, failed_op_id=state.op_id, temp_id=text)

    def check_unused(self, op: Op) -> None:
        """Raise TempIdReused when `op` would create a temp id another op already created."""
        if op.client_temp_id:
            existing = self.states.get(op.client_temp_id)
            if existing and existing.permanent_id and existing.op_id != op.op_id:
                raise TempIdReused(op.client_temp_id, existing.op_id)

    def save(self, op: Op, result: OpResult) -> dict[str, str]:
        """The op's id map; a fresh final result also records it for later batches."""
        id_map, row = self.id_map_and_row(op, result)
        if row is not None:
            TempId.objects.update_or_create(
                device_id=row.device_id,
                temp_id=row.temp_id,
                defaults={"op_id": row.op_id, "permanent_id": row.permanent_id},
            )
        return id_map

    @staticmethod
    def save_rows(rows: list[TempId]) -> None:
        """Record many ops' temp ids in one statement (a bulk run)."""
        TempId.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["device", "temp_id"],
            update_fields=["op_id", "permanent_id"],
        )

    def id_map_and_row(self, op: Op, result: OpResult) -> tuple[dict[str, str], TempId | None]:
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
        current = self.states.get(op.client_temp_id)
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

    def map_created(self, op: Op, result: OpResult) -> None:
        """Map what `op` created, for the ops behind it (a replayed create counts the same)."""
        if op.client_temp_id and result.id_map:
            self.states[op.client_temp_id] = TempState(result.id_map[op.client_temp_id], op.op_id)

    def settle(self, op: Op, result: OpResult) -> None:
        """After the op's transaction ended: what its temp id stands for now."""
        if not op.client_temp_id:
            return
        if result.id_map:
            self.map_created(op, result)
        elif not result.succeeded:
            current = self.states.get(op.client_temp_id)
            if current is None or current.permanent_id is None:
                self.states[op.client_temp_id] = TempState(None, op.op_id, final=result.final)

    def snapshot(self) -> dict[str, TempState]:
        return dict(self.states)

    def restore(self, snapshot: dict[str, TempState]) -> None:
        """Forget what a rolled-back group mapped."""
        self.states = snapshot
