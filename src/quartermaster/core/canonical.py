"""Canonical JSON: one byte string per value, so hashes and fingerprints are reproducible."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def fingerprint(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


class Encoded:
    """A JSON value encoded once, canonically, for every row that carries it: the audit chain
    hashes this text and the audit, feed and idempotency tables store it. (Any JSON text reads
    back as the same value; only SQLite's exact comparison of a whole JSON column with a value,
    a text comparison there, would see the difference from json.dumps: key lookups do not.)"""

    __slots__ = ("text", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.text = canonical_json(value).decode()


class EncodeOnce:
    """Encodes each JSON value once however many rows carry it (one command's view is its audit
    entry, its feed row and its stored answer). Values are told apart by identity and kept
    alive while this memo lives, so an id is never reused for another value."""

    def __init__(self) -> None:
        self._seen: dict[int, tuple[Any, Encoded]] = {}

    def __call__(self, value: Any) -> Encoded | None:
        if value is None:
            return None
        hit = self._seen.get(id(value))
        if hit is None:
            hit = (value, Encoded(value))
            self._seen[id(value)] = hit
        return hit[1]
