"""The audit chain detects any edit, deletion or reordering, even one made directly in SQL."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry
from tests.conftest import Api

pytestmark = pytest.mark.django_db

TABLE = "core_auditentry"


def make_history(api: Api, changes: int = 5) -> str:
    item_id = api.post("/api/v1/items", {"name": "apple", "qty": 100}).body["id"]
    for _ in range(changes - 1):
        api.patch(f"/api/v1/items/{item_id}/qty", {"delta": -1})
    return item_id


def raw(sql: str, params: list[object] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])


def disable_triggers() -> None:
    """What an attacker with a database shell would do first."""
    if connection.vendor == "postgresql":
        raw(f"ALTER TABLE {TABLE} DISABLE TRIGGER USER")
    else:
        raw("DROP TRIGGER audit_no_update")
        raw("DROP TRIGGER audit_no_delete")


def seqs() -> list[int]:
    return list(AuditEntry.objects.order_by("seq").values_list("seq", flat=True))


def test_an_untouched_chain_verifies(admin: Api, auditor: Api) -> None:
    make_history(admin)

    reply = auditor.get("/api/v1/audit/verify")

    assert reply.status == 200
    assert reply.body == {"ok": True, "entries": len(seqs()), "first_bad_seq": None}


def test_entries_are_numbered_without_gaps(admin: Api) -> None:
    make_history(admin, changes=6)

    numbers = seqs()

    assert numbers == list(range(1, len(numbers) + 1))


def test_triggers_refuse_update_and_delete() -> None:
    from quartermaster.core.commands import execute
    from quartermaster.core.types import SYSTEM_ACTOR, Context
    from quartermaster.inventory.services import CreateItem

    execute(CreateItem(item_name="apple", qty=1), Context(actor=SYSTEM_ACTOR))
    # the item, its opening receipt movement and the stock row it fills
    written = AuditEntry.objects.count()
    for statement in (f"UPDATE {TABLE} SET actor = 'mallory'", f"DELETE FROM {TABLE}"):
        with pytest.raises(DatabaseError), transaction.atomic():
            raw(statement)
    assert AuditEntry.objects.filter(actor="mallory").count() == 0
    assert AuditEntry.objects.count() == written == 3


def test_an_edited_entry_is_named(admin: Api, auditor: Api) -> None:
    make_history(admin)
    target = seqs()[-3]
    disable_triggers()

    raw(f"UPDATE {TABLE} SET actor = %s WHERE seq = %s", ["mallory", target])

    assert auditor.get("/api/v1/audit/verify").body == {
        "ok": False,
        "entries": target,
        "first_bad_seq": target,
    }


def test_an_edited_before_snapshot_is_named(admin: Api) -> None:
    make_history(admin)
    target = seqs()[-2]
    disable_triggers()

    raw(f"UPDATE {TABLE} SET after = %s WHERE seq = %s", ['{"qty": 1000}', target])

    assert verify_chain().first_bad_seq == target


def test_a_deleted_middle_entry_is_named(admin: Api) -> None:
    make_history(admin)
    target = seqs()[-3]
    disable_triggers()

    raw(f"DELETE FROM {TABLE} WHERE seq = %s", [target])

    report = verify_chain()
    assert (report.ok, report.first_bad_seq) == (False, target)


def test_a_deleted_last_entry_is_detected(admin: Api) -> None:
    make_history(admin)
    last = seqs()[-1]
    disable_triggers()

    raw(f"DELETE FROM {TABLE} WHERE seq = %s", [last])

    report = verify_chain()
    assert (report.ok, report.first_bad_seq) == (False, last)


def test_swapped_entries_are_detected(admin: Api) -> None:
    make_history(admin)
    a, b = seqs()[-3], seqs()[-2]
    disable_triggers()

    raw(f"UPDATE {TABLE} SET seq = -1 WHERE seq = %s", [a])
    raw(f"UPDATE {TABLE} SET seq = %s WHERE seq = %s", [a, b])
    raw(f"UPDATE {TABLE} SET seq = %s WHERE seq = -1", [b])

    assert verify_chain().first_bad_seq == a


def test_audit_list_filters_by_entity_and_actor(admin: Api, manager: Api) -> None:
    apple = make_history(admin, changes=3)
    pear = manager.post("/api/v1/items", {"name": "pear", "qty": 1}).body["id"]

    by_entity = admin.get(f"/api/v1/audit?entity_type=item&entity_id={apple}").body["results"]
    by_actor = admin.get("/api/v1/audit?actor=manager&entity_type=item").body["results"]

    assert {e["entity_id"] for e in by_entity} == {apple}
    assert len(by_entity) == 3
    assert [(e["entity_id"], e["action"]) for e in by_actor] == [(pear, "item.create")]
    assert set(by_actor[0]) >= {
        "seq",
        "at",
        "actor",
        "device",
        "action",
        "entity_type",
        "entity_id",
        "before",
        "after",
        "hash",
    }


def test_audit_list_pages(admin: Api) -> None:
    make_history(admin, changes=5)

    first = admin.get("/api/v1/audit?limit=2").body
    rest = admin.get(f"/api/v1/audit?limit=500&cursor={first['next_cursor']}").body

    assert [e["seq"] for e in first["results"] + rest["results"]] == seqs()


@pytest.mark.parametrize("role", ["staff", "party"])
def test_audit_is_refused_to_roles_without_audit_rights(make_api, role: str) -> None:  # type: ignore[no-untyped-def]
    api = make_api(role)

    assert api.get("/api/v1/audit").status == 403
    assert api.get("/api/v1/audit/verify").status == 403
