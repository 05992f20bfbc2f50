"""Parsing an op, once, into the validated command it runs or the typed refusal it answers.

An op is parsed when its unit is reached (`sync.plan`), after the ops before it settled: its
payload may name temp ids those ops created (`sync.temp_ids`). Everything decided before the
command runs is decided here (the op type, its temp ids, its payload, the actor's permission and
the command's pure invariants), so whatever `execute` then answers is what it stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from quartermaster.core import policy
from quartermaster.core.commands import Command
from quartermaster.core.errors import DomainError, Invalid
from quartermaster.core.references import accept_old_spellings
from quartermaster.core.types import Actor
from quartermaster.sync.errors import UnknownOpType
from quartermaster.sync.ops import Op
from quartermaster.sync.temp_ids import TempIds


@dataclass(frozen=True)
class Ready:
    """An op whose command passed every check that needs no database: it runs."""

    op: Op
    command: Command


@dataclass(frozen=True)
class Refused:
    """An op answered with `error` without running. `by_command`: its command was built and its
    own checks refused it (permission, invariants); its temp id is then recorded as failed,
    like that of an op its handler refused, while a refusal of the op's shape (type, temp ids,
    payload) records none."""

    op: Op
    error: DomainError
    by_command: bool = False


ParsedOp = Ready | Refused


def parse(op: Op, actor: Actor, temp_ids: TempIds) -> ParsedOp:
    try:
        command = _command_for(op, temp_ids)
    except DomainError as error:
        return Refused(op, error)
    try:
        # execute checks the same again; deciding here means execute never refuses an op
        # before claiming its id, so no refusal of it needs storing apart.
        policy.authorize(actor, command.name)
        return Ready(op, command.validated())
    except DomainError as error:
        return Refused(op, error, by_command=True)


def _command_for(op: Op, temp_ids: TempIds) -> Command:
    command_class = Command.registry.get(op.type)
    if command_class is None or not getattr(command_class, "syncable", True):
        raise UnknownOpType(op.type)
    temp_ids.check_unused(op)
    # Old spellings of references (`item_id` for `item`) are still accepted: core.references.
    payload = accept_old_spellings(command_class, temp_ids.resolve(op.payload))
    if op.base_version is not None:
        # The seam for versioned records: a command that takes base_version receives it.
        if "base_version" not in command_class.model_fields:
            raise Invalid.field("base_version", f"{op.type} ops are not versioned")
        payload = {**payload, "base_version": op.base_version}
    if "device_seq" in command_class.model_fields:
        # A command that orders a device's ops by their number (an inspection's offline
        # updates) receives the op's, never a number the payload claims.
        payload = {**payload, "device_seq": op.device_seq}
    try:
        # Strict, from JSON: a boolean is not an integer, a UUID arrives as a string.
        return command_class.model_validate_json(json.dumps(payload), strict=True)
    except ValidationError as exc:
        raise Invalid.from_errors(exc.errors()) from exc
