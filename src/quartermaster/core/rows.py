"""Inserting fully built rows in bulk, without the query compiler.

Every command writes rows this way (audit entries, feed rows, idempotency records, and the
ledger's movements, sales and invoices), so this is the hottest path of a batch sync: a value is
converted by a function chosen once per field and database, not by Django's per-value dispatch
through the connection proxy. The conversions are Django's own (`Field.get_db_prep_save`), for
the field types that dominate resolved once, for any other field called as is; a test holds
them equal on both databases.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.base import ModelState
from psycopg.types.json import Jsonb

from quartermaster.core.canonical import Encoded

Converter = Callable[[Any], Any]


def _uuid_converter(field: models.Field[Any, Any], native: bool) -> Converter:
    def convert(value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, uuid.UUID):
            value = field.to_python(value)
        return value if native else value.hex

    return convert


def _json_converter(field: models.JSONField[Any], conn: BaseDatabaseWrapper) -> Converter:
    adapt_json, encoder, prep = conn.ops.adapt_json_value, field.encoder, field.get_prep_value
    postgres = conn.vendor == "postgresql"

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if type(value) is Encoded:
            if encoder is not None:  # a custom encoder: Django's own way
                return adapt_json(prep(value.value), encoder)
            # Already encoded: store that text (the one the audit chain hashes).
            if postgres:
                text = value.text
                return Jsonb(value.value, dumps=lambda _: text)
            return value.text
        return adapt_json(prep(value), encoder)

    return convert


def _datetime_converter(
    field: models.DateTimeField[Any, Any], conn: BaseDatabaseWrapper
) -> Converter:
    adapt_datetime, prep = conn.ops.adapt_datetimefield_value, field.get_prep_value
    # The rows of one command share one timestamp: convert it once. One tuple, swapped whole,
    # so threads sharing this converter never pair a value with another's conversion.
    last: list[tuple[Any, Any]] = [(object(), None)]

    def convert(value: Any) -> Any:
        seen, converted = last[0]
        if value is seen:
            return converted
        converted = adapt_datetime(prep(value))
        last[0] = (value, converted)
        return converted

    return convert


def converter(field: models.Field[Any, Any], conn: BaseDatabaseWrapper) -> Converter:
    """What `field.get_db_prep_save(value, conn)` does to a value, as one function."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.UUIDField):
        return _uuid_converter(target, conn.features.has_native_uuid_field)
    if isinstance(field, models.JSONField):
        return _json_converter(field, conn)
    if isinstance(field, models.DateTimeField):
        return _datetime_converter(field, conn)
    if isinstance(field, models.IntegerField):
        adapt_int, prep, kind = (
            conn.ops.adapt_integerfield_value,
            field.get_prep_value,
            field.get_internal_type(),
        )
        return lambda value: adapt_int(prep(value), kind)
    if type(field) in (models.CharField, models.TextField):
        prep = field.get_prep_value
        return lambda value: value if type(value) is str else prep(value)
    if type(field) is models.BooleanField:
        return field.get_prep_value
    return lambda value: field.get_db_prep_save(value, conn)


def copy_converter(field: models.Field[Any, Any], conn: BaseDatabaseWrapper) -> Converter:
    """`converter` for a value sent by COPY, which travels as text whatever its type: an int or
    an encoded JSON text goes as it is, without the type wrapper a bound parameter needs."""
    base = converter(field, conn)
    if isinstance(field, models.JSONField) and field.encoder is None:
        return lambda value: value.text if type(value) is Encoded else base(value)
    if isinstance(field, models.IntegerField):
        return lambda value: value if type(value) is int else base(value)
    return base


# PostgreSQL: from this many rows on, COPY instead of INSERT. Django's psycopg cursors bind
# client-side, so a multi-row INSERT is one huge SQL text that psycopg splits and quotes value by
# value and the server then parses (measured: most of a 100-sale batch's time); COPY streams the
# same values in its own format.
COPY_FROM_ROWS = 10


