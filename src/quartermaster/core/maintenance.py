"""Housekeeping commands. They run through the pipeline like any other change, so they are audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.utils import timezone

from quartermaster.core.commands import Command
from quartermaster.core.models import IdempotencyRecord
from quartermaster.core.types import Change, Context, Outcome, View


@dataclass(frozen=True)
class PurgedKeys(View):
    """How many HTTP Idempotency-Keys a purge forgot, older than `cutoff`."""

    deleted: int
    cutoff: datetime

    def to_wire(self) -> dict[str, Any]:
        return self.to_snapshot()

    def to_snapshot(self) -> dict[str, Any]:
        """Chain format 1 (the answer of its time), written apart from the wire."""
        return {"deleted": self.deleted, "cutoff": self.cutoff.isoformat()}


class PurgeIdempotencyKeys(Command):
    """Forget HTTP Idempotency-Keys older than the retention (30 days by default).

    Sync op ids (scope "op") are never purged: a device may replay an op after any time offline.
    """

    name = "idempotency.purge"
    # Upkeep run from the CLI on the server, never an op a device sends (nor listed as one).
    syncable: ClassVar[bool] = False
    older_than_days: int = settings.IDEMPOTENCY_KEY_TTL_DAYS

    def handle(self, ctx: Context) -> Outcome:
        days = max(self.older_than_days, settings.IDEMPOTENCY_KEY_TTL_DAYS)
        cutoff = timezone.now() - timedelta(days=days)
        deleted, _ = IdempotencyRecord.objects.filter(scope="http", created_at__lt=cutoff).delete()
        body = PurgedKeys(deleted, cutoff)
        if not deleted:
            return Outcome(status=200, body=body)
        return Outcome(
            status=200,
            body=body,
            changes=[Change("idempotency_keys", "http", None, body, publish=False)],
        )
