#!/usr/bin/env python3
"""Check a Quartermaster audit inclusion proof offline. Standalone: it imports nothing from
Quartermaster, only the Python standard library and `cryptography` (pip install cryptography).

    python3 verify_audit_proof.py proof.json --public-key <hex published by the business>
        [--checkpoint checkpoint-....json]   # the checkpoint the business published
        [--entity invoice:<id>]              # the record you hold a receipt of

Exit 0 and "VERIFIED" when the checkpoint is signed by that key, every entry of the proof sits
in the checkpoint's Merkle tree, and (if given) the checkpoint is the published one and the
entries are of your record. See audit-proofs.md beside this file for the procedure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNED_FIELDS = ("format", "seq", "tree_size", "hash", "root", "at", "key_id")


def canonical(value: object) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def included(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    """RFC 9162, section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for sibling in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(sibling, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node(r, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def check(proof: dict, public_key: str, published: dict | None, entity: str | None) -> list[str]:
    failures = []
    checkpoint = proof["checkpoint"]
    body = {name: checkpoint[name] for name in SIGNED_FIELDS}
    if checkpoint["key_id"] != hashlib.sha256(bytes.fromhex(public_key)).hexdigest():
        failures.append("the checkpoint names another key than the one you were given")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint["signature"]), canonical(body)
        )
    except (InvalidSignature, ValueError):
        failures.append("the checkpoint's signature does not verify with that key")
    if published is not None and any(published.get(k) != checkpoint[k] for k in (*SIGNED_FIELDS, "signature")):
        failures.append("the proof's checkpoint is not the published one")
    root = bytes.fromhex(checkpoint["root"])
    if not proof["entries"]:
        failures.append("the proof holds no entry")
    for entry in proof["entries"]:
        leaf_input = entry["leaf_input"].encode()
        leaf = hashlib.sha256(b"\x00" + leaf_input).digest()
        path = [bytes.fromhex(h) for h in entry["audit_path"]]
        if not included(entry["leaf_index"], checkpoint["tree_size"], leaf, path, root):
            failures.append(f"entry {entry['leaf_index'] + 1} is not in the checkpoint's tree")
        _, _, content = entry["leaf_input"].partition("\n")
        sealed = json.loads(content)
        if sealed["seq"] != entry["leaf_index"] + 1:
            failures.append(f"entry {entry['leaf_index'] + 1} claims another place in the chain")
        if entity is not None and f"{sealed['entity_type']}:{sealed['entity_id']}" != entity:
            failures.append(f"entry {sealed['seq']} is about another record")
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("proof", help="the JSON answer of GET /api/v1/audit/proof")
    parser.add_argument("--public-key", required=True, help="the business's key (hex)")
    parser.add_argument("--checkpoint", help="the checkpoint file the business published")
    parser.add_argument("--entity", help="TYPE:ID of the record you hold (e.g. invoice:<uuid>)")
    args = parser.parse_args()
    with open(args.proof, encoding="utf-8") as handle:
        proof = json.load(handle)
    published = None
    if args.checkpoint:
        with open(args.checkpoint, encoding="utf-8") as handle:
            published = json.load(handle)
    failures = check(proof, args.public_key, published, args.entity)
    for entry in proof["entries"]:
        sealed = json.loads(entry["leaf_input"].partition("\n")[2])
        print(f"entry {sealed['seq']}: {sealed['action']} {sealed['entity_type']} {sealed['entity_id']} at {sealed['at']}")
        print(f"  after: {json.dumps(sealed['after'], ensure_ascii=False)}")
    for failure in failures:
        print(f"FAILED: {failure}")
    if failures:
        return 1
    checkpoint = proof["checkpoint"]
    print(f"VERIFIED against the checkpoint of {checkpoint['at']} (entries 1..{checkpoint['seq']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
