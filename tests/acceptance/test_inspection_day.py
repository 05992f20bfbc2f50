"""An inspection day end to end, over real HTTP and the field agent (issue 13's "done when").

A live server (pytest-django's, on the test database: SQLite or PostgreSQL), the manager over
HTTP, and the inspector's two tablets running `quartermaster agent`, each with its own device
database; media on this server's disk, then on an S3-compatible server (moto, on 127.0.0.1):

- the manager publishes a checklist; the inspector starts the inspection on one tablet;
- both tablets edit it offline from the same version: different answers merge (the second
  sync says so), then the same answer on both sides → 409, a conflict record, resolved by merge;
- a photo is recorded offline and attached; the first sync goes through a proxy that loses the
  confirm's answer (the server confirmed, the tablet never heard); the next sync finishes the
  job with one asset, never two;
- submitted, rejected with a comment, fixed and resubmitted from the tablet, approved;
- the PDF report shows the answers, the photo and the approval;
- the manager deletes it (soft) and restores it; `audit verify --state` passes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quartermaster.client.store import DeviceStore
from quartermaster.inventory.selectors import get_default_location
from quartermaster.media.models import MediaAsset
from tests.acceptance.fault_proxy import FaultProxy, FaultRates
from tests.acceptance.test_market_morning import Http, Tablet, flushable  # noqa: F401
from tests.audit_tampering import Edit, assert_each_edit_is_caught
from tests.conftest import PASSWORD, create_user
from tests.documents.pdf_tools import first_page, ink, pdf_text
from tests.inspections.helpers import BOILER_ROOM, INSPECTIONS, TEMPLATES
from tests.media.conftest import Bucket, media_dir, s3_bucket, s3_server  # noqa: F401
from tests.media.helpers import image_bytes

pytestmark = [
    pytest.mark.slow,
    # The live server's threads need to see what the test commits (and the reverse).
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

INSPECTOR = "asha"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, media_dir: Path) -> Bucket | None:  # noqa: F811
    """The media storage of this run: the server's disk, or a new bucket on the S3 server."""
    if request.param == "local":
        return None
    bucket: Bucket = request.getfixturevalue("s3_bucket")
    return bucket


@pytest.fixture
def manager(live_server: Any, flushable: None) -> Iterator[Http]:  # noqa: F811
    """The manager over HTTP, and the inspector's account, at the default location."""
    location = str(get_default_location().id)
    create_user("boss", "manager", locations=(location,))
    create_user(INSPECTOR, "staff", locations=(location,))
    manager = Http(live_server.url, "boss")
    yield manager
    # Its keep-alive connection's server thread ends now, not after the database is flushed.
    manager.client.close()


