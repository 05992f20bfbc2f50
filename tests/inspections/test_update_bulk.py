"""Runs of `inspection.update` ops go through the bulk path (one transaction, each inspection
locked once, one statement per table) and answer exactly what each op answers alone: the same
statuses, bodies, inspections, versions, kept refusals, conflict records, audit entries and feed
rows as with bulk runs switched off (QM_SYNC_BULK=0)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import override_settings

from quartermaster.core.audit import verify_chain
from quartermaster.core.models import AuditEntry, Conflict, FeedEntry
from quartermaster.inspections.models import HeldUpdate, Inspection, InspectionVersion
from tests.conftest import Api
from tests.inspections.helpers import COMPLETE, INSPECTIONS, new_inspection, published_template
from tests.media.helpers import confirmed_media
from tests.sync.helpers import op, send, statuses
from tests.sync.test_bulk_runs import Normalizer

pytestmark = pytest.mark.django_db

TAB_A, TAB_B = "tablet-a", "tablet-b"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def update(inspection_id: str, answers: dict[str, Any], **fields: Any) -> dict[str, Any]:
    extra = {k: fields.pop(k) for k in ("previous_seq",) if k in fields}
    return op("inspection.update", {"id": inspection_id, "answers": answers, **extra}, **fields)


@pytest.fixture
def world(staff: Api, manager: Api, default_location_id: str) -> dict[str, str]:
    """Three inspections: `merging` and `clashing` changed by tablet A since version 1,
    `locked` submitted; a photo the inspector uploaded and one the manager did."""
    template = published_template(manager)
    w = {
        "my_photo": confirmed_media(staff),
        "managers_photo": confirmed_media(manager),
        "merging": new_inspection(staff, template, default_location_id)["id"],
        "clashing": new_inspection(staff, template, default_location_id)["id"],
        "locked": new_inspection(staff, template, default_location_id, answers=COMPLETE)["id"],
    }
    assert staff.post(f"{INSPECTIONS}/{w['locked']}/submit").status == 200
    earlier = [
        update(w["merging"], {"exits": True}, base_version=1, device_seq=1),
        update(w["clashing"], {"notes": "from A"}, base_version=1, device_seq=2),
    ]
    assert statuses(send(staff, earlier, device=TAB_A)) == [200, 200]
    return w


def mixed_run(w: dict[str, str]) -> list[dict[str, Any]]:
    """Tablet B's day offline: merges, a conflict, a locked inspection, invalid answers and an
    unknown inspection in the middle, and updates of its own earlier updates."""
    merging, clashing = w["merging"], w["clashing"]
    return [
        update(merging, {"pressure": 3}, base_version=1, device_seq=1),
        update(merging, {"notes": "b"}, base_version=1, device_seq=2),
        update(clashing, {"notes": "from B", "exits": True}, base_version=1, device_seq=3),
        update(w["locked"], {"notes": "late"}, base_version=2, device_seq=4),
        update(merging, {"pressure": 99}, base_version=1, device_seq=5),
        update(merging, {"nope": 1}, base_version=1),  # not numbered: refused, nothing kept
        update(merging, {"condition": "good", "notes": None}, base_version=1, device_seq=6),
        update(clashing, {"exits": False}, base_version=1, device_seq=7),
        update(UNKNOWN, {"notes": "x"}, base_version=1, device_seq=8),
        update(merging, {"extinguisher": True}, device_seq=9),
        update(clashing, {"pressure": 5}, base_version=9, device_seq=10),  # ahead
        update(merging, {"photos": [w["my_photo"]]}, device_seq=11),
        update(merging, {"photos": [w["managers_photo"]]}, device_seq=12),  # not the inspector's
        update(clashing, {"signed": UNKNOWN}, device_seq=13),  # no such media
        update(merging, {"notes": "photo kept"}, device_seq=14),  # media named before stay
    ]


def transcript(api: Api, w: dict[str, str], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """Everything a batch left behind: answers, rows, conflicts, audit and feed."""
    audit_before, feed_before = AuditEntry.objects.count(), FeedEntry.objects.count()
    reply = send(api, ops, device=TAB_B)
    normal = Normalizer({value: f"<{name}>" for name, value in w.items()})
    return normal(
        {
            "results": [
                {key: result[key] for key in ("status", "body")} for result in reply.body["results"]
            ],
            "inspections": sorted(
                Inspection.objects.values_list(
                    "id", "version", "answers", "status", "score_earned", "score_possible"
                )
            ),
            "versions": list(
                InspectionVersion.objects.order_by("inspection_id", "version").values_list(
                    "inspection_id",
                    "version",
                    "action",
                    "status",
                    "answers",
                    "changed",
                    "device",
                    "device_seq",
                    "base_version",
                )
            ),
            "kept": sorted(
                HeldUpdate.objects.values_list(
                    "inspection_id",
                    "device",
                    "device_seq",
                    "previous_seq",
                    "base_version",
                    "answers",
                    "status",
                    "result",
                    "actor_role",
                    "actor_locations",
                )
            ),
            "conflicts": list(
                Conflict.objects.order_by("created_at").values_list(
                    "entity", "base_version", "client_snapshot", "server_snapshot", "base_snapshot"
                )
            ),
            "audit": [
                (a.action, a.entity_type, a.entity_id, a.before, a.after, a.device)
                for a in AuditEntry.objects.order_by("seq")[audit_before:]
            ],
            "feed": [
                (f.entity, f.entity_id, f.op, f.version, f.data)
                for f in FeedEntry.objects.order_by("seq")[feed_before:]
            ],
        }
    )


def in_bulk_and_alone(
    api: Api, w: dict[str, str], ops: list[dict[str, Any]]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The batch's transcript with bulk runs, rolled back, then with every op alone; the bulk
    one also says how many times the batch read inspections (`reads`: 1 when the run went in
    bulk, for it locks them all at once)."""
    with transaction.atomic():
        with override_settings(SYNC_BULK=True), Statements() as statements:
            bulk = transcript(api, w, ops)
        transaction.set_rollback(True)
    with override_settings(SYNC_BULK=False):
        alone = transcript(api, w, ops)
    reads = sum('FROM "inspections_inspection" WHERE' in sql for sql in statements.sql)
    return {**bulk, "reads": reads}, {**alone, "reads": reads}


