"""How a wire field that names another record is spelled, and the older spellings still accepted.

A reference is named after the kind of record it points to: `item`, `location`, `customer`,
`from_location`, `locations` (API.md). Some bodies and op payloads once spelled them `item_id`,
`location_id`, `location_ids`; clients in the field still send those, and devices keep queued
ops for days. One rule, applied to every wire body and op payload (`WireModel`: REST bodies,
their lines, and every command, which is what a sync op's payload is validated into):

    a field `x` holding a record id (a UUID) also accepts `x_id`;
    a field `xs` holding record ids accepts `x_ids`.

The rule is read off each model's own fields (and those of the models nested in it: a sale's
lines), so a new reference field follows it without a line here. Sending both spellings is
refused (the old one is then an unknown field).

Two doors, one rule: REST bodies inherit `WireModel`, whose validator applies it; a sync op's
payload is validated into its command strictly from JSON (sync.parse), where a model validator
would turn the strict JSON validation into Python validation (an array is then no tuple), so
parse applies `accept_old_spellings` to the payload first.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Union
from uuid import UUID

from pydantic import BaseModel, model_validator

_old_spellings: dict[type[BaseModel], dict[str, str]] = {}
_nested: dict[type[BaseModel], list[tuple[str, type[BaseModel]]]] = {}


def _holds(annotation: Any) -> str | None:
    """ "one" for a UUID (or an optional one), "many" for a list or tuple of them, else None."""
    if annotation is UUID:
        return "one"
    origin = typing.get_origin(annotation)
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if origin in (Union, types.UnionType):
        kinds = {_holds(argument) for argument in arguments}
        return kinds.pop() if len(kinds) == 1 else None
    if origin in (list, tuple) and arguments and all(a in (UUID, Ellipsis) for a in arguments):
        return "many"
    return None


def old_spellings(model: type[BaseModel]) -> dict[str, str]:
    """Old spelling → the field's wire name, for each reference field of `model`."""
    found = _old_spellings.get(model)
    if found is not None:
        return found
    taken = set(model.model_fields) | {
        field.alias for field in model.model_fields.values() if field.alias
    }
    found = {}
    for name, field in model.model_fields.items():
        wire = field.alias or name
        if wire == "id" or wire.endswith(("_id", "_ids")):
            continue
        kind = _holds(field.annotation)
        old = (
            f"{wire}_id"
            if kind == "one"
            else f"{wire[:-1]}_ids"
            if kind == "many" and wire.endswith("s")
            else None
        )
        if old is not None and old not in taken:
            found[old] = wire
    _old_spellings[model] = found
    return found


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds (alone, optional, or in a list or tuple), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    models = {_model_in(a) for a in typing.get_args(annotation) if a not in (type(None), Ellipsis)}
    models.discard(None)
    return models.pop() if len(models) == 1 else None


def nested_models(model: type[BaseModel]) -> list[tuple[str, type[BaseModel]]]:
    """(wire name, model) of each field of `model` that holds another model."""
    found = _nested.get(model)
    if found is None:
        found = []
        for name, field in model.model_fields.items():
            inner = _model_in(field.annotation)
            if inner is not None:
                found.append((field.alias or name, inner))
        _nested[model] = found
    return found


def accept_old_spellings(model: type[BaseModel], data: Any) -> Any:
    """`data` with each old spelling of a reference renamed to the field's wire name, in it and
    in the models nested in it. `data` itself is left as it is."""
    if not isinstance(data, dict):
        return data
    spellings = old_spellings(model)
    renamed = data
    for old in [old for old in spellings if old in data]:
        if spellings[old] not in data:
            renamed = dict(renamed) if renamed is data else renamed
            renamed[spellings[old]] = renamed.pop(old)
    for wire, inner in nested_models(model):
        value = renamed.get(wire)
        if isinstance(value, list):
            changed: Any = [accept_old_spellings(inner, element) for element in value]
        elif isinstance(value, dict):
            changed = accept_old_spellings(inner, value)
        else:
            continue
        if changed != value:
            renamed = dict(renamed) if renamed is data else renamed
            renamed[wire] = changed
    return renamed


class WireModel(BaseModel):
    """A model validated from a wire body or an op payload: references accept their old
    spellings (this module's rule)."""

    @model_validator(mode="before")
    @classmethod
    def _accept_old_reference_names(cls, data: Any) -> Any:
        return accept_old_spellings(cls, data)
