"""Which server a device talks to, when it knows several (a shop with failover: one app
process per PC, on a PostgreSQL primary and its standby).

The device asks each server's `GET /health` and uses the one whose database `role` is
"primary"; failing that, one whose database answers at all (reads work on a standby; writes
there are answered 503 `not_primary` and retried). When the server in use fails (no answer, or
503 `failover`/`not_primary`), the next request chooses again. Switching servers loses and
doubles nothing: every op carries its op id, and whichever server gets it again answers the
first answer.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

HEALTH_PATH = "/health"
HEALTH_TIMEOUT_S = 2.0


def parse_servers(value: str | Sequence[str]) -> list[str]:
    """`http://a:8000,http://b:8000` (or a list) → ["http://a:8000", "http://b:8000"]."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    servers = [part.strip().rstrip("/") for part in parts if part.strip()]
    if not servers:
        raise ValueError("no server URL given")
    return list(dict.fromkeys(servers))


class Servers:
    """The servers a device knows, and the one it uses now."""

    def __init__(self, urls: str | Sequence[str], http: httpx.Client) -> None:
        self.urls = parse_servers(urls)
        self.http = http
        self.current = self.urls[0]
        # With one server there is nothing to choose: no /health round trip, ever.
        self._stale = len(self.urls) > 1

    @property
    def several(self) -> bool:
        return len(self.urls) > 1

    def use(self) -> str:
        """The server to send the next request to (asking their /health if due)."""
        if self._stale:
            self.current = self.choose()
            self._stale = False
        return self.current

    def failed(self) -> None:
        """The server in use did not do the job: choose again before the next request."""
        if self.several:
            self._stale = True

    def choose(self) -> str:
        """The first server whose database is the primary; else the first whose database
        answers; else the one after the server in use (nobody answers: keep trying round)."""
        answering: str | None = None
        for url in self._in_turn():
            role = self.role_of(url)
            if role == "primary":
                return url
            if role is not None and answering is None:
                answering = url
        if answering is not None:
            return answering
        return self.urls[(self.urls.index(self.current) + 1) % len(self.urls)]

    def role_of(self, url: str) -> str | None:
        """`url`'s database role ("primary", "standby", "unknown"), or None: no usable answer."""
        try:
            response = self.http.get(f"{url}{HEALTH_PATH}", timeout=HEALTH_TIMEOUT_S)
            body = response.json()
        except (httpx.HTTPError, ValueError):
            return None
        if not isinstance(body, dict) or body.get("database") != "ok":
            return None
        role = body.get("role")
        # A server older than the cluster contract says nothing of roles: its own database.
        return str(role) if role is not None else "primary"

    def _in_turn(self) -> list[str]:
        """Every server, the one in use first (stay put when it is still the primary)."""
        start = self.urls.index(self.current)
        return self.urls[start:] + self.urls[:start]
