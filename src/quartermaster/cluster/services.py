"""Recording a change of the database primary on the audit chain (`cluster.primary_changed`).

Run by each server process's monitor watcher (cluster.monitor) as the system actor, keyed by the
epoch: the first process to run it records the change; the others are answered the stored
result (the idempotency key), and the epoch's primary key refuses a second row even so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django.utils import timezone

from quartermaster.cluster.models import PrimaryChange
from quartermaster.core.commands import Command
from quartermaster.core.errors import Invalid
from quartermaster.core.types import Change, Context, Outcome, View

ENTITY = "cluster.primary"


def idempotency_key(epoch: int) -> str:
    """The one key every process runs the change of `epoch` under."""
    return f"cluster.primary_changed:{epoch}"


class RecordPrimaryChange(Command):
    name = "cluster.primary_changed"
    # Written by the server itself, never sent by a device.
    syncable: ClassVar[bool] = False

    epoch: int
    at: datetime
    old_node: str | None
    new_node: str
    reason: str
    description: str = ""

    def validated(self) -> RecordPrimaryChange:
        if self.epoch <= 0:
            raise Invalid.field("epoch", "must be a positive event id")
        if not self.new_node.strip():
            raise Invalid.field("new_node", "must name the new primary")
        return self.model_copy(update={"description": self.description[:1000]})

    def handle(self, ctx: Context) -> Outcome:
        row = PrimaryChange.objects.create(
            epoch=self.epoch,
            at=self.at,
            old_node=self.old_node or "",
            new_node=self.new_node,
            reason=self.reason,
            description=self.description,
            recorded_at=timezone.now(),
        )
        view = change_view(row)
        # Not in the change feed (devices replicate no cluster state); the WebSocket tells them.
        return Outcome(
            status=201,
            body=view,
            changes=[Change(ENTITY, str(self.epoch), None, view, publish=False)],
        )


@dataclass(frozen=True)
class PrimaryChangeView(View):
    """A change of the database primary, as recorded once for its epoch."""

    epoch: int
    at: datetime
    old_node: str | None
    new_node: str
    reason: str
    description: str

    def to_wire(self) -> dict[str, Any]:
        """The command's answer."""
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the answer of its time), written apart from the wire."""
        return {
            "epoch": self.epoch,
            "at": self.at.isoformat(),
            "old_node": self.old_node,
            "new_node": self.new_node,
            "reason": self.reason,
            "description": self.description,
        }


def change_view(row: PrimaryChange) -> PrimaryChangeView:
    return PrimaryChangeView(
        epoch=row.epoch,
        at=row.at,
        old_node=row.old_node or None,
        new_node=row.new_node,
        reason=row.reason,
        description=row.description,
    )
