"""`serve` never writes a token to its log, and takes no client address from a made-up header."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from quartermaster.access_log import RedactSecrets, redact
from tests.acceptance.test_served_api import login, start_quartermaster, stop


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/ws/changes?token=eyJ.abc.def", "/ws/changes?token=[redacted]"),
        ("/x?a=1&TOKEN=s3cret&b=2", "/x?a=1&TOKEN=[redacted]&b=2"),
        ("/x?refresh=r&password=p", "/x?refresh=[redacted]&password=[redacted]"),
        ("/api/v1/items?limit=5", "/api/v1/items?limit=5"),
        ("/x?tokens=plural", "/x?tokens=plural"),
        # A token wherever it is: a %-escaped parameter name (which parse_qs still reads as
        # `token`), a path segment.
        (
            "/ws/changes?%74oken=eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl",
            "/ws/changes?%74oken=[redacted]",
        ),
        ("/x/eyJhbGciOi.eyJzdWIiOi.c2ln-_x/y", "/x/[redacted]/y"),
    ],
)
def test_secret_query_values_are_redacted(path: str, expected: str) -> None:
    assert redact(path) == expected


def test_the_filter_redacts_the_arguments_of_an_access_record() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s"',
        ("1.2.3.4", "GET", "/ws?token=t"),
        None,
    )

    assert RedactSecrets().filter(record)
    assert record.getMessage() == '1.2.3.4 - "GET /ws?token=[redacted]"'


@pytest.mark.slow
def test_a_served_websocket_token_never_reaches_the_log(tmp_path: Path) -> None:
    process, base = start_quartermaster(tmp_path, ["demo", "--serve"])
    try:
        token = login(base, "admin", "admin-demo-pass")["Authorization"].removeprefix("Bearer ")
        with connect(base.replace("http://", "ws://") + f"/ws/changes?token={token}"):
            httpx.get(f"{base}/health")
        httpx.get(f"{base}/api/v1/items", headers={"X-Forwarded-For": "203.0.113.9"})
    finally:
        stop(process)
    log = "".join(path.read_text() for path in tmp_path.glob("server-*.log"))

    assert "/ws/changes?token=[redacted]" in log
    assert token not in log
    assert "203.0.113.9" not in log  # the socket's address is logged, not the header's claim
