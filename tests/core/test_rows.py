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
from quartermaster.core.rows import converter

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
        convert = converter(field, connection)
        for value in samples:
            if value is None and not field.null and not isinstance(target, models.UUIDField):
                continue
            assert comparable(convert(value)) == comparable(
                field.get_db_prep_save(value, connection)
            ), (field, value)
            checked += 1
            if isinstance(field, models.JSONField) and value is not None:
                # Encoded once by the pipeline: stored as Django would store the value itself.
                assert _stored(convert(Encoded(value))) == _stored(
                    field.get_db_prep_save(value, connection)
                ), (field, value)
    assert checked > 100


def _stored(value: Any) -> Any:
    """The text that reaches the database (PostgreSQL: the wrapper's dumps of what it wraps)."""
    if hasattr(value, "obj") and hasattr(value, "dumps"):
        return (value.dumps or json.dumps)(value.obj)
    return value
