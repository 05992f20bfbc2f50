"""The bytes an appended entry is sealed over are exactly what `audit verify` recomputes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.audit import NewEntry, entry_payload, sealed_bytes
from quartermaster.core.canonical import Encoded, canonical_json

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    before=st.none() | json_values,
    after=st.none() | json_values,
    texts=st.lists(st.text(), min_size=6, max_size=6),
    actor_id=st.none() | st.uuids(),
    seq=st.integers(min_value=1, max_value=2**62),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_sealed_bytes_are_the_canonical_json_of_the_entry(
    before: Any,
    after: Any,
    texts: list[str],
    actor_id: uuid.UUID | None,
    seq: int,
    at: datetime,
) -> None:
    actor, device, action, entity_type, entity_id, client_ts = texts
    entry = NewEntry(
        at=at,
        actor_id=actor_id,
        actor=actor,
        device=device,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=None if before is None else Encoded(before),
        after=None if after is None else Encoded(after),
        client_ts=client_ts,
        seq=seq,
    )
    # What verify reads back: the same columns, JSON decoded.
    stored = NewEntry(**{**_fields(entry), "before": before, "after": after})

    assert sealed_bytes(entry) == canonical_json(entry_payload(stored))  # type: ignore[arg-type]


def _fields(entry: NewEntry) -> dict[str, Any]:
    return {name: getattr(entry, name) for name in NewEntry.__slots__}  # type: ignore[attr-defined]
