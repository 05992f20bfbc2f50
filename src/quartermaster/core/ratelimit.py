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

import math
import threading
import time
from dataclasses import dataclass

from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import FixedWindowRateLimiter

from quartermaster.core.errors import RateLimited

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
                found = MemoryStorage() if url == "memory://" else RedisStorage(url)
                _storages[url] = found
    return found


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
