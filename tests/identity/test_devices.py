"""Devices: registered at login, carried in tokens and audit entries, listed with last-seen times,
revoked by an admin so that every token issued to them stops working at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from quartermaster.core.models import AuditEntry
from quartermaster.identity import services
from quartermaster.identity.models import Device, RefreshToken
from tests.conftest import Api, audit_count, create_user, login

pytestmark = pytest.mark.django_db


@pytest.fixture
def driver(db: None) -> dict:
    create_user("driver", "staff")
    return login("driver", device_id="truck-07")


def test_login_with_a_device_id_registers_the_device(driver: dict, admin: Api) -> None:
    reply = admin.get("/api/v1/devices/truck-07")

    assert reply.status == 200
    body = reply.body
    assert body["device_id"] == "truck-07"
    assert body["username"] == "driver"
    assert body["revoked_at"] is None
    assert body["first_seen_at"] <= body["last_seen_at"]
    registration = AuditEntry.objects.get(entity_type="device", entity_id="truck-07")
    assert (registration.action, registration.device, registration.actor) == (
        "session.start",
        "truck-07",
        "driver",
    )


def test_audit_entries_record_the_device_the_change_came_from(admin: Api, driver: dict) -> None:
    create_user("boss", "manager")
    boss = Api(Client(), login("boss", device_id="office-pc")["access"])

    reply = boss.post("/api/v1/items", {"name": "regulator", "qty": 2})

    entry = AuditEntry.objects.get(entity_type="item", entity_id=reply.body["id"])
    assert (entry.actor, entry.device) == ("boss", "office-pc")
    listed = admin.get(f"/api/v1/audit?entity_id={reply.body['id']}").body["results"]
    assert [e["device"] for e in listed] == ["office-pc"]


def test_devices_are_listed_most_recently_seen_first(admin: Api, driver: dict) -> None:
    create_user("cashier", "staff")
    login("cashier", device_id="till-1")

    reply = admin.get("/api/v1/devices")

    assert reply.status == 200
    assert [d["device_id"] for d in reply.body["results"]] == ["till-1", "truck-07"]
    assert reply.body["next_cursor"] is None
    page = admin.get("/api/v1/devices?limit=1")
    assert [d["device_id"] for d in page.body["results"]] == ["till-1"]
    rest = admin.get(f"/api/v1/devices?limit=1&cursor={page.body['next_cursor']}")
    assert [d["device_id"] for d in rest.body["results"]] == ["truck-07"]


def test_a_shared_device_records_who_logged_in_last(admin: Api, driver: dict) -> None:
    create_user("relief", "staff")
    login("relief", device_id="truck-07")

    assert admin.get("/api/v1/devices/truck-07").body["username"] == "relief"
    assert Device.objects.count() == 1


def test_revoking_a_device_stops_its_access_and_refresh_tokens_at_once(
    admin: Api, driver: dict
) -> None:
    truck = Api(Client(), driver["access"])
    create_user("other", "staff")
    other = login("other", device_id="truck-08")
    assert truck.get("/api/v1/auth/me").status == 200
    before = audit_count()

    reply = admin.post("/api/v1/devices/truck-07/revoke")

    assert reply.status == 200
    assert reply.body["revoked_at"] is not None
    assert truck.get("/api/v1/auth/me").status == 401
    assert truck.get("/api/v1/items").status == 401
    refreshed = Api(Client()).post("/api/v1/auth/refresh", {"refresh": driver["refresh"]})
    assert refreshed.status == 401
    assert not RefreshToken.objects.filter(device_id="truck-07", revoked_at__isnull=True).exists()
    # Nobody can log in on it again; other devices go on working.
    again = Api(Client()).post(
        "/api/v1/auth/login",
        {"username": "driver", "password": "correct horse battery", "device_id": "truck-07"},
    )
    assert again.status == 401
    assert Api(Client(), other["access"]).get("/api/v1/auth/me").status == 200
    assert Api(Client()).post("/api/v1/auth/refresh", {"refresh": other["refresh"]}).status == 200
    # The revocation is audited, by whom and from where.
    entry = AuditEntry.objects.get(action="device.revoke")
    assert entry.seq > before
    assert (entry.actor, entry.entity_id) == ("admin", "truck-07")
    assert entry.before["revoked_at"] is None and entry.after["revoked_at"] is not None


def test_revoking_twice_is_fine_and_audited_once(admin: Api, driver: dict) -> None:
    first = admin.post("/api/v1/devices/truck-07/revoke")
    second = admin.post("/api/v1/devices/truck-07/revoke")

    assert (first.status, second.status) == (200, 200)
    assert second.body == first.body
    assert AuditEntry.objects.filter(action="device.revoke").count() == 1


def test_revoking_an_unknown_device_is_404(admin: Api) -> None:
    before = audit_count()

    assert admin.post("/api/v1/devices/nope/revoke").status == 404
    assert admin.get("/api/v1/devices/nope").status == 404
    assert audit_count() == before


def test_only_admins_revoke_devices(manager: Api, driver: dict) -> None:
    reply = manager.post("/api/v1/devices/truck-07/revoke")

    assert reply.status == 403
    assert Device.objects.get(pk="truck-07").revoked_at is None


def test_a_bad_device_cursor_is_400(admin: Api) -> None:
    reply = admin.get("/api/v1/devices?cursor=garbage")

    assert reply.status == 400
    assert "cursor" in reply.body["fields"]


def test_using_the_api_moves_last_seen_forward(admin: Api, driver: dict) -> None:
    an_hour_ago = timezone.now() - timedelta(hours=1)
    Device.objects.filter(pk="truck-07").update(last_seen_at=an_hour_ago)
    services._last_touched.clear()

    assert Api(Client(), driver["access"]).get("/api/v1/auth/me").status == 200

    seen = Device.objects.get(pk="truck-07").last_seen_at
    assert seen > an_hour_ago + timedelta(minutes=59)
    # Within the minute, further requests write nothing more.
    Device.objects.filter(pk="truck-07").update(last_seen_at=an_hour_ago)
    Api(Client(), driver["access"]).get("/api/v1/auth/me")
    assert Device.objects.get(pk="truck-07").last_seen_at == an_hour_ago


def test_a_revoked_device_cannot_sync_under_a_fresh_login(admin: Api, driver: dict) -> None:
    admin.post("/api/v1/devices/truck-07/revoke")
    fresh = Api(Client(), login("driver", device_id="truck-08")["access"])

    reply = fresh.post("/api/v1/sync/batch", {"device_id": "truck-07", "ops": []})

    assert (reply.status, reply.body["code"]) == (401, "not_authenticated")
    assert fresh.post("/api/v1/sync/batch", {"device_id": "truck-08", "ops": []}).status == 200


def test_devices_are_online_while_heard_from_and_offline_after(admin: Api, driver: dict) -> None:
    assert admin.get("/api/v1/devices/truck-07").body["online"] is True

    Device.objects.filter(pk="truck-07").update(last_seen_at=timezone.now() - timedelta(minutes=3))

    assert admin.get("/api/v1/devices/truck-07").body["online"] is False
    listed = {d["device_id"]: d["online"] for d in admin.get("/api/v1/devices").body["results"]}
    assert listed["truck-07"] is False
    services._last_touched.clear()
    Api(Client(), driver["access"]).get("/api/v1/auth/me")  # the device's next sync round
    assert admin.get("/api/v1/devices/truck-07").body["online"] is True
