"""Operability (issue 10, item 10): /metrics in Prometheus format behind a token or loopback
only; a request id on every answer and every log line; structured logs that never hold a
password or a token."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from quartermaster.core import metrics
from tests.acceptance.test_served_api import start_quartermaster, stop
from tests.conftest import Api, is_postgres
from tests.sync.helpers import op, send

pytestmark = pytest.mark.django_db


def scrape(
    client: Client | None = None, **extra: str
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_and_timed_by_route_template(admin: Api) -> None:
    item = admin.post("/api/v1/items", {"name": "regulator", "qty": 3}).body
    route = "api/v1/items/<uuidstr:item_id>/qty"
    before = scrape()

    for delta in (1, 1, -100):
        admin.patch(f"/api/v1/items/{item['id']}/qty", {"delta": delta})

    after = scrape()
    ok = {"method": "PATCH", "route": route, "status": "200"}
    refused = {"method": "PATCH", "route": route, "status": "400"}
    assert (
        value(after, "qm_http_requests_total", **ok) - value(before, "qm_http_requests_total", **ok)
        == 2
    )
    assert (
        value(after, "qm_http_requests_total", **refused)
        - value(before, "qm_http_requests_total", **refused)
        == 1
    )
    timed = {"method": "PATCH", "route": route}
    count = "qm_http_request_duration_seconds_count"
    assert value(after, count, **timed) - value(before, count, **timed) == 3
    # An id never becomes a label value: the path's UUID appears nowhere.
    assert not any(item["id"] in str(key) for key in after)


def test_sync_ops_are_counted_by_type_and_outcome(admin: Api) -> None:
    before = scrape()
    create = op("item.create", {"name": "hose", "qty": 1})
    send(admin, [create, op("teleport.item", {}), op("item.create", {"name": "", "qty": 1})])
    send(admin, [create])  # replayed

    after = scrape()

    def grew(op_type: str, outcome: str) -> float:
        labels = {"type": op_type, "outcome": outcome}
        return value(after, "qm_sync_ops_total", **labels) - value(
            before, "qm_sync_ops_total", **labels
        )

    assert grew("item.create", "applied") == 1
    assert grew("item.create", "rejected") == 1
    assert grew("unknown", "rejected") == 1  # a made-up type is not a label value
    assert grew("item.create", "replayed") == 1


def test_a_registered_gauge_is_read_at_each_scrape() -> None:
    depth = {"rows": 7}
    metrics.register_gauge(
        "qm_outbox_depth", "Outbox rows not yet delivered.", lambda: depth["rows"]
    )
    try:
        assert value(scrape(), "qm_outbox_depth") == 7
        depth["rows"] = 2
        assert value(scrape(), "qm_outbox_depth") == 2
    finally:
        metrics.unregister_gauge("qm_outbox_depth")
    assert ("qm_outbox_depth", frozenset()) not in scrape()


def test_the_database_pool_is_reported_on_postgresql(admin: Api) -> None:
    samples = scrape()
    if not is_postgres():
        assert value(samples, "qm_db_pool_max_connections") == 0  # SQLite: no pool
        return
    assert value(samples, "qm_db_pool_max_connections") >= 1
    assert ("qm_db_pool_connections", frozenset()) in samples


def test_metrics_are_for_this_machine_only_without_a_token() -> None:
    away = Client(REMOTE_ADDR="203.0.113.5").get("/metrics")
    relayed = Client().get("/metrics", headers={"X-Forwarded-For": "203.0.113.5"})

    assert away.status_code == 403 and away.json()["code"] == "permission_denied"
    assert relayed.status_code == 403
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


@override_settings(METRICS_TOKEN="scrape-me-please")
def test_with_a_token_metrics_need_it_from_anywhere() -> None:
    away = Client(REMOTE_ADDR="203.0.113.5")

    assert away.get("/metrics").status_code == 401
    assert Client().get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    granted = away.get("/metrics", headers={"Authorization": "Bearer scrape-me-please"})
    assert granted.status_code == 200
    assert b"qm_http_requests_total" in granted.content


@pytest.mark.parametrize(
    ("sent", "echoed"),
    [
        ("req-7f3a.api:1", True),
        ("x" * 129, False),  # too long
        ("two words", False),
        ("<script>", False),
    ],
)
def test_a_sane_request_id_is_echoed_and_any_other_replaced(sent: str, echoed: bool) -> None:
    answer = Client().get("/health", headers={"X-Request-ID": sent})

    assert (answer["X-Request-ID"] == sent) is echoed
    if not echoed:
        assert len(answer["X-Request-ID"]) == 32


def test_every_answer_carries_a_request_id_refusals_included(anon: Api) -> None:
    ids = {
        anon.get("/api/v1/items").headers["x-request-id"],  # 401
        anon.get("/api/v1/no-such-thing").headers["x-request-id"],  # 404
        anon.get("/health").headers["x-request-id"],
    }
    assert len(ids) == 3


@pytest.fixture(scope="module")
def served_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    data_dir = tmp_path_factory.mktemp("observed")
    process, base = start_quartermaster(data_dir, ["demo", "--serve"])
    yield base, data_dir
    stop(process)


@pytest.mark.slow
def test_the_served_log_is_json_with_request_ids_and_no_secrets(
    served_log: tuple[str, Path],
) -> None:
    base, data_dir = served_log
    request_id = f"probe-{uuid.uuid4().hex}"
    wrong_password = "hunter2-wrong-pass"
    httpx.post(
        f"{base}/api/v1/auth/login",
        json={"username": "admin", "password": wrong_password},
        headers={"X-Request-ID": request_id},
    )
    login = httpx.post(
        f"{base}/api/v1/auth/login", json={"username": "admin", "password": "admin-demo-pass"}
    ).json()
    token = login["access"]
    httpx.get(f"{base}/api/v1/items?token={token}", headers={"Authorization": f"Bearer {token}"})
    with connect(base.replace("http://", "ws://") + f"/ws/changes?token={token}"):
        pass
    httpx.post(f"{base}/api/v1/auth/refresh", json={"refresh": login["refresh"]})
    stop_at = httpx.get(f"{base}/health", headers={"X-Request-ID": "last-one"})
    assert stop_at.headers["x-request-id"] == "last-one"

    log = "".join(path.read_text() for path in data_dir.glob("server-*.log"))
    records = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [r for r in records if r.get("logger") == "quartermaster.access"]
    [probe] = [r for r in access if r.get("request_id") == request_id]
    assert probe["route"] == "api/v1/auth/login"
    assert probe["status"] == 401
    assert probe["path"] == "/api/v1/auth/login"
    assert {"timestamp", "level", "duration_ms", "method"} <= probe.keys()
    assert any(r.get("request_id") == "last-one" for r in access)
    # The demo prints its passwords once at start-up, on purpose; the server's log lines never.
    structured = "\n".join(line for line in log.splitlines() if line.startswith("{"))
    assert "WebSocket /ws/changes?token=[redacted]" in structured
    for secret in (wrong_password, "admin-demo-pass", token, login["refresh"]):
        assert secret not in structured
