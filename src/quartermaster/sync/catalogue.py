"""The op catalogue: every op type batch sync accepts, with its payload's JSON Schema, read
from the command registry (a command is an op type unless it says `syncable = False`), so the
catalogue cannot drift from what the server runs. Published in the OpenAPI document
(`x-op-catalogue`) and in docs/op-catalogue.md (`quartermaster op-catalogue --markdown`)."""

from __future__ import annotations

import json
from typing import Any

from quartermaster.core.commands import Command


def op_catalogue() -> dict[str, dict[str, Any]]:
    """{op type: {"summary", "payload" (JSON Schema), "versioned"}} in name order."""
    catalogue = {}
    for name in sorted(Command.registry):
        command_class = Command.registry[name]
        if not getattr(command_class, "syncable", True):
            continue
        if not command_class.__module__.startswith("quartermaster."):
            continue  # a stand-in a test defined: never part of the published catalogue
        schema = command_class.model_json_schema(mode="validation")
        schema.pop("title", None)
        catalogue[name] = {
            "summary": _summary(command_class),
            "payload": schema,
            # An op may carry base_version only for commands that take one (core/conflicts.py).
            "versioned": "base_version" in command_class.model_fields,
        }
    return catalogue


def _summary(command_class: type[Command]) -> str:
    doc = (command_class.__doc__ or "").strip()
    return " ".join(doc.split("\n\n")[0].split())


def catalogue_markdown() -> str:
    lines = [
        "# Sync op catalogue",
        "",
        "Generated from the command registry by `quartermaster op-catalogue --markdown`;",
        "do not edit by hand (tests/sync/test_op_catalogue.py fails when it is stale). The same",
        "catalogue is in the OpenAPI document at /api/v1/openapi.json under `x-op-catalogue`.",
        "",
        'An op is `{"op_id", "type", "payload", "client_temp_id"?, "base_version"?, ...}`',
        'in `POST /api/v1/sync/batch` (API.md, "Sync"); `payload` follows the schema below.',
        "A payload may name a `client_temp_id` of this device wherever an id is expected.",
        "A reference `x` also accepts its old spelling `x_id` (a list `xs`: `x_ids`), as in",
        "`item_id` for `item` (core/references.py; sending both is 400).",
        "",
    ]
    for name, entry in op_catalogue().items():
        lines += [f"## `{name}`", ""]
        if entry["summary"]:
            lines += [entry["summary"], ""]
        if entry["versioned"]:
            lines += [
                "Versioned: an op may carry `base_version` (a stale one is a 409 conflict).",
                "",
            ]
        properties = entry["payload"].get("properties", {})
        required = set(entry["payload"].get("required", []))
        if properties:
            lines += ["| field | type | required |", "|---|---|---|"]
            for field, spec in properties.items():
                lines.append(
                    f"| `{field}` | {_type_of(spec)} | {'yes' if field in required else ''} |"
                )
            lines.append("")
        lines += ["<details><summary>JSON Schema</summary>", "", "```json"]
        lines += [
            json.dumps(entry["payload"], indent=2, sort_keys=True),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


def _type_of(spec: dict[str, Any]) -> str:
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in spec:
        return " or ".join(_type_of(option) for option in spec["anyOf"])
    if spec.get("type") == "array":
        return f"list of {_type_of(spec.get('items', {}))}"
    kind = str(spec.get("type", "any"))
    return f"{kind} ({spec['format']})" if "format" in spec else kind
