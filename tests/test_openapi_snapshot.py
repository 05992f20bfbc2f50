"""The published OpenAPI document changes only on purpose: `make openapi` rewrites the snapshot."""

from __future__ import annotations

import json
import os
from pathlib import Path

from quartermaster.api import api

SNAPSHOT = Path(__file__).parent / "snapshots" / "openapi.json"


def test_openapi_matches_the_snapshot() -> None:
    current = json.loads(json.dumps(api.get_openapi_schema(path_prefix="/api/v1")))
    if os.environ.get("QM_UPDATE_SNAPSHOT"):
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    expected = json.loads(SNAPSHOT.read_text())

    assert current == expected, "the API changed: review it, then run `make openapi`"


def test_every_documented_path_is_under_api_v1() -> None:
    paths = api.get_openapi_schema(path_prefix="/api/v1")["paths"]

    assert paths
    assert all(path.startswith("/api/v1/") for path in paths)
