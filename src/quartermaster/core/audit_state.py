"""`audit verify --state`: the chain's `after` snapshots replayed and held against the rows.

The hash chain proves the chain was not edited; it says nothing of a business table edited
directly (`UPDATE sales_payment SET amount_minor = amount_minor * 100`). Every change goes
through the pipeline, which seals the record's snapshot after it, so the last snapshot of each
record in the chain is what its row must read as now. Domains supply a `StateReader` per audited
table (quartermaster.state_readers): the current rows, as snapshots built the same way.

The rule across snapshot evolution: a record is compared on the fields its sealed snapshot
has, and only those. A snapshot format grows (a customer's `email`, its credit terms, were
added after customers had been sealed), and a record whose last entry predates a field reads
that field now while its snapshot never had it: a field added later, not tampering, so a key
the row has and the snapshot lacks is not compared. A key the snapshot has and the row lacks
is still drift (a field dropped or renamed in the table's reading is a change of what was
sealed). A field is never removed from or renamed in a snapshot format for this reason
(tests/core/test_audit_snapshot_format.py pins them).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from quartermaster.core.models import AuditEntry

Snapshot = dict[str, Any]


@dataclass(frozen=True)
class StateReader:
    entity_type: str
    # Every live row of the table, by entity id, as its snapshot (core.types.View.snapshot).
    read: Callable[[], dict[str, Snapshot]]
    # Snapshot keys that other records' changes move without a new entry for this one (an
    # item's `qty` is its default location's stock, audited as a `stock` record).
    derived: frozenset[str] = frozenset()
    # A row that reads like this needs no entry (an empty stock row made alongside its item).
    blank: Callable[[Snapshot], bool] = field(default=lambda _snapshot: False)


def replay(entity_types: Iterable[str]) -> dict[str, dict[str, Snapshot | None]]:
    """The last `after` of every record of these types (None: deleted)."""
    latest: dict[str, dict[str, Snapshot | None]] = {t: {} for t in entity_types}
    entries = (
        AuditEntry.objects.filter(entity_type__in=list(latest))
        .order_by("seq")
        .values_list("entity_type", "entity_id", "after")
        .iterator(chunk_size=2000)
    )
    for entity_type, entity_id, after in entries:
        latest[entity_type][entity_id] = after
    return latest


def differences(readers: Iterable[StateReader]) -> list[str]:
    """Each way the tables differ from the chain, one line each, naming record and field."""
    readers = list(readers)
    chain = replay(reader.entity_type for reader in readers)
    found: list[str] = []
    for reader in readers:
        found.extend(_differences_of(reader, chain[reader.entity_type], reader.read()))
    return found


def _differences_of(
    reader: StateReader, sealed: dict[str, Snapshot | None], rows: dict[str, Snapshot]
) -> list[str]:
    name = reader.entity_type
    found = []
    for entity_id in sorted(sealed.keys() | rows.keys()):
        after, row = sealed.get(entity_id), rows.get(entity_id)
        if entity_id not in sealed:
            if row is not None and not reader.blank(row):
                found.append(f"{name} {entity_id}: in the table, never in the chain")
        elif row is None:
            if after is not None:
                found.append(f"{name} {entity_id}: in the chain, missing from the table")
        elif after is None:
            found.append(f"{name} {entity_id}: deleted in the chain, still in the table")
        else:
            found.extend(
                f"{name} {entity_id}: {problem}"
                for problem in field_differences(after, row, derived=reader.derived)
            )
    return found


def field_differences(
    sealed: Snapshot, row: Snapshot, *, derived: frozenset[str] = frozenset()
) -> list[str]:
    """How `row` (read now) differs from the snapshot `sealed` last, one line per field, over
    the fields `sealed` has (the module's rule: a field the row has beyond them was added to
    the format later; one it lacks of them is drift). `derived` fields are not compared."""
    found = []
    for key in sorted(sealed.keys() - derived):
        if key not in row:
            found.append(f"{key} is absent from the table, {_show(sealed[key])} in the chain")
        elif _normal(sealed[key]) != _normal(row[key]):
            found.append(
                f"{key} is {_show(row[key])} in the table, {_show(sealed[key])} in the chain"
            )
    return found


def _normal(value: Any) -> str:
    # JSON both ways: a tuple and a list, or keys in another order, are the same snapshot.
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."
