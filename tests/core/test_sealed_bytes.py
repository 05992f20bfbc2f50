"""The bytes an appended entry is sealed over are exactly what `audit verify` recomputes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from quartermaster.core.audit import NewEntry, entry_payload, seal, sealed_bytes
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


# The chain's format, pinned: any change to these bytes breaks every stored chain's
# verification, so it must come with a new chain version that `audit verify` tells apart.
PINNED_BYTES = (
    '{"action":"item.adjust","actor":"driver1",'
    '"actor_id":"00000000-0000-4000-8000-000000000001",'
    '"after":{"name":"மல்லி","price":"12.50","qty":2},'
    '"at":"2026-12-02T05:00:00.123456+00:00",'
    '"before":{"name":"மல்லி","price":"12.50","qty":3},'
    '"client_ts":"2026-12-02T04:59:58Z","device":"phone-7",'
    '"entity_id":"0b0e0f00-0000-4000-8000-00000000000a","entity_type":"item","seq":42}'
).encode()
PINNED_HASH = "a924ef6877b117f0f9479b29d8e3126a0a9cf27be46f440bc4602c840e01ebde"


def test_the_sealed_bytes_and_hash_of_an_entry_are_pinned() -> None:
    before = {"name": "மல்லி", "qty": 3, "price": "12.50"}
    after = {"name": "மல்லி", "qty": 2, "price": "12.50"}
    entry = NewEntry(
        at=datetime(2026, 12, 2, 5, 0, 0, 123456, tzinfo=UTC),
        actor_id=uuid.UUID("00000000-0000-4000-8000-000000000001"),
        actor="driver1",
        device="phone-7",
        action="item.adjust",
        entity_type="item",
        entity_id="0b0e0f00-0000-4000-8000-00000000000a",
        before=Encoded(before),
        after=Encoded(after),
        client_ts="2026-12-02T04:59:58Z",
        seq=42,
    )
    stored = NewEntry(**{**_fields(entry), "before": before, "after": after})

    assert sealed_bytes(entry) == PINNED_BYTES
    assert seal("0" * 64, entry_payload(stored), b"pinned-audit-key") == PINNED_HASH  # type: ignore[arg-type]
