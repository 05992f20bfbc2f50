"""Rate limits and lockouts, counted by the `limits` library in storage every process shares.

The counters live where Django's default cache lives: in Redis when the cache is Redis (one
Lua round trip per hit, shared by every app process), in this process's memory otherwise (the
embedded server is one process; `serve` refuses `--workers > 1` there, since each worker
would count on its own and every limit would be multiplied by the number of workers).

`limits` rather than our own counters in Django's cache: it does the atomic increment-with-
expiry through public interfaces on every backend it supports (ours reached into Django's
private Redis client for it), and it is kept by others. django-axes was the other candidate,
for logins only; it writes a database row per failure, hooks Django's `authenticate` signals,
and has no exponential back-off, while the API's request limits would still need this module.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from quartermaster.core.errors import RateLimited

logger = logging.getLogger(__name__)

NAMESPACE = "qm"


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window_s` seconds; `limit <= 0` switches the limit off."""

    bucket: str
    limit: int
    window_s: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window_s > 0

    def item(self) -> RateLimitItemPerSecond:
        return RateLimitItemPerSecond(
            self.limit, self.window_s, namespace=f"{NAMESPACE}:{self.bucket}"
        )


_lock = threading.Lock()
_storages: dict[str, Storage] = {}


def storage_url() -> str:
    """`redis://…` when Django's default cache is Redis, else `memory://` (this process only)."""
    cache = settings.CACHES["default"]
    location = str(cache.get("LOCATION") or "")
    if cache["BACKEND"].endswith("RedisCache") and location.startswith(("redis://", "rediss://")):
        return location
    return "memory://"


def is_shared() -> bool:
    """True when every server process counts in the same place."""
    return storage_url() != "memory://"


def storage() -> Storage:
    """The counters' storage for the configured cache, built once per process and URL."""
    url = storage_url()
    found = _storages.get(url)
    if found is None:
        with _lock:
            found = _storages.get(url)
            if found is None:
                found = MemoryStorage() if url == "memory://" else SharedStorage(url)
                _storages[url] = found
    return found


# While the shared Redis cannot be reached, counters live in this process for this long before
# Redis is tried again (a dead host would otherwise cost every request a connect timeout).
SHARED_RETRY_S = 10.0


class SharedStorage(Storage):
    """Redis, and this process's memory while Redis cannot be reached.

    Redis usually lives on the shop's smallest machine (README "A shop with failover"): when it
    is down, limits and lockouts still apply, counted by each process alone (each limit is then
    multiplied by the number of processes) instead of every request failing with a 500."""

    STORAGE_SCHEME = None

    def __init__(self, url: str) -> None:
        super().__init__(url, wrap_exceptions=False)
        # Short timeouts: a request waits at most this long on a Redis that went away.
        self.shared = RedisStorage(
            url, wrap_exceptions=True, socket_timeout=1, socket_connect_timeout=1
        )
        self.local = MemoryStorage()
        self._down_until = 0.0

    @property
    def base_exceptions(self) -> type[Exception]:
        return StorageError

    def _use(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if time.monotonic() >= self._down_until:
            try:
                return getattr(self.shared, name)(*args, **kwargs)
            except StorageError as error:
                self._down_until = time.monotonic() + SHARED_RETRY_S
                logger.warning(
                    "rate limit counters: Redis unreachable (%s); counting in this process "
                    "for %d s",
                    error,
                    SHARED_RETRY_S,
                )
        return getattr(self.local, name)(*args, **kwargs)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        return int(self._use("incr", key, expiry, amount=amount))

    def get(self, key: str) -> int:
        return int(self._use("get", key))

    def get_expiry(self, key: str) -> float:
        return float(self._use("get_expiry", key))

    def check(self) -> bool:
        return bool(self._use("check"))

    def reset(self) -> int | None:
        self.local.reset()
        found = self._use("reset")
        return None if found is None else int(found)

    def clear(self, key: str) -> None:
        self.local.clear(key)
        self._use("clear", key)


def clear_all() -> None:
    """Forget every counter and lockout (tests; an operator unlocking everyone)."""
    storage().reset()


def seconds_until(expiry: float) -> int:
    """Whole seconds from now until `expiry` (a Unix time), at least 1: a Retry-After value."""
    return max(1, math.ceil(expiry - time.time()))


def check(limit: Limit, key: str) -> None:
    """Count one hit and raise `RateLimited` (429, Retry-After) once the window is over its limit."""
    if not limit.enabled:
        return
    item = limit.item()
    limiter = FixedWindowRateLimiter(storage())
    if not limiter.hit(item, key):
        raise RateLimited(seconds_until(limiter.get_window_stats(item, key).reset_time))


def refuse_if_exhausted(limit: Limit, key: str) -> None:
    """Raise `RateLimited` when the window already holds `limit` hits; count nothing."""
    if not limit.enabled:
        return
    item = limit.item()
    limiter = FixedWindowRateLimiter(storage())
    if not limiter.test(item, key):
        raise RateLimited(seconds_until(limiter.get_window_stats(item, key).reset_time))


def hit(limit: Limit, key: str) -> None:
    """Count one hit without refusing (a failure to be refused next time)."""
    if limit.enabled:
        FixedWindowRateLimiter(storage()).hit(limit.item(), key)
