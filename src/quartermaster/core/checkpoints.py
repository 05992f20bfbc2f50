"""Signed checkpoints of the audit chain, kept outside the database, and what they prove.

The chain's HMAC catches an edited entry, but not a chain cut short with its head rewound to
match: whoever can write the database can do both. A checkpoint is `(seq, hash, tree root,
time)` signed with Ed25519 under a key from the environment (QM_CHECKPOINT_KEY; generated once
into the data directory otherwise, like the audit key) and written to a sink outside the
database, by default a directory of files that are created once and never rewritten
(QM_CHECKPOINT_DIR). `audit verify` then holds the chain to the latest one, and a customer
holds one receipt to it with an inclusion proof (core.merkle; docs/audit-proofs.md).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings

from quartermaster.core import merkle
from quartermaster.core.audit import entry_payload
from quartermaster.core.canonical import canonical_json
from quartermaster.core.models import AuditEntry, ChainHead

FORMAT = 1


@dataclass(frozen=True)
class Checkpoint:
    seq: int  # the chain's length it covers (= the Merkle tree's size)
    hash: str  # the chain's hash at `seq`
    root: str  # the Merkle root over entries 1..seq (hex)
    at: str  # when it was signed, ISO 8601 UTC
    key_id: str  # SHA-256 of the public key (hex), so a verifier picks the right key
    signature: str = ""  # Ed25519 over canonical JSON of `signed_body()` (hex)

    def signed_body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seq": self.seq,
            "tree_size": self.seq,
            "hash": self.hash,
            "root": self.root,
            "at": self.at,
            "key_id": self.key_id,
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.signed_body(), "signature": self.signature}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Checkpoint:
        return cls(
            seq=int(data["seq"]),
            hash=str(data["hash"]),
            root=str(data["root"]),
            at=str(data["at"]),
            key_id=str(data["key_id"]),
            signature=str(data["signature"]),
        )


def _signing_key() -> Ed25519PrivateKey:
    seed = hashlib.sha256(b"quartermaster checkpoint key 1\n" + settings.CHECKPOINT_KEY.encode())
    return Ed25519PrivateKey.from_private_bytes(seed.digest())


def public_key_hex() -> str:
    """The key a verifier pins (published once, e.g. on the shop's website or a receipt)."""
    return _signing_key().public_key().public_bytes_raw().hex()


def key_id_of(public_key: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_key)).hexdigest()


def signature_ok(checkpoint: Checkpoint, public_key: str) -> bool:
    if checkpoint.key_id != key_id_of(public_key):
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint.signature), canonical_json(checkpoint.signed_body())
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def leaf_input(entry: AuditEntry) -> bytes:
    return entry.hash.encode() + b"\n" + canonical_json(entry_payload(entry))


def _entries_up_to(seq: int) -> Iterator[AuditEntry]:
    return AuditEntry.objects.filter(seq__lte=seq).order_by("seq").iterator(chunk_size=2000)


def chain_leaves(seq: int) -> list[bytes]:
    """The leaf hashes of entries 1..seq, in order (fewer when the chain is shorter)."""
    return [merkle.leaf_hash(leaf_input(entry)) for entry in _entries_up_to(seq)]


def sign_head() -> Checkpoint:
    """A checkpoint of the chain as it stands (the caller has verified it first)."""
    head = ChainHead.objects.filter(pk=1).first()
    seq = head.audit_seq if head else 0
    chain_hash = head.audit_hash if head else ""
    leaves = chain_leaves(seq)
    key = _signing_key()
    unsigned = Checkpoint(
        seq=seq,
        hash=chain_hash,
        root=merkle.root(leaves).hex(),
        at=datetime.now(UTC).isoformat(timespec="seconds"),
        key_id=key_id_of(public_key_hex()),
    )
    signature = key.sign(canonical_json(unsigned.signed_body())).hex()
    return Checkpoint(**{**unsigned.__dict__, "signature": signature})


class Sink(Protocol):
    """Where checkpoints go: append-only, outside the database."""

    def publish(self, checkpoint: Checkpoint) -> str:
        """Store it; answer where (for people)."""
        ...

    def latest(self) -> Checkpoint | None: ...