class Statements:
    """Every statement run meanwhile (CaptureQueriesContext loses those before a request
    starts: Django clears its query log then)."""

    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        self.sql.append(sql)
        return execute(sql, params, many, context)

    def __enter__(self) -> Statements:
        self._wrapper = connection.execute_wrapper(self)
        self._wrapper.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._wrapper.__exit__(*exc)


def test_a_mixed_run_answers_in_bulk_what_each_update_answers_alone(
    staff: Api, world: dict[str, str]
) -> None:
    bulk, alone = in_bulk_and_alone(staff, world, mixed_run(world))

    assert bulk == alone
    assert bulk["reads"] == 1  # one run, the inspections locked at once: no op went alone
    assert [r["status"] for r in bulk["results"]] == [
        *(200, 200, 409, 409, 400, 400, 200, 200, 404, 200, 400, 200, 400, 400, 200),
    ]
    bodies = [r["body"] for r in bulk["results"]]
    assert bodies[0]["merge"] == {"base_version": 1, "theirs": ["exits"], "mine": ["pressure"]}
    assert bodies[1]["merge"]["theirs"] == ["exits"]  # its own update before is not "theirs"
    assert bodies[2]["code"] == "version_conflict"
    assert bodies[2]["conflicting_answers"] == ["notes"]
    assert bodies[3]["code"] == "inspection_locked"
    assert bodies[7]["merge"]["theirs"] == ["notes"]
    assert (bodies[9]["version"], bodies[9]["merge"]) == (6, None)
    merging = Inspection.objects.get(pk=world["merging"])
    assert bodies[12]["fields"] == {
        "answers.photos": "only confirmed media of yours can be attached"
    }
    assert merging.answers == {
        "exits": True,
        "pressure": 3,
        "condition": "good",
        "extinguisher": True,
        "photos": [world["my_photo"]],
        "notes": "photo kept",
    }
    # Every numbered refusal is kept as arrived (its device's next update must not wait for it).
    kept = sorted(HeldUpdate.objects.values_list("device_seq", "status"))
    assert kept == [
        *((3, "conflict"), (4, "conflict"), (5, "failed")),
        *((10, "failed"), (12, "failed"), (13, "failed")),
    ]
    assert Conflict.objects.count() == 1
    assert verify_chain().ok