def _as_is(field: models.Field[Any, Any], conn: BaseDatabaseWrapper, *, copy: bool) -> bool:
    """Whether the driver takes this field's values exactly as Django would hand them over, so
    reading the attribute is all there is to do. Rows carry values of the field's own Python
    type (str, int, bool, UUID, aware datetime), as the pipeline's rows do: for those values the
    conversion would return the value itself (text, booleans) or only a type tag the driver
    needs for a bound parameter, not for COPY, whose values travel as text."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(field, models.JSONField):
        return False
    if type(field) in (models.CharField, models.TextField, models.BooleanField):
        return True
    by_copy = copy and conn.vendor == "postgresql"
    if isinstance(target, models.IntegerField):
        return by_copy or conn.vendor == "sqlite"
    if isinstance(target, models.UUIDField | models.DateTimeField):
        return by_copy  # PostgreSQL's COPY reads their text; SQLite stores them converted
    return False


class _Values:
    """Turns a row into the values a statement sends: every attribute read in one call, and only
    the values that need it converted."""

    def __init__(
        self, fields: Sequence[models.Field[Any, Any]], conn: BaseDatabaseWrapper, *, copy: bool
    ) -> None:
        names = [f.attname for f in fields]
        read = attrgetter(*names)
        self.read: Callable[[object], tuple[Any, ...]] = (
            read if len(names) > 1 else lambda obj: (read(obj),)
        )
        make = copy_converter if copy else converter
        self.fixes = [
            (index, make(f, conn))
            for index, f in enumerate(fields)
            if not _as_is(f, conn, copy=copy)
        ]

    def __call__(self, obj: object) -> list[Any]:
        values = list(self.read(obj))
        for index, convert in self.fixes:
            values[index] = convert(values[index])
        return values


@dataclass(frozen=True)
class _Plan:
    insert: str  # "INSERT INTO t (columns) VALUES "
    row: str  # "(%s, …)"
    copy: str  # "COPY t (columns) FROM STDIN"
    width: int  # columns per row
    values: _Values  # a row's values for INSERT
    copy_values: _Values  # the same for COPY


_plans: dict[tuple[str, type[models.Model]], _Plan] = {}


def _plan(model: type[models.Model], conn: BaseDatabaseWrapper) -> _Plan:
    key = (conn.vendor, model)
    plan = _plans.get(key)
    if plan is None:
        # Auto primary keys are left to the database.
        fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
        quote = conn.ops.quote_name
        table = quote(model._meta.db_table)
        columns = ", ".join(quote(f.column) for f in fields)
        # Identifiers from model metadata only; every value goes through parameters.
        plan = _Plan(
            insert=f"INSERT INTO {table} ({columns}) VALUES ",  # noqa: S608
            row="(" + ", ".join(["%s"] * len(fields)) + ")",
            copy=f"COPY {table} ({columns}) FROM STDIN",
            width=len(fields),
            values=_Values(fields, conn, copy=False),
            copy_values=_Values(fields, conn, copy=True),
        )
        _plans[key] = plan
    return plan


def insert_rows(model: type[models.Model], rows: Sequence[object]) -> None:
    """INSERT fully built rows in as few statements as the database's parameter limit allows.

    The same values as `bulk_create`, without the query compiler. A row is a model instance
    (cheapest built by `new_row`) or any object with the model's attribute names (the audit
    chain's `NewEntry`); JSON values may come `Encoded`. Rows must carry every value themselves (auto_now fields set by the caller); an
    auto primary key is left to the database and not read back.
    """
    if not rows:
        return
    conn = connections[DEFAULT_DB_ALIAS]
    plan = _plan(model, conn)
    with conn.cursor() as cursor:
        if conn.vendor == "postgresql" and len(rows) >= COPY_FROM_ROWS:
            copy_values = plan.copy_values
            with cursor.cursor.copy(plan.copy) as copy:
                for obj in rows:
                    copy.write_row(copy_values(obj))
        else:
            values = plan.values
            max_params = _max_params(conn) or len(rows) * plan.width
            per_statement = max(1, max_params // plan.width)
            for start in range(0, len(rows), per_statement):
                chunk = rows[start : start + per_statement]
                cursor.execute(
                    plan.insert + ", ".join([plan.row] * len(chunk)),
                    [value for obj in chunk for value in values(obj)],
                )
    _mark_saved(rows, conn.alias)


def insert_new_rows(model: type[models.Model], rows: Sequence[models.Model]) -> set[Any]:
    """INSERT fully built rows, skipping each that a unique key already holds (`ON CONFLICT DO
    NOTHING`, on both databases: a concurrent holder of the key is waited for, never an
    IntegrityError, so no savepoint is needed); the primary keys of the rows inserted. Two rows
    of `rows` with one key: the first is inserted. For dedupe keys (notifications, outbox)."""
    if not rows:
        return set()
    conn = connections[DEFAULT_DB_ALIAS]
    pk = model._meta.pk
    assert pk is not None
    returning = f" ON CONFLICT DO NOTHING RETURNING {conn.ops.quote_name(pk.column)}"
    inserted: set[Any] = set()
    with conn.cursor() as cursor:
        for sql, params in _insert_new_statements(model, rows, conn):
            cursor.execute(sql + returning, params)
            inserted.update(pk.to_python(value) for (value,) in cursor.fetchall())
    _mark_saved([row for row in rows if row.pk in inserted], conn.alias)
    return inserted


def _insert_new_statements(
    model: type[models.Model], rows: Sequence[models.Model], conn: BaseDatabaseWrapper
) -> list[tuple[str, list[Any]]]:
    """The INSERTs (without their conflict clause) of `rows`. PostgreSQL: one statement whose
    rows come from one array per column (`unnest`), so the server parses a handful of array
    literals instead of a VALUES list of every value (50 outbox rows: a VALUES list was the
    slowest statement of a market batch; COPY, faster still, cannot skip a conflict); SQLite:
    VALUES lists."""
    plan = _plan(model, conn)
    if conn.vendor == "postgresql":
        fields = [f for f in model._meta.concrete_fields if not isinstance(f, models.AutoField)]
        arrays = ", ".join(f"%s::{f.db_type(conn)}[]" for f in fields)
        columns = [list(column) for column in zip(*map(plan.values, rows), strict=True)]
        head = plan.insert.removesuffix(" VALUES ")
        return [(f"{head} SELECT * FROM unnest({arrays})", columns)]  # noqa: S608
    per_statement = max(1, (_max_params(conn) or len(rows) * plan.width) // plan.width)
    return [
        (
            plan.insert + ", ".join([plan.row] * len(chunk)),
            [value for obj in chunk for value in plan.values(obj)],
        )
        for chunk in (rows[i : i + per_statement] for i in range(0, len(rows), per_statement))
    ]


_M = TypeVar("_M", bound=models.Model)
_columns: dict[type[models.Model], frozenset[str]] = {}


def new_row(model: type[_M], **values: Any) -> _M:
    """A model instance for `insert_rows`, built from every column's value without running
    `Model.__init__`: no field defaults, no init signals, a tenth of the cost (measured: 5.4 →
    0.4 µs a sale line; a 100-sale batch builds ~1,200 rows). Every concrete field is given by
    its attribute name (`sale_id`, and `id=None` for an auto key); any other set is refused."""
    columns = _columns.get(model)
    if columns is None:
        columns = _columns[model] = frozenset(f.attname for f in model._meta.concrete_fields)
    if values.keys() != columns:
        missing, unknown = sorted(columns - values.keys()), sorted(values.keys() - columns)
        raise TypeError(f"{model.__name__}: missing {missing}, unknown {unknown}")
    row = model.__new__(model)
    state = row.__dict__
    state.update(values)
    state["_state"] = ModelState()
    return row


def _mark_saved(rows: Sequence[object], alias: str) -> None:
    """Model instances inserted here are saved ones from now on, as after `save()`."""
    for obj in rows:
        if isinstance(obj, models.Model):
            obj._state.adding = False
            obj._state.db = alias


def _max_params(conn: BaseDatabaseWrapper) -> int | None:
    """Parameters one statement may carry. SQLite: the library's own limit (Django assumes the
    999 of old builds; 3.32+ allow 32,766), so a batch's audit rows go in one statement."""
    if conn.vendor == "sqlite":
        raw = conn.connection
        if raw is not None:
            return int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    limit = conn.features.max_query_params
    return int(limit) if limit else None


