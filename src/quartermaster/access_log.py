"""What `serve` logs per request: uvicorn's access log, with secrets taken out of URLs.

Old WebSocket clients send their access token as `?token=`; uvicorn logs the full path of every
request, so without this filter a token would sit in the log for anyone who can read it.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

_SECRET_IN_QUERY = re.compile(r"(?i)([?&](?:token|access|refresh|password)=)[^&\s\"]*")
# A JWT wherever it appears (a parameter name spelled with %-escapes, a path, a header echoed in
# a message): three base64url parts, the first two JSON objects, so starting with `eyJ`.
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    """`text` with the values of secret-bearing query parameters, and any token, replaced by
    `[redacted]`."""
    return _JWT.sub("[redacted]", _SECRET_IN_QUERY.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    """Redacts secret query parameters in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with `RedactSecrets` on both of its handlers."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": f"{__name__}.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
