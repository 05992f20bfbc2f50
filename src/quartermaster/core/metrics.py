"""What the server counts for Prometheus: requests and their latency by route template, sync ops
by outcome, the database pool, and gauges other modules register (the outbox's depth).

Counted in this process (prometheus-client's default registry, which adds the process's CPU and
memory). With `serve --workers N` each worker answers for itself; a scraper behind the same port
sees one worker per scrape, so run one worker per port (or several instances) when the totals
matter. Served at /metrics by `quartermaster.observability`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import REGISTRY, Counter, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# No `_created` timestamp series beside every counter: twice the lines per scrape for nothing.
disable_created_metrics()

# A label's values are bounded, or a client inventing methods or paths could grow memory.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

REQUESTS = Counter(
    "qm_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "qm_http_request_duration_seconds",
    "Time from the request reaching Django to its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SYNC_OPS = Counter(
    "qm_sync_ops",
    "Batch-sync ops answered, by op type and outcome "
    "(applied, replayed, conflict, rejected, failed).",
    ["type", "outcome"],
)


# The labelled children of a (method, route, status), found once: `labels()` costs a lock and
# a tuple build per call, and this runs on every request.
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    key = (method, route, status)
    children = _request_children.get(key)
    if children is None:
        label = method if method in METHODS else "OTHER"
        children = (
            REQUESTS.labels(label, route, str(status)),
            REQUEST_SECONDS.labels(label, route),
        )
        if label == method:  # a made-up method is not remembered under its own name
            _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def sync_outcome(status: int, *, replayed: bool) -> str:
    if replayed:
        return "replayed"
    if status < 400:
        return "applied"
    if status == 409:
        return "conflict"
    return "rejected" if status < 500 else "failed"


def count_sync_op(op_type: str, outcome: str, *, known: bool) -> None:
    """`known`: the type is in the command registry (else it is counted as "unknown", so a
    device sending made-up types cannot add label values)."""
    SYNC_OPS.labels(op_type if known else "unknown", outcome).inc()


@dataclass(frozen=True)
class _GaugeSource:
    name: str
    documentation: str
    read: Callable[[], float]


_gauge_sources: dict[str, _GaugeSource] = {}


def register_gauge(name: str, documentation: str, read: Callable[[], float]) -> None:
    """A gauge whose value `read()` gives at each scrape (e.g. `qm_outbox_depth`, the rows the
    outbox worker has still to deliver). Registering a name again replaces its reader."""
    _gauge_sources[name] = _GaugeSource(name, documentation, read)


def unregister_gauge(name: str) -> None:
    _gauge_sources.pop(name, None)


class _RegisteredGauges(Collector):
    def collect(self) -> Iterable[Metric]:
        for source in list(_gauge_sources.values()):
            try:
                value = float(source.read())
            except Exception:
                # One broken reader must not hide every other metric from the scrape.
                logger.exception("metrics: reading gauge %s failed", source.name)
                continue
            yield GaugeMetricFamily(source.name, source.documentation, value=value)


class _DatabasePool(Collector):
    """The PostgreSQL connection pool of this process (none on SQLite: each HTTP thread keeps
    its own connection there, QM_HTTP_THREADS of them)."""

    STATS = (
        ("pool_size", "qm_db_pool_connections", "Connections the pool holds, busy or idle."),
        ("pool_available", "qm_db_pool_idle_connections", "Idle connections in the pool."),
        ("pool_max", "qm_db_pool_max_connections", "The most connections the pool may open."),
        ("requests_waiting", "qm_db_pool_waiting_requests", "Requests waiting for a connection."),
    )

    def describe(self) -> Iterator[Metric]:
        # Registering asks a collector for its names; without this it would collect, and
        # reading the pool makes one: at import, before the test database (or a worker's
        # settings) exist, bound to whatever database the settings named then.
        for _, name, documentation in self.STATS:
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[Metric]:
        stats = _pool_stats()
        if stats is None:
            return
        for key, name, documentation in self.STATS:
            yield GaugeMetricFamily(name, documentation, value=float(stats.get(key, 0)))


def _pool_stats() -> dict[str, Any] | None:
    from django.db import connections

    pool = getattr(connections["default"], "pool", None)
    if pool is None:
        return None
    return dict(pool.get_stats())


REGISTRY.register(_RegisteredGauges())
REGISTRY.register(_DatabasePool())