@dataclass(frozen=True)
class _ReadPlan:
    columns: str  # every column, qualified by the table
    table: str
    attnames: tuple[str, ...]
    # (position, converters) for the columns whose database value is not the Python value
    converted: tuple[tuple[int, tuple[Callable[..., Any], ...], Any], ...]


_read_plans: dict[tuple[type[models.Model], str], _ReadPlan] = {}


def _read_plan(model: type[models.Model], conn: BaseDatabaseWrapper) -> _ReadPlan:
    plan = _read_plans.get((model, conn.vendor))
    if plan is None:
        fields = model._meta.concrete_fields
        quote = conn.ops.quote_name
        table = model._meta.db_table
        converted = []
        for position, field in enumerate(fields):
            col = field.get_col(table)
            # What the ORM's compiler applies: the backend's converters, then the field's.
            functions = tuple(conn.ops.get_db_converters(col) + col.get_db_converters(conn))
            if functions:
                converted.append((position, functions, col))
        plan = _ReadPlan(
            columns=", ".join(f"{quote(table)}.{quote(f.column)}" for f in fields),
            table=quote(table),
            attnames=tuple(f.attname for f in fields),
            converted=tuple(converted),
        )
        _read_plans[(model, conn.vendor)] = plan
    return plan


def read_rows(model: type[_M], where: str, params: Sequence[Any], tail: str = "") -> list[_M]:
    """Rows of `model` matching the SQL condition `where` (then `tail`: ORDER BY, FOR UPDATE),
    as model instances built like `new_row`, without the query compiler: for hot reads whose
    SQL is fixed. Values come back through the converters the ORM itself would apply."""
    return [row for row, _ in read_rows_with(model, "", "", where, params, tail)]


