"""`cluster.primary_changed`: on the audit chain once per epoch, however many processes run it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quartermaster.cluster.services import RecordPrimaryChange, idempotency_key
from quartermaster.core.commands import execute
from quartermaster.core.idempotency import OP_SCOPE
from quartermaster.core.models import AuditEntry
from quartermaster.core.types import SYSTEM_ACTOR, Context
from tests.conftest import Api

pytestmark = pytest.mark.django_db


def record(epoch: int) -> object:
    return execute(
        RecordPrimaryChange(
            epoch=epoch,
            at=datetime(2026, 12, 2, 6, 44, 53, tzinfo=UTC),
            old_node="node1 (127.0.0.1:5431)",
            new_node="node2 (127.0.0.1:5432)",
            reason="failover",
            description="New state is reported by node 2",
        ),
        Context(
            actor=SYSTEM_ACTOR, idempotency_key=idempotency_key(epoch), idempotency_scope=OP_SCOPE
        ),
    )


def test_each_epoch_is_recorded_once_and_read_back_in_the_audit(auditor: Api) -> None:
    first = record(12)
    again = record(12)  # another process, or this one after a restart
    later = record(31)

    assert (first.status, first.replayed) == (201, False)  # type: ignore[attr-defined]
    assert (again.status, again.replayed) == (201, True)  # type: ignore[attr-defined]
    assert later.status == 201  # type: ignore[attr-defined]
    entries = AuditEntry.objects.filter(action="cluster.primary_changed").order_by("seq")
    assert [entry.entity_id for entry in entries] == ["12", "31"]
    listed = auditor.get("/api/v1/audit?entity_type=cluster.primary").body["results"]
    assert {entry["entity_id"] for entry in listed} == {"12", "31"}
    entry = next(e for e in listed if e["entity_id"] == "12")
    assert entry["actor"] == "system"
    assert entry["after"]["old_node"] == "node1 (127.0.0.1:5431)"
    assert entry["after"]["reason"] == "failover"
    assert auditor.get("/api/v1/audit/verify").body["ok"] is True


def test_a_device_cannot_send_one(make_api: object) -> None:
    admin = make_api("admin")  # type: ignore[operator]
    reply = admin.post(
        "/api/v1/sync/batch",
        {
            "device_id": "till-1",
            "ops": [{"op_id": "op-1", "type": "cluster.primary_changed", "payload": {"epoch": 5}}],
        },
    )

    assert reply.body["results"][0]["status"] == 400
    assert not AuditEntry.objects.filter(action="cluster.primary_changed").exists()
