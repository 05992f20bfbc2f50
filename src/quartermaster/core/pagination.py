"""Keyset pagination for every list, per the contract: `?limit=` (default 50, max 500), an opaque
`?cursor=`, and `{"results": [...], "next_cursor": ...}`.

A list says only what it orders by, as a `Keyset` of typed `KeyField`s; this module owns the
rest: reading a cursor back into typed values (anything else is a 400 naming `cursor`, never a
5xx from the database), the condition `(f1, f2, ...) > (v1, v2, ...)` on a QuerySet, and the
cursor of the next page.

A cursor is the last row's key as JSON, base64url without padding: a list of the fields' wire
values, or the bare value for a one-field key (the audit cursor has always been a bare seq).
Cursors already in clients' hands keep working, so that format is part of the contract.
"""

from __future__ import annotations

import base64
import binascii
import json
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce
from typing import Any, Generic, TypeVar
from uuid import UUID

from django.db.models import Model, Q, QuerySet

from quartermaster.core.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
# Above any cursor we issue (a 200-character name of escaped astral characters and an id encode
# to about 3,300 characters), near gunicorn's default request-line limit (4094): beyond, not ours.
MAX_CURSOR_LENGTH = 4096
# Key values are 63-bit like every integer we accept, so none overflows a database column.
MAX_KEY_INT = 2**63 - 1

NOT_OURS = "not a cursor this server issued"

Wire = str | int
Position = tuple[Any, ...]
T = TypeVar("T")
U = TypeVar("U")
M = TypeVar("M", bound=Model)


def clean_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


@dataclass(frozen=True)
class KeyField:
    """One field of an ordering: the model field, and its value to and from the wire.

    `parse` raises ValueError or TypeError for anything `dump` could not have written.
    """

    name: str
    parse: Callable[[object], Any]
    dump: Callable[[Any], Wire]


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    # NUL and lone surrogates cannot reach PostgreSQL (or any UTF-8 driver): a 500, not ours.
    if "\x00" in value:
        raise ValueError("NUL in text")
    value.encode("utf-8")  # UnicodeEncodeError is a ValueError
    return value


def _uuid(value: object) -> UUID:
    return UUID(_text(value))


def _moment(value: object) -> datetime:
    moment = datetime.fromisoformat(_text(value))
    if moment.tzinfo is None:
        raise ValueError("a naive time")  # we only issue aware ones; Django would warn on it
    try:
        # The database compares in UTC: a time at the edge of the calendar must fail here.
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("out of range") from exc


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    if not 0 <= value <= MAX_KEY_INT:
        raise ValueError("out of range")
    return value


def text_key(name: str) -> KeyField:
    return KeyField(name, _text, str)


def uuid_key(name: str) -> KeyField:
    return KeyField(name, _uuid, str)


def time_key(name: str) -> KeyField:
    return KeyField(name, _moment, datetime.isoformat)


def int_key(name: str) -> KeyField:
    return KeyField(name, _int, int)


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    next_cursor: str | None

    def map(self, convert: Callable[[T], U]) -> Page[U]:
        return Page([convert(row) for row in self.rows], self.next_cursor)


@dataclass(frozen=True)
class PageRequest:
    """A cleaned `?limit=&cursor=`: `after` is the typed key of the previous page's last row."""

    keyset: Keyset
    after: Position | None
    limit: int


@dataclass(frozen=True)
class Keyset:
    """An ordering with a unique key (its last field is unique), ascending or descending."""

    fields: tuple[KeyField, ...]
    descending: bool = False

    def request(self, *, cursor: str | None, limit: int | None) -> PageRequest:
        return PageRequest(self, self.position(cursor), clean_limit(limit))

    def page(self, query: QuerySet[M], request: PageRequest) -> Page[M]:
        """The page of `query` after `request.after`, in this order, and the next page's cursor."""
        if request.keyset is not self:
            raise ValueError("a page request of another ordering")  # a programming error
        if request.after is not None:
            query = query.filter(self.after(request.after))
        rows = list(query.order_by(*self.ordering())[: request.limit])
        full = len(rows) == request.limit
        return Page(rows, self.cursor_of(rows[-1]) if full else None)

    def ordering(self) -> list[str]:
        sign = "-" if self.descending else ""
        return [f"{sign}{field.name}" for field in self.fields]

    def after(self, position: Position) -> Q:
        """`(f1, f2, ...) > (v1, v2, ...)` (`<` descending) as Q objects, which every database
        and Django plan the same: f1 > v1 OR (f1 = v1 AND f2 > v2) OR ..."""
        beyond = "lt" if self.descending else "gt"
        names = [field.name for field in self.fields]
        terms = [
            Q(**dict(zip(names[:i], position[:i], strict=True)), **{f"{name}__{beyond}": value})
            for i, (name, value) in enumerate(zip(names, position, strict=True))
        ]
        return reduce(operator.or_, terms)

    def cursor_of(self, row: object) -> str:
        wire = [field.dump(getattr(row, field.name)) for field in self.fields]
        return _encode(wire[0] if len(wire) == 1 else wire)

    def position(self, cursor: str | None) -> Position | None:
        """The typed key a cursor carries, or None for no cursor; Invalid for anything else."""
        if not cursor:
            return None
        decoded = _decode(cursor)
        wire = [decoded] if len(self.fields) == 1 else decoded
        if not isinstance(wire, list) or len(wire) != len(self.fields):
            raise Invalid.field("cursor", NOT_OURS)
        try:
            return tuple(field.parse(value) for field, value in zip(self.fields, wire, strict=True))
        except (TypeError, ValueError) as exc:
            raise Invalid.field("cursor", NOT_OURS) from exc


def _encode(position: Wire | Sequence[Wire]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def _decode(cursor: str) -> object:
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise Invalid.field("cursor", NOT_OURS)
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    # RecursionError: JSON nested deeper than the parser goes ("[[[[...").
    except (ValueError, binascii.Error, RecursionError) as exc:
        raise Invalid.field("cursor", NOT_OURS) from exc
