"""Tables every domain shares: the audit chain, the change feed, idempotency records, number series.

Rows here are written only by `core.commands.execute` (and the services it calls), never by a
domain handler directly.
"""

from __future__ import annotations

import uuid

from django.db import models

GENESIS_HASH = "0" * 64


class ChainHead(models.Model):
    """The single row every mutating transaction locks last, just before commit.

    Holding it to commit makes audit and feed sequence numbers gap-free and equal to commit order:
    number N+1 can only be taken after the transaction that took N has committed or rolled back,
    so a feed reader that has seen N+1 can never later find an N it skipped.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    audit_seq = models.BigIntegerField(default=0)
    audit_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    feed_seq = models.BigIntegerField(default=0)


class AuditEntry(models.Model):
    """Append-only: database triggers (see migrations) refuse UPDATE and DELETE."""

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    actor_id = models.UUIDField(null=True)
    actor = models.CharField(max_length=150)
    device = models.CharField(max_length=200, blank=True, default="")
    action = models.CharField(max_length=100)
    entity_type = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=100)
    before = models.JSONField(null=True)
    after = models.JSONField(null=True)
    client_ts = models.CharField(max_length=40, blank=True, default="")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        indexes = [
            models.Index(fields=["entity_type", "entity_id"]),
            models.Index(fields=["actor"]),
        ]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.entity_type}:{self.entity_id}"


class FeedEntry(models.Model):
    """One committed change, numbered in commit order; tombstones have op='delete'."""

    seq = models.BigIntegerField(primary_key=True)
    at = models.DateTimeField()
    entity = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=100)
    op = models.CharField(max_length=10)
    version = models.BigIntegerField(null=True)
    data = models.JSONField(null=True)
    # The location a record belongs to, so the feed can be scoped like every other read.
    location_id = models.UUIDField(null=True)
    # The party user whose record this is (identity.permissions.FeedScope.owner_id).
    owner_id = models.UUIDField(null=True)

    class Meta:
        verbose_name_plural = "feed entries"


class IdempotencyRecord(models.Model):
    """The stored outcome of one keyed request or sync op, per owner."""

    owner_id = models.UUIDField(null=True)
    scope = models.CharField(max_length=10)  # "http" (expires) or "op" (kept forever)
    key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["owner_id", "scope", "key"], name="idempotency_unique_key"
            ),
        ]
        indexes = [models.Index(fields=["scope", "created_at"])]


class NumberSeries(models.Model):
    """Gap-free human numbers (TRX-000001): the counter moves inside the caller's transaction."""

    name = models.CharField(max_length=20, primary_key=True)
    last_value = models.BigIntegerField(default=0)

    class Meta:
        verbose_name_plural = "number series"


class Conflict(models.Model):
    """A write to a versioned record that named a stale `base_version`: rejected with 409, kept
    here with both sides until a manager resolves it (keep_mine, keep_theirs or merge).

    It lives in core, not sync: the update commands of inventory and sales create it, and those
    domains may not import sync (a sibling of sales, above inventory)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    entity = models.CharField(max_length=100)
    entity_id = models.CharField(max_length=100)
    base_version = models.BigIntegerField()
    # The proposed fields and base_version; the record as the server had it; the record at
    # base_version, when the audit trail still has it (else null).
    client_snapshot = models.JSONField()
    server_snapshot = models.JSONField()
    base_snapshot = models.JSONField(null=True)
    status = models.CharField(max_length=10, default="open")
    actor_id = models.UUIDField(null=True)
    actor = models.CharField(max_length=150, default="")
    device = models.CharField(max_length=200, default="")
    resolution = models.CharField(max_length=20, default="")
    resolved_by = models.CharField(max_length=150, default="")
    resolved_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "created_at"]),
            models.Index(fields=["actor_id", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.entity}:{self.entity_id} ({self.status})"


class OutboxMessage(models.Model):
    """A side effect outside the database (a notification, an upstream call), written in the
    transaction of the command that caused it and delivered after commit by a worker
    (`core.outbox`): never lost, never sent for a rolled-back change, sent at least once.

    Queue bookkeeping only: what is sent lives in the domain record `ref` names (a
    notification), whose deliverer (`kind`) sends it. Written only by `core.outbox`.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=50)
    ref = models.CharField(max_length=100)
    # One message per key and kind: enqueueing the same key again is a no-op.
    dedupe_key = models.CharField(max_length=200)
    state = models.CharField(max_length=10, default="pending")  # pending | done | dead
    attempts = models.PositiveIntegerField(default=0)
    # Not before: the back-off after a failed attempt, or a provider's Retry-After.
    available_at = models.DateTimeField()
    # A worker's claim: nobody else takes the message until then. A worker killed mid-send
    # leaves it to expire, and the message is sent again (at least once).
    leased_until = models.DateTimeField(null=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "dedupe_key"], name="outbox_unique_key"),
            models.CheckConstraint(
                condition=models.Q(state__in=["pending", "done", "dead"]),
                name="outbox_state",
            ),
        ]
        indexes = [models.Index(fields=["state", "available_at"], name="outbox_due")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.ref} ({self.state}, {self.attempts} attempts)"


class SecurityEvent(models.Model):
    """A refusal worth a security officer's look: a failed or locked-out login, a permission
    denial, a sync op refused. Kept off the audit chain: nothing changed, and writing them must
    never hold the chain's lock (a guesser would slow every sale). Append-only by convention;
    listed for admins and auditors (GET /api/v1/security-events)."""

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField()
    kind = models.CharField(max_length=40)
    actor_id = models.UUIDField(null=True)
    # The username acted as, or the one a failed login tried.
    actor = models.CharField(max_length=150, blank=True, default="")
    device = models.CharField(max_length=200, blank=True, default="")
    address = models.CharField(max_length=100, blank=True, default="")
    # What was asked: "POST /api/v1/receipts", an op type and id.
    subject = models.CharField(max_length=300, blank=True, default="")
    reason = models.CharField(max_length=500, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["kind", "id"])]