def test_a_run_of_twenty_updates_takes_a_handful_of_statements(
    staff: Api, world: dict[str, str]
) -> None:
    """A device's 20 updates of its inspection against the version it last synced: the
    inspection is locked once and its versions written in one statement."""
    merging = world["merging"]
    ops = [
        update(merging, {"pressure": n % 10, "notes": f"n{n}"}, base_version=1, device_seq=n)
        for n in range(1, 21)
    ]
    send(staff, [update(merging, {"notes": "hello"}, device_seq=21)], device=TAB_B)  # registers
    with Statements() as statements:
        reply = send(staff, ops, device=TAB_B)
    with override_settings(SYNC_BULK=False), Statements() as alone:
        again = send(staff, [{**o, "op_id": op("x")["op_id"]} for o in ops], device=TAB_B)
    queries = statements.sql

    assert statuses(reply) == statuses(again) == [200] * 20
    assert reply.body["results"][-1]["body"]["version"] == 23
    assert InspectionVersion.objects.filter(inspection_id=merging, device=TAB_B).count() == 41
    listing = "\n".join(sql[:120] for sql in queries)
    # The inspections' own: the lock, the history since the base, held updates, one UPDATE,
    # one INSERT of the versions; the rest is the batch's (device, op ids, audit, feed).
    assert sum("inspections_" in sql for sql in queries) <= 5, listing
    assert len(queries) <= 30, listing
    assert len(alone.sql) > 10 * len(queries)


def test_a_run_with_a_held_update_goes_one_by_one_and_still_holds_it(
    staff: Api, world: dict[str, str]
) -> None:
    merging = world["merging"]
    ops = [
        update(merging, {"notes": "c"}, base_version=1, device_seq=3, previous_seq=2),
        update(merging, {"notes": "b"}, base_version=1, device_seq=2, previous_seq=1),
        update(merging, {"notes": "a", "pressure": 1}, base_version=1, device_seq=1),
    ]
    bulk, alone = in_bulk_and_alone(staff, world, ops)

    assert bulk == alone
    assert bulk["reads"] > 1
    assert [r["status"] for r in bulk["results"]] == [202, 202, 200]
    assert Inspection.objects.get(pk=merging).answers == {
        "exits": True,
        "notes": "c",
        "pressure": 1,
    }


def test_updates_naming_their_predecessor_in_the_run_go_in_bulk(
    staff: Api, world: dict[str, str]
) -> None:
    """A device that names each update's predecessor, in order: nothing is held."""
    merging = world["merging"]
    ops = [update(merging, {"pressure": 1}, base_version=1, device_seq=1)] + [
        update(merging, {"pressure": n}, base_version=1, device_seq=n, previous_seq=n - 1)
        for n in range(2, 6)
    ]
    bulk, alone = in_bulk_and_alone(staff, world, ops)

    assert bulk == alone
    assert bulk["reads"] == 1
    assert [r["status"] for r in bulk["results"]] == [200] * 5
    assert HeldUpdate.objects.count() == 0