def read_rows_with(
    model: type[_M], extra: str, join: str, where: str, params: Sequence[Any], tail: str = ""
) -> list[tuple[_M, tuple[Any, ...]]]:
    """`read_rows`, each row with the values of the `extra` columns selected after the model's
    (from the tables `join` adds; the model's own table is named as itself)."""
    conn = connections[DEFAULT_DB_ALIAS]
    plan = _read_plan(model, conn)
    columns = f"{plan.columns}, {extra}" if extra else plan.columns
    sql = f"SELECT {columns} FROM {plan.table} {join} WHERE {where}{tail}"  # noqa: S608
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    width = len(plan.attnames)
    rows = []
    for values in fetched:
        own = list(values[:width])
        for position, functions, col in plan.converted:
            value = own[position]
            for function in functions:
                value = function(value, col, conn)
            own[position] = value
        row = model.__new__(model)
        row.__dict__.update(zip(plan.attnames, own, strict=True))
        state = ModelState()
        state.adding, state.db = False, conn.alias
        row.__dict__["_state"] = state
        rows.append((row, tuple(values[width:])))
    return rows


def uuid_param(value: uuid.UUID) -> Any:
    """A UUID as the database takes it in a plain statement's parameters (SQLite: hex text)."""
    conn = connections[DEFAULT_DB_ALIAS]
    return value if conn.features.has_native_uuid_field else value.hex
