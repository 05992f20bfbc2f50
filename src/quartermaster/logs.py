"""Structured logs: one JSON object per line (structlog), from our code, Django and uvicorn alike,
each line of a request carrying its `request_id`.

Secrets never reach a line: nothing logs a request body or an Authorization header, fields named
like a secret are replaced, and secret query parameters (`?token=`) are cut out of every message.
`QM_LOG_FORMAT=console` prints the same fields as text, for a developer's terminal.
"""

from __future__ import annotations

from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from quartermaster.access_log import redact

SECRET_FIELDS = frozenset(
    {
        "password",
        "old_password",
        "new_password",
        "token",
        "access",
        "refresh",
        "authorization",
        "secret",
        "api_key",
    }
)


def scrub_secrets(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    for key in SECRET_FIELDS.intersection(event_dict):
        event_dict[key] = "[redacted]"
    event = event_dict.get("event")
    if isinstance(event, str) and "=" in event:
        event_dict["event"] = redact(event)
    return event_dict


SHARED_PROCESSORS: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    scrub_secrets,
]


def formatter(log_format: str) -> dict[str, Any]:
    """A `logging.config` formatter entry rendering every record, ours or a library's."""
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=False)
        if log_format == "console"
        else structlog.processors.JSONRenderer()
    )
    return {
        "()": structlog.stdlib.ProcessorFormatter,
        "processors": [
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
        "foreign_pre_chain": SHARED_PROCESSORS,
    }


def configure_structlog() -> None:
    """structlog's own loggers hand their events to the standard library's handlers, so one
    formatter (above) writes every line."""
    structlog.configure(
        processors=[
            *SHARED_PROCESSORS,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def uvicorn_log_config(log_format: str) -> dict[str, Any]:
    """uvicorn's logging (secrets already filtered, `access_log`) with our formatter."""
    from quartermaster.access_log import uvicorn_log_config as filtered_config

    config = filtered_config()
    config["formatters"] = {"default": formatter(log_format), "access": formatter(log_format)}
    return config
