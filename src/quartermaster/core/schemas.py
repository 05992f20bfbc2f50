"""Wire schemas shared by every adapter: the error body, audit entries."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# The largest integer any column here holds (BIGINT): every integer on the wire is capped at it,
# so an oversized one is a 400 naming its field, never an overflow in the database.
INT63_MAX = 2**63 - 1


class ErrorOut(BaseModel):
    error: str
    code: str
    fields: dict[str, str] | None = None


class AuditEntryOut(BaseModel):
    seq: int
    at: str
    actor: str
    actor_id: str | None
    device: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    client_ts: str
    hash: str
    prev_hash: str


class AuditPageOut(BaseModel):
    results: list[AuditEntryOut]
    next_cursor: str | None


class AuditVerifyOut(BaseModel):
    ok: bool
    entries: int
    first_bad_seq: int | None


class SecurityEventOut(BaseModel):
    id: int
    at: str
    kind: str
    actor: str
    actor_id: str | None
    device: str
    address: str
    subject: str
    reason: str


class SecurityEventPageOut(BaseModel):
    results: list[SecurityEventOut]
    next_cursor: str | None


class CheckpointOut(BaseModel):
    format: int
    seq: int
    tree_size: int
    hash: str
    root: str
    at: str
    key_id: str
    signature: str


class ProofEntryOut(BaseModel):
    seq: int
    leaf_index: int
    leaf_input: str
    audit_path: list[str]


class AuditProofOut(BaseModel):
    """docs/audit-proofs.md: how to check it offline against a published checkpoint."""

    checkpoint: CheckpointOut
    public_key: str
    entity_type: str
    entity_id: str
    entries: list[ProofEntryOut]
