"""core.rows converts each value exactly as Django's `get_db_prep_save` does, on this database."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from django.apps import apps
from django.db import connection, models

from quartermaster.core.canonical import Encoded
from quartermaster.core.rows import _as_is, converter, copy_converter

SAMPLES: dict[type[models.Field[Any, Any]], list[Any]] = {
    models.UUIDField: [None, uuid.uuid4(), str(uuid.uuid4())],
    models.JSONField: [None, {"a": [1, "two", None]}, [], "text", 3],
    models.DateTimeField: [None, datetime(2026, 12, 1, 5, 12, 3, 123456, tzinfo=UTC)],
    models.CharField: ["", "Lakshmi Stores ₹", None],
    models.TextField: ["", "a\nb"],
    models.BooleanField: [True, False],
    models.IntegerField: [0, -5, 10**12, None],
}


def comparable(value: Any) -> Any:
    """PostgreSQL adapts JSON into a wrapper object: compare what it wraps."""
    if hasattr(value, "obj") and hasattr(value, "dumps"):
        return ("json", value.obj)
    return (type(value), value)


def project_fields() -> list[models.Field[Any, Any]]:
    return [
        field
        for app in ("core", "inventory", "sales", "sync")
        for model in apps.get_app_config(app).get_models()
        for field in model._meta.concrete_fields
        if not isinstance(field, models.AutoField)
    ]


@pytest.mark.django_db
def test_every_field_converts_as_django_would() -> None:
    checked = 0
    for field in project_fields():
        target = field.target_field if isinstance(field, models.ForeignKey) else field
        samples = next(
            (values for kind, values in SAMPLES.items() if isinstance(target, kind)), None
        )
        assert samples is not None, f"no samples for {field!r}: add them"
        bound, copied = converter(field, connection), copy_converter(field, connection)
        for value in samples:
            if value is None and not field.null and not isinstance(target, models.UUIDField):
                continue
            django = field.get_db_prep_save(value, connection)
            # A bound parameter: the very value (and type) Django would bind.
            assert comparable(bound(value)) == comparable(django), (field, value)
            # COPY: the same once on the wire as text.
            assert wire(field, copied(value)) == wire(field, django), (field, value)
            # A value passed as it is (no conversion at all) must mean the same too.
            for copy in (False, True):
                if _as_is(field, connection, copy=copy):
                    expected = wire(field, copied(value) if copy else bound(value))
                    assert wire(field, value) == expected, (field, value, copy)
            if isinstance(field, models.JSONField) and value is not None:
                # Encoded once by the pipeline: the same JSON value either way.
                assert wire(field, bound(Encoded(value))) == wire(field, django), (field, value)
                assert wire(field, copied(Encoded(value))) == wire(field, django), (field, value)
            checked += 1
    assert checked > 100


def wire(field: models.Field[Any, Any], value: Any) -> Any:
    """What a value reads as once it is text on the wire; JSON decoded to compare values."""
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        # PostgreSQL adapts JSON into a wrapper that dumps what it wraps.
        text = (value.dumps or json.dumps)(value.obj) if hasattr(value, "obj") else value
        return ("json", json.loads(text))
    return str(value)


def test_a_new_row_needs_every_column_and_nothing_else() -> None:
    from quartermaster.core.models import NumberSeries
    from quartermaster.core.rows import new_row

    columns = {f.attname: None for f in NumberSeries._meta.concrete_fields}
    assert isinstance(new_row(NumberSeries, **columns), NumberSeries)
    with pytest.raises(TypeError, match=r"missing \['last_value'\]"):
        new_row(NumberSeries, **{k: v for k, v in columns.items() if k != "last_value"})
    with pytest.raises(TypeError, match=r"unknown \['colour'\]"):
        new_row(NumberSeries, **columns, colour="red")


@pytest.mark.django_db
def test_a_new_row_inserts_and_reads_back_as_the_orm_would_store_it() -> None:
    from quartermaster.core.rows import insert_rows, new_row
    from quartermaster.inventory.models import Location, Movement

    location = Location.objects.create(name="Truck 7", kind="vehicle")
    at = datetime(2026, 12, 1, 5, 12, 3, 123456, tzinfo=UTC)
    row = new_row(
        Movement,
        id=uuid.uuid4(),
        kind="adjustment",
        reason="loss ₹",
        reference=f"location:{location.pk}",
        reverses_id=None,
        client_temp_id="",
        actor="driver1",
        created_at=at,
    )

    insert_rows(Movement, [row])

    stored = Movement.objects.get(pk=row.pk)
    assert (stored.kind, stored.reason, stored.reference, stored.actor, stored.created_at) == (
        "adjustment",
        "loss ₹",
        f"location:{location.pk}",
        "driver1",
        at,
    )
    assert row._state.adding is False
