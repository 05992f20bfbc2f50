"""Edit business rows behind the pipeline's back and see `audit verify --state` name each one:
the proof that a table's StateReader compares what its entries sealed (quartermaster.state_readers).
Each edit picks the last record of its entity type the chain holds, so the row is one that was
sealed, and the run before the edits (exit 0) is the proof that an untouched row reads as sealed."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.db import connection

from quartermaster.cli import main
from quartermaster.core.models import AuditEntry


@dataclass(frozen=True)
class Edit:
    entity_type: str
    table: str
    # The SET clause, raw SQL (`qty_base = qty_base + 1000`).
    assignment: str
    # The primary key column, when it is not a UUID or number `id` (a device's `device_id`).
    key_column: str = "id"


def _uuid(text: str) -> str:
    # SQLite stores a UUID as its 32 hex digits; PostgreSQL as a uuid.
    return text.replace("-", "") if connection.vendor == "sqlite" else text


def _where(edit: Edit, entity_id: str) -> tuple[str, list[object]]:
    """The row of the record `entity_id` names."""
    if edit.entity_type == "market.settings":  # one record, "market": the highest version
        return f"version = (SELECT MAX(version) FROM {edit.table})", []
    if edit.entity_type == "inspection.held_update":  # "<inspection>:<device seq>"
        inspection, seq = entity_id.split(":")
        return "inspection_id = %s AND device_seq = %s", [_uuid(inspection), int(seq)]
    if edit.key_column != "id":
        return f"{edit.key_column} = %s", [entity_id]
    return "id = %s", [int(entity_id) if entity_id.isdigit() else _uuid(entity_id)]


def _last_sealed(entity_type: str) -> str:
    entity_id = (
        AuditEntry.objects.filter(entity_type=entity_type, after__isnull=False)
        .order_by("-seq")
        .values_list("entity_id", flat=True)
        .first()
    )
    assert entity_id is not None, f"the chain holds no {entity_type}"
    return entity_id


def assert_each_edit_is_caught(capsys: pytest.CaptureFixture[str], edits: list[Edit]) -> None:
    capsys.readouterr()
    assert main(["audit", "verify", "--state"]) == 0, capsys.readouterr().out
    capsys.readouterr()
    edited = {edit.entity_type: _last_sealed(edit.entity_type) for edit in edits}
    with connection.cursor() as cursor:
        for edit in edits:
            where, params = _where(edit, edited[edit.entity_type])
            sql = f"UPDATE {edit.table} SET {edit.assignment} WHERE {where}"
            cursor.execute(sql, params)
            assert cursor.rowcount == 1, (edit, edited[edit.entity_type])

    code = main(["audit", "verify", "--state"])
    out = capsys.readouterr().out

    assert code == 1, out
    for edit in edits:
        assert f"{edit.entity_type} {edited[edit.entity_type]}: " in out, (edit, out)
