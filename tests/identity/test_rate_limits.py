"""Rate limits: login lockouts per (username, address) with back-off, failures per address, API requests per user and per
address; 429 with Retry-After. Each test runs on both cache backends: local memory (embedded)
and Redis (production), the latter a private server started by scripts/ensure-redis.sh."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from quartermaster.core import ratelimit
from quartermaster.identity import ratelimits
from tests.conftest import PASSWORD, Api, create_user, redis_base_url

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """A Redis server; started here when the test script did not (fails loudly, never skips)."""
    url = redis_base_url()
    # One database per xdist worker, so one worker's cache.clear() spares the other's keys.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or "0"
    return f"{url.rstrip('/')}/{1 + int(worker) % 15}"


@pytest.fixture(params=["locmem", "redis"], autouse=True)
def cache_backend(request: pytest.FixtureRequest, settings: Any) -> Iterator[str]:
    if request.param == "redis":
        location = request.getfixturevalue("redis_url")
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": location,
            }
        }
    cache.clear()
    ratelimit.clear_all()
    yield request.param
    ratelimit.clear_all()
    cache.clear()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The lockouts' clock (the windows of request limits are the library's, on real time)."""
    fake = Clock(1_800_000_010.0)
    monkeypatch.setattr(ratelimits, "time", fake)
    return fake


def attempt(username: str, password: str, *, ip: str = "10.0.0.1") -> Any:
    client = Client(REMOTE_ADDR=ip)
    return Api(client).post("/api/v1/auth/login", {"username": username, "password": password})


def test_the_counters_live_where_the_cache_lives(cache_backend: str) -> None:
    from limits.storage import MemoryStorage, RedisStorage

    store = ratelimit.storage()
    assert isinstance(store, {"locmem": MemoryStorage, "redis": RedisStorage}[cache_backend])
    assert ratelimit.is_shared() == (cache_backend == "redis")


def test_five_failures_lock_out_that_username_from_that_address_only(clock: Clock) -> None:
    create_user("clerk", "staff")

    statuses = [attempt("clerk", "wrong password").status for _ in range(5)]
    locked = attempt("clerk", PASSWORD)  # even the right password

    assert statuses == [401] * 5
    assert locked.status == 429
    assert locked.body == {"error": "too many requests", "code": "rate_limited"}
    assert locked.headers["retry-after"] == "60"
    # The real clerk, elsewhere, is not locked out by a stranger's guesses.
    assert attempt("clerk", PASSWORD, ip="10.0.0.2").status == 200
    # Another user from the same address is not locked out.
    create_user("cashier", "staff")
    assert attempt("cashier", PASSWORD).status == 200
    # The lockout ends; the right password works again.
    clock.now += 60
    assert attempt("clerk", PASSWORD).status == 200


def test_nobody_can_lock_the_admin_out_from_outside(clock: Clock) -> None:
    create_user("root", "admin")
    for n in range(4):
        for _ in range(5):
            attempt("root", "wrong password", ip=f"203.0.113.{n}")

    assert attempt("root", "wrong password", ip="203.0.113.0").status == 429
    assert attempt("root", PASSWORD, ip="10.0.0.1").status == 200


def test_the_lockout_doubles_with_every_failure_after_it(clock: Clock) -> None:
    create_user("clerk", "staff")
    for _ in range(5):
        attempt("clerk", "wrong password")
    waits = []
    for _ in range(4):
        locked = attempt("clerk", "wrong password")
        assert locked.status == 429
        wait = int(locked.headers["retry-after"])
        waits.append(wait)
        clock.now += wait
        assert attempt("clerk", "wrong password").status == 401  # a failure, once unlocked

    assert waits == [60, 120, 240, 480]


def test_the_lockout_is_capped(clock: Clock, settings: Any) -> None:
    settings.LOGIN_LOCKOUT_MAX_S = 100
    create_user("clerk", "staff")
    for _ in range(5):
        attempt("clerk", "wrong password")
    clock.now += 60
    attempt("clerk", "wrong password")

    assert attempt("clerk", PASSWORD).headers["retry-after"] == "100"


