"""Fixed-window rate limits kept in Django's cache (local memory embedded, Redis in production).

A counter per (bucket, key, window) is incremented once per hit: with Redis one round trip (INCR
and EXPIRE, pipelined), shared by every app process; with local memory an in-process
increment (the embedded server is one process). Other cache backends take the generic path.
A window allows at most `limit` hits; the caller learns how long until the window closes.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from django.core.cache import cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache

from quartermaster.core.errors import RateLimited

KEY_PREFIX = "qm:rl"


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window_s` seconds; `limit <= 0` switches the limit off."""

    bucket: str
    limit: int
    window_s: int

    @property
    def enabled(self) -> bool:
        return self.limit > 0 and self.window_s > 0


def _window(limit: Limit, now: float) -> tuple[int, int]:
    """(window number, seconds until it closes, at least 1)."""
    number = int(now // limit.window_s)
    closes_at = (number + 1) * limit.window_s
    return number, max(1, int(closes_at - now + 0.999))


def _cache_key(limit: Limit, key: str, window: int) -> str:
    # Usernames and addresses may hold characters memcached-style keys refuse, and keys must
    # stay short: hash the caller's key.
    digest = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return f"{KEY_PREFIX}:{limit.bucket}:{digest}:{window}"


def hit(limit: Limit, key: str, *, now: float | None = None) -> int:
    """Count one hit; return the count in the current window (0 when the limit is off)."""
    if not limit.enabled:
        return 0
    window, _ = _window(limit, time.time() if now is None else now)
    cache_key = _cache_key(limit, key, window)
    backend = _backend()
    if isinstance(backend, RedisCache):
        return _redis_incr(backend, cache_key, limit.window_s + 1)
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window's first hit: the counter does not exist yet
        if cache.add(cache_key, 1, timeout=limit.window_s + 1):
            return 1
        return cache.incr(cache_key)  # another process opened the window first


def _backend() -> BaseCache:
    return caches["default"]


def _redis_incr(backend: RedisCache, cache_key: str, ttl_s: int) -> int:
    """INCR and EXPIRE in one round trip. Django's own `incr` costs two
    (EXISTS, then INCR) and `add` a third when a window opens. Django's Redis serializer stores
    integers as plain Redis integers, so `cache.get` reads this counter back unchanged."""
    key = backend.make_and_validate_key(cache_key)
    client = backend._cache.get_client(key, write=True)  # type: ignore[attr-defined]
    pipe = client.pipeline(transaction=False)
    pipe.incr(key)
    # Refreshed on every hit (EXPIRE NX needs Redis 7): the key names its window, so it only
    # has to outlive that window, and it does.
    pipe.expire(key, ttl_s)
    count, _ = pipe.execute()
    return int(count)


def count(limit: Limit, key: str, *, now: float | None = None) -> int:
    """The hits counted so far in the current window, without counting one."""
    if not limit.enabled:
        return 0
    window, _ = _window(limit, time.time() if now is None else now)
    return int(cache.get(_cache_key(limit, key, window)) or 0)


def reset(limit: Limit, key: str, *, now: float | None = None) -> None:
    if limit.enabled:
        window, _ = _window(limit, time.time() if now is None else now)
        cache.delete(_cache_key(limit, key, window))


def retry_after_s(limit: Limit, *, now: float | None = None) -> int:
    _, remaining = _window(limit, time.time() if now is None else now)
    return remaining


def check(limit: Limit, key: str, *, now: float | None = None) -> None:
    """Count one hit and raise `RateLimited` (429, Retry-After) once the window is over its limit."""
    if not limit.enabled:
        return
    current = time.time() if now is None else now
    if hit(limit, key, now=current) > limit.limit:
        raise RateLimited(retry_after_s(limit, now=current))


def refuse_if_exhausted(limit: Limit, key: str, *, now: float | None = None) -> None:
    """Raise `RateLimited` when the window already holds `limit` hits; count nothing."""
    if not limit.enabled:
        return
    current = time.time() if now is None else now
    if count(limit, key, now=current) >= limit.limit:
        raise RateLimited(retry_after_s(limit, now=current))