def test_an_inspection_day_through_the_agent(
    live_server: Any,
    manager: Http,
    storage: Bucket | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = live_server.url
    location = str(get_default_location().id)

    # The manager publishes the checklist; tablets read it with ETags.
    template = manager.call("POST", TEMPLATES, BOILER_ROOM, 201)["id"]
    manager.call("POST", f"{TEMPLATES}/{template}/publish")
    read = manager.client.get(f"{TEMPLATES}/{template}")
    again = manager.client.get(
        f"{TEMPLATES}/{template}", headers={"If-None-Match": read.headers["ETag"]}
    )
    assert (read.status_code, again.status_code, again.content) == (200, 304, b"")

    # The inspection starts offline on tablet A; tablet B (the plant room's) pulls it.
    a, b = (Tablet(tmp_path / f"tablet-{x}.sqlite3", INSPECTOR, f"tablet-{x}") for x in "ab")
    for tablet in (a, b):
        tablet.agent(capsys, "status", "--device", tablet.device)
    a.record(
        capsys,
        "inspection.create",
        {"template": template, "location": location, "answers": {}},
        "--temp-id",
        "boiler",
    )
    assert "1 accepted, 0 rejected" in a.sync(capsys, base)
    with DeviceStore(a.db) as store:
        inspection = store.resolve("boiler")
    assert inspection is not None
    b.sync(capsys, base)
    with DeviceStore(b.db) as store:
        assert store.replica("inspection")[inspection]["version"] == 1
    path = f"{INSPECTIONS}/{inspection}"

    # Offline on both, from version 1, different answers: they merge, and the second says so.
    edit(capsys, a, inspection, {"extinguisher": True, "condition": "good"}, base_version=1)
    edit(capsys, b, inspection, {"pressure": 4.5, "exits": True}, base_version=1)
    for tablet in (a, b):
        assert "1 accepted, 0 rejected" in tablet.sync(capsys, base)
    merge = done_bodies(b)[-1]["merge"]
    assert merge == {
        "base_version": 1,
        "theirs": ["condition", "extinguisher"],
        "mine": ["exits", "pressure"],
    }
    merged = manager.call("GET", path)
    assert merged["version"] == 3
    assert merged["answers"] == {
        "extinguisher": True,
        "condition": "good",
        "pressure": 4.5,
        "exits": True,
    }

    # Offline on both, from version 3, the same answer: the second is a conflict, resolved.
    edit(capsys, a, inspection, {"notes": "valve stiff"}, base_version=3)
    edit(
        capsys, b, inspection, {"notes": "valve replaced", "serviced": "2026-11-30"}, base_version=3
    )
    assert "1 accepted, 0 rejected" in a.sync(capsys, base)
    code, out = sync(capsys, b, base)
    assert (code, "0 accepted, 1 rejected (1 conflicts)" in out) == (3, True), out
    code, out = b.agent(capsys, "conflicts", "--json")
    [clash] = json.loads(out)
    assert (clash["status"], clash["conflict"]) == (409, True), clash
    assert (clash["body"]["code"], clash["body"]["conflicting_answers"]) == (
        "version_conflict",
        ["notes"],
    )
    conflict = clash["body"]["conflict"]
    assert [c["id"] for c in manager.call("GET", "/api/v1/conflicts")["results"]] == [conflict]
    resolved = manager.call(
        "POST",
        f"/api/v1/conflicts/{conflict}/resolve",
        {"strategy": "merge", "merged": {"answers": {"notes": "valve stiff, replaced"}}},
    )
    assert resolved["status"] == "resolved"
    assert resolved["record"]["version"] == 5
    assert resolved["record"]["answers"]["notes"] == "valve stiff, replaced"
    assert resolved["record"]["answers"]["serviced"] == "2026-11-30"  # B's other answer kept

    # A photo, recorded offline and attached; the first sync loses the confirm's answer.
    photo_file = tmp_path / "gauge.jpg"
    photo_file.write_bytes(image_bytes("JPEG", (640, 480), noise=True))
    code, out = a.agent(capsys, "photo", str(photo_file))
    assert code == 0, out
    media = out.strip()
    edit(capsys, a, inspection, {"photos": [media]})
    with FaultProxy(base, FaultRates()) as proxy:
        proxy.arm(f"/api/v1/media/{media}/confirm", lambda: lose_answers(proxy))
        code, out = sync(capsys, a, proxy.url, "--once")
        assert proxy.stats["dropped_responses"] >= 1, proxy.stats
    assert code != 0, out
    assert photo_states(a) == [(media, "uploaded")]
    assert counts(a)["pending"] == 1  # the op waits for its photo
    assert manager.call("GET", f"/api/v1/media/{media}")["status"] == "ready"  # confirmed
    out = a.sync(capsys, base)
    assert "1 accepted, 0 rejected" in out, out
    assert photo_states(a) == [(media, "ready")]
    assert MediaAsset.objects.count() == 1  # confirmed once, never uploaded twice
    asset = manager.call("GET", f"/api/v1/media/{media}")
    assert (asset["width"], asset["height"]) == (640, 480)
    assert httpx.get(asset["url"]).content == photo_file.read_bytes()
    if storage is not None:  # the bytes are in the bucket, not on the server's disk
        keys = storage.client.list_objects_v2(Bucket=storage.name)["Contents"]
        assert len(keys) == 2, keys  # the photo and its thumbnail
    assert manager.call("GET", path)["answers"]["photos"] == [media]

    # Submitted from the tablet; rejected with a comment; fixed, resubmitted; approved.
    a.record(capsys, "inspection.submit", {"id": inspection})
    assert "1 accepted, 0 rejected" in a.sync(capsys, base)
    assert manager.call("GET", path)["status"] == "submitted"
    rejected = manager.call("POST", f"{path}/reject", {"comment": "Which hazards? Say."})
    assert (rejected["status"], rejected["review_comment"]) == ("rejected", "Which hazards? Say.")
    edit(capsys, a, inspection, {"hazards": ["noise", "heat"]})
    a.record(capsys, "inspection.submit", {"id": inspection})
    assert "2 accepted, 0 rejected" in a.sync(capsys, base)
    approved = manager.call("POST", f"{path}/approve")
    assert approved["status"] == "approved"
    locked_edit = edit(capsys, b, inspection, {"notes": "late"})
    code, out = sync(capsys, b, base)
    assert (code, "0 accepted, 1 rejected" in out) == (3, True), out
    assert done_or_rejected(b, locked_edit)["code"] == "inspection_locked"

    # The report shows the answers, the photo and the approval.
    report = manager.client.get(f"{path}/report")
    assert report.status_code == 200 and report.headers["content-type"] == "application/pdf"
    text = " ".join(pdf_text(report.content).split())
    shown = (
        "Inspection report",
        "Boiler room",
        "Status approved",
        f"Inspector {INSPECTOR}",
        "Reviewed by boss",
    )
    answers = (
        "Pressure 4.5",
        "Condition good",
        "Notes valve stiff, replaced",
        "Hazards noise, heat",
    )
    record = f"{inspection}, version {approved['version']}"
    for words in (*shown, *answers, "Last serviced 2026-11-30", "Score 600 / 600", record):
        assert words in text, (words, text)
    assert "Which hazards" not in text  # the rejection's comment went with the approval
    assert ink(first_page(report.content)) > 0.01
    assert report.content.count(b"/Subtype /Image") == 1  # the photo's thumbnail

    # Soft delete and restore, by the manager; the inspection is back as it was.
    assert manager.client.delete(path).status_code == 204
    assert inspection not in ids(manager.call("GET", INSPECTIONS))
    manager.call("GET", path, expect=404)
    restored = manager.call("POST", f"{path}/restore")
    assert (restored["deleted"], restored["status"]) == (False, "approved")
    assert restored["version"] == approved["version"] + 2
    assert inspection in ids(manager.call("GET", INSPECTIONS))
    versions = manager.call("GET", f"{path}/versions?limit=100")["results"]
    assert len(versions) == restored["version"]

    assert manager.call("GET", "/api/v1/audit/verify")["ok"] is True
    from quartermaster import cli

    assert cli.main(["audit", "verify", "--state"]) == 0
    # Each table's reader compares what was sealed: a row edited behind the pipeline is named.
    assert_each_edit_is_caught(
        capsys,
        [
            Edit("inspection.template", "inspections_template", "created_by = 'mallory'"),
            Edit("inspection", "inspections_inspection", "review_comment = 'tampered'"),
            Edit("inspection.held_update", "inspections_heldupdate", "status = 'tampered'"),
            Edit("media", "media_mediaasset", "size = size + 1"),
            Edit("conflict", "core_conflict", "actor = 'mallory'"),
            Edit("device", "identity_device", "first_seen_at = '2000-01-01 00:00:00'", "device_id"),
        ],
    )


def edit(
    capsys: pytest.CaptureFixture[str],
    tablet: Tablet,
    inspection: str,
    answers: dict[str, Any],
    *,
    base_version: int | None = None,
) -> str:
    """Record an answers patch offline; the op's id."""
    more = () if base_version is None else ("--base-version", str(base_version))
    tablet.record(capsys, "inspection.update", {"id": inspection, "answers": answers}, *more)
    with DeviceStore(tablet.db) as store:
        return store.ops()[-1].op_id


def sync(
    capsys: pytest.CaptureFixture[str], tablet: Tablet, server: str, *more: str
) -> tuple[int, str]:
    """`agent sync` on `tablet` whatever comes of it: (exit code, output)."""
    login = ("--username", tablet.user, "--password", PASSWORD)
    return tablet.agent(capsys, "sync", "--server", server, *login, *more)


def lose_answers(proxy: FaultProxy) -> None:
    """From now on the proxy drops every answer (after the server applied the request)."""
    proxy.rates.drop_response = 1.0


def done_bodies(tablet: Tablet) -> list[Any]:
    with DeviceStore(tablet.db) as store:
        return [op.body for op in store.ops(state="done")]


def done_or_rejected(tablet: Tablet, op_id: str) -> Any:
    with DeviceStore(tablet.db) as store:
        [op] = [op for op in store.ops() if op.op_id == op_id]
    return op.body


def photo_states(tablet: Tablet) -> list[tuple[str, str]]:
    with DeviceStore(tablet.db) as store:
        return [(photo.media_id, photo.state) for photo in store.photos()]


def counts(tablet: Tablet) -> dict[str, int]:
    with DeviceStore(tablet.db) as store:
        return dict(store.counts())


def ids(page: dict[str, Any]) -> list[str]:
    return [row["id"] for row in page["results"]]
