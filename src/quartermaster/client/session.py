"""Talking to the server as a logged-in device: tokens kept in the device database, one refresh
(then a fresh login) on 401, and failures sorted into "retry later" and "a person must act".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from quartermaster.client.servers import Servers
from quartermaster.client.store import DeviceStore

# 503 codes that say "this server cannot do it now, another may": API.md "Cluster".
SWITCH_CODES = frozenset({"failover", "not_primary"})


class SyncError(Exception):
    """Base of the errors a sync round can end with."""


class RetryLater(SyncError):
    """Transport failure, 5xx, 429 or an unreadable answer: nothing was lost, try again later."""

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NeedsAttention(SyncError):
    """Retrying will not help (bad credentials, forbidden device, no sync on this server)."""


def retry_after_of(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if isinstance(body, dict) and "error" in body:
        code = f" ({body['code']})" if body.get("code") else ""
        return f"HTTP {response.status_code}: {body['error']}{code}"
    return f"HTTP {response.status_code}"


def _code_of(response: httpx.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class Session:
    """An authenticated HTTP session for one device. Tokens live in the device database, so a
    restarted agent does not log in again; the password is never stored.

    `server_url` may name several servers (a list, or URLs separated by commas): the session
    uses the one whose database is the primary and moves on when it fails (client.servers)."""

    def __init__(
        self,
        store: DeviceStore,
        server_url: str | Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        device_id: str,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.store = store
        self.device_id = device_id
        self.username = username or store.get_meta("username")
        self.password = password
        if username and username != store.get_meta("username"):
            # Someone else's tokens must not be used for this user's ops.
            store.set_meta({"username": username, "access": None, "refresh": None})
        self.http = httpx.Client(timeout=timeout_s, transport=transport)
        self.servers = Servers(server_url, self.http)

    @property
    def server(self) -> str:
        """The server in use now."""
        return self.servers.current

    def close(self) -> None:
        self.http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """Send with the access token; on 401 re-authenticate once and send again.

        Raises RetryLater on a transport failure; every HTTP answer is returned to the caller.
        With several servers, a transport failure or a 503 `failover`/`not_primary` sends the
        same request to the next server chosen (once round them all): safe for every request
        this client sends, since ops carry op ids and the rest are reads or token requests.
        """
        for attempt in range(len(self.servers.urls)):
            last = attempt == len(self.servers.urls) - 1
            try:
                response = self._request_here(method, path, json=json, params=params)
            except RetryLater:
                self.servers.failed()
                if last:
                    raise
                continue
            if response.status_code == 503 and _code_of(response) in SWITCH_CODES:
                self.servers.failed()
                if not last:
                    continue
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _request_here(
        self, method: str, path: str, *, json: Any, params: dict[str, Any] | None
    ) -> httpx.Response:
        if self.store.get_meta("access") is None:
            self.login()
        response = self._send(method, path, json=json, params=params)
        if response.status_code == 401:
            self.reauthenticate()
            response = self._send(method, path, json=json, params=params)
        return response

    def _send(
        self, method: str, path: str, *, json: Any, params: dict[str, Any] | None
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.store.get_meta('access')}"}
        try:
            return self.http.request(
                method, self.servers.use() + path, json=json, params=params, headers=headers
            )
        except httpx.TransportError as error:
            raise RetryLater(f"{type(error).__name__}: {error or 'no answer'}") from error

    def login(self) -> None:
        if not self.username or self.password is None:
            raise NeedsAttention(
                "not logged in: give --username and --password "
                "(or QM_AGENT_USERNAME and QM_AGENT_PASSWORD)"
            )
        body = {"username": self.username, "password": self.password, "device_id": self.device_id}
        response = self._post_unauthenticated("/api/v1/auth/login", body)
        if response.status_code in (400, 401, 403):
            raise NeedsAttention(f"login refused for {self.username!r}: {error_text(response)}")
        self._keep_tokens(response, "login")

    def reauthenticate(self) -> None:
        """Refresh the token pair; if the refresh token is spent or expired, log in again."""
        refresh = self.store.get_meta("refresh")
        if refresh is not None:
            response = self._post_unauthenticated("/api/v1/auth/refresh", {"refresh": refresh})
            if response.status_code == 200:
                self._keep_tokens(response, "refresh")
                return
            if response.status_code >= 500 or response.status_code == 429:
                raise RetryLater(f"token refresh failed: {error_text(response)}")
        # A refresh answer lost on the way spends the token; the password is the way back in.
        self.store.set_meta({"access": None, "refresh": None})
        self.login()

    def _post_unauthenticated(self, path: str, body: dict[str, Any]) -> httpx.Response:
        try:
            return self.http.post(self.servers.use() + path, json=body)
        except httpx.TransportError as error:
            raise RetryLater(f"{type(error).__name__}: {error or 'no answer'}") from error

    def _keep_tokens(self, response: httpx.Response, what: str) -> None:
        if response.status_code != 200:
            raise RetryLater(f"{what} failed: {error_text(response)}", retry_after_s=None)
        try:
            tokens = response.json()
            access, refresh = str(tokens["access"]), str(tokens["refresh"])
        except (ValueError, KeyError, TypeError) as error:
            raise RetryLater(f"{what}: unreadable answer") from error
        self.store.set_meta({"access": access, "refresh": refresh, "username": self.username})