class DirectorySink:
    """One JSON file per checkpoint, created exclusively (never overwritten). Point
    QM_CHECKPOINT_DIR at storage the database's users cannot write (another machine's share,
    a WORM bucket mount), or copy the files out as they appear."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def publish(self, checkpoint: Checkpoint) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = checkpoint.at.replace(":", "").replace("-", "").replace("+0000", "Z")
        path = self.directory / f"checkpoint-{checkpoint.seq:012d}-{stamp}.json"
        text = json.dumps({**checkpoint.as_dict(), "public_key": public_key_hex()}, indent=2)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
        with os.fdopen(fd, "w") as handle:
            handle.write(text + "\n")
        return str(path)

    def latest(self) -> Checkpoint | None:
        if not self.directory.is_dir():
            return None
        files = sorted(self.directory.glob("checkpoint-*.json"))
        if not files:
            return None
        return Checkpoint.from_dict(json.loads(files[-1].read_text()))


def sink() -> Sink:
    """QM_CHECKPOINT_SINK ("package.module:Factory", called with no arguments) when set, else
    the directory QM_CHECKPOINT_DIR."""
    spec = settings.CHECKPOINT_SINK
    if spec:
        module_name, _, attribute = spec.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        return factory()
    return DirectorySink(Path(settings.CHECKPOINT_DIR))


def problems_against(checkpoint: Checkpoint) -> list[str]:
    """How the chain now disagrees with `checkpoint` (empty: it still holds everything the
    checkpoint covered, unchanged)."""
    if not signature_ok(checkpoint, public_key_hex()):
        return [f"the checkpoint of {checkpoint.at} does not carry a valid signature of our key"]
    entry = AuditEntry.objects.filter(seq=checkpoint.seq).first() if checkpoint.seq else None
    if checkpoint.seq and entry is None:
        last = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        return [
            f"chain truncated: the checkpoint of {checkpoint.at} covers entries 1..{checkpoint.seq},"
            f" the chain now ends at {last}"
        ]
    if entry is not None and entry.hash != checkpoint.hash:
        return [
            f"entry {checkpoint.seq} is not the one the checkpoint of {checkpoint.at} signed"
            " (history before it was rewritten)"
        ]
    if merkle.root(chain_leaves(checkpoint.seq)).hex() != checkpoint.root:
        return [f"entries 1..{checkpoint.seq} do not give the root the checkpoint signed"]
    return []


_leaves_cache: dict[tuple[int, str], list[bytes]] = {}


def _leaves_for(checkpoint: Checkpoint) -> list[bytes]:
    """The checkpoint's leaves, read once per process per checkpoint (a proof otherwise reads
    the whole chain); only a chain that still gives the signed root is kept."""
    key = (checkpoint.seq, checkpoint.root)
    leaves = _leaves_cache.get(key)
    if leaves is None:
        leaves = chain_leaves(checkpoint.seq)
        if len(leaves) != checkpoint.seq or merkle.root(leaves).hex() != checkpoint.root:
            raise ChainDisagrees(problems_against(checkpoint))
        _leaves_cache.clear()
        _leaves_cache[key] = leaves
    return leaves


class ChainDisagrees(Exception):
    """The chain in the database no longer gives what the checkpoint signed."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems) or "the chain disagrees with the checkpoint")
        self.problems = problems


@dataclass(frozen=True)
class Proof:
    checkpoint: Checkpoint
    entries: list[dict[str, Any]]


def inclusion_proof(checkpoint: Checkpoint, entity_type: str, entity_id: str) -> Proof:
    """For every entry about one record up to `checkpoint`: its leaf and audit path."""
    leaves = _leaves_for(checkpoint)
    found = AuditEntry.objects.filter(
        entity_type=entity_type, entity_id=entity_id, seq__lte=checkpoint.seq
    ).order_by("seq")
    entries = [
        {
            "seq": entry.seq,
            "leaf_index": entry.seq - 1,
            "leaf_input": leaf_input(entry).decode(),
            "audit_path": [h.hex() for h in merkle.inclusion_path(entry.seq - 1, leaves)],
        }
        for entry in found
    ]
    return Proof(checkpoint=checkpoint, entries=entries)
