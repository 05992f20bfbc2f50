"""List pagination per the contract: `?limit=` (default 50, max 500), opaque `?cursor=`."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from quartermaster.core.errors import Invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def clean_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise Invalid.field("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(position: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise Invalid.field("cursor", "not a cursor this server issued") from exc
