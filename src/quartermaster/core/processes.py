"""What several app processes must share, so that no answer depends on which one a client
reached (issue 14).

- Rate limits and login lockouts: counted in Redis (`QM_CACHE_URL`), else each process counts
  alone and every limit is multiplied by the number of processes.
- WebSocket fan-out (pokes, critical events, revocations): through the Redis channel layer
  (`QM_CHANNEL_LAYER_URL`, which defaults to the cache's Redis), else a socket hears only the
  commits of the process it is connected to.
- Idempotency keys in flight: already shared, by the database (a PostgreSQL advisory lock held
  by the claiming transaction; SQLite serialises writers).

A set-up is multi-process when `serve` runs several workers, or when it is one app of a
failover cluster (a monitor URL, or a database URL naming several hosts): there every PC runs
its own app process against the same database by design.
"""

from __future__ import annotations

from django.conf import settings

from quartermaster.core import ratelimit


def multi_process_reason(workers: int) -> str | None:
    """Why this set-up has several app processes, or None when it has one."""
    if workers > 1:
        return f"--workers {workers}"
    if settings.CLUSTER_MONITOR_URL:
        return "a failover cluster (QM_CLUSTER_MONITOR_URL): an app process on every PC"
    if "," in str(settings.DATABASES["default"].get("HOST") or ""):
        return "a failover cluster (several database hosts): an app process on every PC"
    return None


def fanout_is_shared() -> bool:
    """True when every process's sockets hear every process's messages."""
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    return backend.startswith("channels_redis.")


def unshared_state() -> list[str]:
    """What each process would keep to itself now, as the settings that would share it."""
    missing = []
    if not ratelimit.is_shared():
        missing.append("rate limits and lockouts: set QM_CACHE_URL=redis://…")
    if not fanout_is_shared():
        missing.append(
            "WebSocket fan-out: set QM_CHANNEL_LAYER_URL=redis://… (or leave it unset: it "
            "follows a Redis QM_CACHE_URL)"
        )
    return missing


def refusal(workers: int) -> str | None:
    """The message `serve` refuses to start with, or None when the set-up is sound."""
    reason = multi_process_reason(workers)
    missing = unshared_state() if reason else []
    if not missing:
        return None
    lines = "\n".join(f"  - {item}" for item in missing)
    return (
        f"error: several app processes ({reason}) must share their state, or each answers "
        f"differently:\n{lines}\n"
        "(idempotency keys in flight are shared by the database already); "
        "or serve one process: --workers 1 and no cluster"
    )
