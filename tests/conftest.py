"""Shared fixtures: an HTTP client speaking JSON, users of every role, logged-in clients.

Tests drive the public interface: Django's test client runs the whole stack (middleware, URL
routing, ninja, the pipeline) without a socket; tests/acceptance drives a real server process.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Cheaper Argon2 for the many logins in the suite; still Argon2id. Read when hashers load.
os.environ.setdefault("QM_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("QM_ARGON2_TIME_COST", "1")

import pytest
from django.db import connection
from django.test import Client, override_settings

from quartermaster.core.commands import execute
from quartermaster.core.types import SYSTEM_ACTOR, Context
from quartermaster.identity.services import CreateUser

# Live-server tests play several server processes in one and hold transactions open on purpose,
# and the test's own thread keeps a connection too: more than one production process needs (4,
# settings.py). Set on the settings below (pytest-django reads settings before this file).
TEST_POOL_MAX = int(os.environ.get("QM_DB_POOL_MAX", "20"))

PASSWORD = "correct horse battery"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite, tests marked `postgres` must not run; in CI on PostgreSQL they must not skip."""
    on_postgres = os.environ.get("QM_DATABASE_URL", "").startswith("postgres")
    if on_postgres:
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (run by scripts/test.sh with QM_DATABASE_URL)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """A JSON client. `as_user` attaches a bearer token; methods return Reply(status, body)."""

    def __init__(self, client: Client, token: str | None = None) -> None:
        self.client = client
        self.token = token

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        extra = dict(headers or {})
        if self.token and "Authorization" not in extra:
            extra["Authorization"] = f"Bearer {self.token}"
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = self.client.generic(
            method, path, data=data or "", content_type="application/json", headers=extra
        )
        content = response.content
        parsed = json.loads(content) if content else None
        return Reply(response.status_code, parsed, {k.lower(): v for k, v in response.items()})

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> Reply:
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Reply:
        return self.request("DELETE", path, **kwargs)


def create_user(username: str, role: str, *, locations: tuple[Any, ...] = ()) -> dict[str, Any]:
    response = execute(
        CreateUser(username=username, password=PASSWORD, role=role, locations=locations),
        Context(actor=SYSTEM_ACTOR),
    )
    assert response.status == 201, response.body
    return response.body


def login(username: str, *, device_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"username": username, "password": PASSWORD}
    if device_id is not None:
        body["device_id"] = device_id
    reply = Api(Client()).post("/api/v1/auth/login", body)
    assert reply.status == 200, reply.body
    return reply.body


@pytest.fixture
def anon() -> Api:
    return Api(Client())


@pytest.fixture
def make_api(db: None) -> Callable[..., Api]:
    """make_api(role, username=None, locations=()) → a logged-in Api for a new user."""
    counter = {"n": 0}

    def make(role: str, username: str | None = None, locations: tuple[Any, ...] = ()) -> Api:
        counter["n"] += 1
        name = username or f"{role}{counter['n']}"
        create_user(name, role, locations=locations)
        return Api(Client(), login(name)["access"])

    return make


@pytest.fixture
def admin(make_api: Callable[..., Api]) -> Api:
    return make_api("admin", "admin")


@pytest.fixture
def manager(make_api: Callable[..., Api]) -> Api:
    return make_api("manager", "manager")


@pytest.fixture
def auditor(make_api: Callable[..., Api]) -> Api:
    return make_api("auditor", "auditor")


@pytest.fixture
def default_location_id(db: None) -> str:
    from quartermaster.inventory.selectors import get_default_location

    return str(get_default_location().id)


@pytest.fixture
def staff(make_api: Callable[..., Api], default_location_id: str) -> Api:
    return make_api("staff", "staff", locations=(default_location_id,))


def audit_count() -> int:
    from quartermaster.core.models import AuditEntry

    return AuditEntry.objects.count()


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


@pytest.fixture(scope="session", autouse=True)
def _data_dir_of_the_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Media and checkpoints go to a directory of this run, not the repository's ./var (the
    default data directory, where a developer's own server keeps its data). Settings are read
    before this file (pytest-django), so they are overridden here; the keys settings made as
    they loaded stay where QM_DATA_DIR (default ./var) says, shared with the servers tests
    start. Tests that need an empty directory of their own still override these per test."""
    directory = tmp_path_factory.mktemp("data")
    with override_settings(
        MEDIA_DIR=str(directory / "media"), CHECKPOINT_DIR=str(directory / "checkpoints")
    ):
        yield directory


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    """Rate-limit counters and lockouts, and the cache: each test starts clean."""
    from django.core.cache import cache

    from quartermaster.core import ratelimit

    cache.clear()
    ratelimit.clear_all()


def redis_base_url() -> str:
    """A Redis server for the tests: the test script's, else one started now (never a skip)."""
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "ensure-redis.sh"
    return (
        os.environ.get("QM_TEST_REDIS_URL")
        or subprocess.run([str(script)], check=True, capture_output=True, text=True).stdout.strip()
    )


@pytest.fixture(scope="session")
def live_server(django_db_setup: None, live_server: Any) -> Any:
    """pytest-django's live server, started only once the test database exists. Started before
    (its session fixture comes first otherwise), its thread makes the PostgreSQL connection
    pool while the settings still name the main database: the pool is shared by every thread
    and kept, so the test database's migrations, the test and its flush all ran against the
    database of QM_DATABASE_URL itself."""
    return live_server


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """No PostgreSQL connection pool may outlive the switch to the test database. The pool is
    made once per process and shared by every thread; made before (a module that reads the
    database as it is imported, a server thread), it stays on the database QM_DATABASE_URL
    names, and migrations, tests and flushes would all run there instead of test_<name>."""
    from django.db import connections

    for each in connections.all():
        close_pool = getattr(each, "close_pool", None)
        if close_pool is not None:
            close_pool()
        pool = each.settings_dict.get("OPTIONS", {}).get("pool")
        if isinstance(pool, dict):
            pool["max_size"] = TEST_POOL_MAX