def test_usernames_are_counted_without_regard_to_case(clock: Clock) -> None:
    for name in ("Clerk", "CLERK", "clerk", "cLerk", "clerK"):
        attempt(name, "wrong password")

    assert attempt("clerk", "wrong password").status == 429


def test_a_success_clears_the_pair_count(clock: Clock) -> None:
    create_user("clerk", "staff")
    for _ in range(4):
        attempt("clerk", "wrong password")

    assert attempt("clerk", PASSWORD).status == 200
    assert [attempt("clerk", "wrong password").status for _ in range(5)] == [401] * 5
    assert attempt("clerk", "wrong password").status == 429


def test_twenty_failures_from_one_address_lock_the_address(clock: Clock) -> None:
    create_user("victim", "staff")
    for n in range(20):
        assert attempt(f"guess{n}", "wrong password").status == 401

    assert attempt("victim", PASSWORD).status == 429
    assert attempt("victim", PASSWORD, ip="10.0.0.9").status == 200


def test_api_requests_per_user_are_limited(settings: Any) -> None:
    settings.API_REQUESTS_PER_USER = 3
    create_user("busy", "staff")
    create_user("calm", "staff")
    busy = Api(Client(REMOTE_ADDR="10.0.0.1"), _token("busy"))
    calm = Api(Client(REMOTE_ADDR="10.0.0.1"), _token("calm"))

    statuses = [busy.get("/api/v1/auth/me").status for _ in range(4)]

    assert statuses == [200, 200, 200, 429]
    limited = busy.get("/api/v1/items")
    assert (limited.status, limited.body["code"]) == (429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert calm.get("/api/v1/auth/me").status == 200


def test_api_requests_per_address_are_limited_before_authentication(settings: Any) -> None:
    settings.API_REQUESTS_PER_IP = 3
    noisy = Api(Client(REMOTE_ADDR="10.0.0.66"))

    statuses = [noisy.get("/api/v1/items").status for _ in range(4)]

    assert statuses == [401, 401, 401, 429]
    assert 1 <= int(noisy.get("/api/v1/nowhere").headers["retry-after"]) <= 60
    assert Api(Client(REMOTE_ADDR="10.0.0.67")).get("/api/v1/items").status == 401
    assert Client(REMOTE_ADDR="10.0.0.66").get("/health").status_code == 200


def test_forwarded_addresses_count_only_behind_a_trusted_proxy(settings: Any) -> None:
    settings.API_REQUESTS_PER_IP = 1
    spoofer = Api(Client(REMOTE_ADDR="10.0.0.5"))
    # Without trusted proxies, X-Forwarded-For is the client's own claim and is ignored.
    assert spoofer.get("/health").status == 200
    spoofer.get("/api/v1/items", headers={"X-Forwarded-For": "1.1.1.1"})
    assert spoofer.get("/api/v1/items", headers={"X-Forwarded-For": "2.2.2.2"}).status == 429

    settings.TRUSTED_PROXY_HOPS = 1
    proxy = Api(Client(REMOTE_ADDR="10.0.0.6"))
    assert proxy.get("/api/v1/items", headers={"X-Forwarded-For": "3.3.3.3"}).status == 401
    assert proxy.get("/api/v1/items", headers={"X-Forwarded-For": "4.4.4.4"}).status == 401
    assert proxy.get("/api/v1/items", headers={"X-Forwarded-For": "3.3.3.3"}).status == 429


def test_a_limit_of_zero_switches_it_off(settings: Any) -> None:
    settings.LOGIN_LOCKOUT_FAILURES = 0
    settings.LOGIN_FAILURES_PER_IP = 0

    assert {attempt("clerk", "wrong").status for _ in range(30)} == {401}


def _token(username: str) -> str:
    reply = Api(Client()).post("/api/v1/auth/login", {"username": username, "password": PASSWORD})
    assert reply.status == 200, reply.body
    return reply.body["access"]
