"""The back office at /admin/: who gets in, what they may see and change, and that every change
goes through a command (audited, from the 'back-office' device) while ledgers stay read-only."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from quartermaster.core.models import AuditEntry
from quartermaster.identity.models import Device, User
from tests.conftest import PASSWORD, Api, audit_count, create_user, login

pytestmark = pytest.mark.django_db

AUDIT_LIST = "/admin/core/auditentry/"


def signed_in(username: str, role: str) -> Client:
    create_user(username, role)
    client = Client()
    response = client.post(
        "/admin/login/", {"username": username, "password": PASSWORD, "next": "/admin/"}
    )
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture
def some_audit(admin: Api) -> int:
    admin.post("/api/v1/items", {"name": "cylinder", "qty": 3})
    return AuditEntry.objects.order_by("-seq").values_list("seq", flat=True)[0]


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_admins_and_managers_get_in_and_read_the_audit_list(role: str, some_audit: int) -> None:
    client = signed_in(f"bo-{role}", role)

    index = client.get("/admin/")
    listing = client.get(AUDIT_LIST)

    assert index.status_code == 200
    assert listing.status_code == 200
    assert b"item.create" in listing.content
    for page in ("identity/user/", "identity/device/", "inventory/item/", "inventory/location/"):
        assert client.get(f"/admin/{page}").status_code == 200, page


@pytest.mark.parametrize("role", ["staff", "auditor", "party"])
def test_other_roles_cannot_sign_in(role: str) -> None:
    create_user(f"bo-{role}", role)
    client = Client()

    response = client.post("/admin/login/", {"username": f"bo-{role}", "password": PASSWORD})

    assert response.status_code == 200  # the form again, with an error
    assert client.get(AUDIT_LIST).status_code == 302


@pytest.mark.parametrize("role", ["admin", "manager"])
def test_audit_entries_cannot_be_added_changed_or_deleted(role: str, some_audit: int) -> None:
    client = signed_in(f"bo-{role}", role)
    count = audit_count()

    assert client.get(f"{AUDIT_LIST}add/").status_code == 403
    assert client.get(f"{AUDIT_LIST}{some_audit}/delete/").status_code == 403
    assert client.post(f"{AUDIT_LIST}{some_audit}/delete/", {"post": "yes"}).status_code == 403
    detail = client.get(f"{AUDIT_LIST}{some_audit}/change/")
    assert detail.status_code == 200  # a read-only view
    assert b'name="_save"' not in detail.content
    edit = client.post(f"{AUDIT_LIST}{some_audit}/change/", {"actor": "mallory"})
    assert edit.status_code == 403
    # No bulk actions at all, delete_selected included, and posting one does nothing.
    listing = client.get(AUDIT_LIST)
    assert b"delete_selected" not in listing.content
    assert b'name="action"' not in listing.content
    client.post(AUDIT_LIST, {"action": "delete_selected", "_selected_action": [some_audit]})
    assert audit_count() == count
    assert AuditEntry.objects.filter(actor="mallory").count() == 0


@pytest.mark.parametrize("model", ["inventory/item", "inventory/location", "identity/device"])
def test_items_locations_and_devices_are_read_only(model: str, some_audit: int) -> None:
    client = signed_in("bo-admin", "admin")

    assert client.get(f"/admin/{model}/add/").status_code == 403
    assert b"delete_selected" not in client.get(f"/admin/{model}/").content


def test_an_admin_adds_a_user_through_the_create_command(
    admin: Api, default_location_id: str
) -> None:
    client = signed_in("bo-admin", "admin")

    response = client.post(
        "/admin/identity/user/add/",
        {
            "username": "newdriver",
            "password": "a long enough secret",
            "role": "staff",
            "locations": [default_location_id],
        },
    )

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get(username="newdriver")
    assert user.role == "staff"
    assert [str(pk) for pk in user.locations.values_list("pk", flat=True)] == [default_location_id]
    entry = AuditEntry.objects.get(action="user.create", entity_id=str(user.id))
    assert (entry.actor, entry.device) == ("bo-admin", "back-office")
    assert (
        Api(Client())
        .post("/api/v1/auth/login", {"username": "newdriver", "password": "a long enough secret"})
        .status
        == 200
    )


def test_a_short_password_is_refused_by_the_form_and_nothing_changes(admin: Api) -> None:
    client = signed_in("bo-admin", "admin")
    count = audit_count()

    response = client.post(
        "/admin/identity/user/add/", {"username": "weak", "password": "short", "role": "staff"}
    )

    assert response.status_code == 200
    assert b"must be 8 to 1024 characters" in response.content
    assert not User.objects.filter(username="weak").exists()
    assert audit_count() == count


def test_an_admin_changes_a_role_through_the_update_command(admin: Api) -> None:
    client = signed_in("bo-admin", "admin")
    clerk = create_user("clerk", "staff")

    response = client.post(
        f"/admin/identity/user/{clerk['id']}/change/", {"role": "manager", "is_active": "on"}
    )

    assert response.status_code == 302, response.content[:2000]
    user = User.objects.get(pk=clerk["id"])
    assert (user.role, user.is_staff, user.is_superuser) == ("manager", True, False)
    entry = AuditEntry.objects.get(action="user.update", entity_id=clerk["id"])
    assert (entry.before["role"], entry.after["role"]) == ("staff", "manager")


def test_deactivating_a_user_ends_their_sessions(admin: Api) -> None:
    client = signed_in("bo-admin", "admin")
    clerk = create_user("clerk", "staff")
    pair = login("clerk")

    client.post(f"/admin/identity/user/{clerk['id']}/change/", {"role": "staff"})

    assert Api(Client(), pair["access"]).get("/api/v1/auth/me").status == 401
    assert Api(Client()).post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}).status == 401


def test_an_admin_resets_a_password_through_the_update_command(admin: Api) -> None:
    client = signed_in("bo-admin", "admin")
    clerk = create_user("clerk", "staff")
    pair = login("clerk")

    response = client.post(
        f"/admin/identity/user/{clerk['id']}/change/",
        {"role": "staff", "is_active": "on", "new_password": "reset in the back office"},
    )

    assert response.status_code == 302, response.content[:2000]
    assert Api(Client(), pair["access"]).get("/api/v1/auth/me").status == 401
    fresh = {"username": "clerk", "password": "reset in the back office"}
    assert Api(Client()).post("/api/v1/auth/login", fresh).status == 200
    sealed = AuditEntry.objects.get(action="user.update", entity_type="user.password")
    assert (sealed.entity_id, sealed.after) == (clerk["id"], {"state": "reset"})


def test_managers_see_users_but_cannot_change_roles(admin: Api) -> None:
    client = signed_in("bo-manager", "manager")
    me = User.objects.get(username="bo-manager")

    assert client.get("/admin/identity/user/").status_code == 200
    assert client.get("/admin/identity/user/add/").status_code == 403
    escalate = client.post(f"/admin/identity/user/{me.pk}/change/", {"role": "admin"})
    assert escalate.status_code == 403
    assert User.objects.get(pk=me.pk).role == "manager"


def test_an_admin_revokes_devices_with_the_bulk_action(admin: Api) -> None:
    create_user("driver", "staff")
    pair = login("driver", device_id="truck-07")
    client = signed_in("bo-admin", "admin")

    response = client.post(
        "/admin/identity/device/",
        {"action": "revoke_devices", "_selected_action": ["truck-07"]},
    )

    assert response.status_code == 302
    assert Device.objects.get(pk="truck-07").revoked_at is not None
    assert Api(Client(), pair["access"]).get("/api/v1/auth/me").status == 401
    entry = AuditEntry.objects.get(action="device.revoke")
    assert (entry.actor, entry.device) == ("bo-admin", "back-office")


def test_managers_are_not_offered_device_revocation(make_api: Callable[..., Api]) -> None:
    create_user("driver", "staff")
    login("driver", device_id="truck-07")
    client = signed_in("bo-manager", "manager")

    listing = client.get("/admin/identity/device/")
    client.post(
        "/admin/identity/device/", {"action": "revoke_devices", "_selected_action": ["truck-07"]}
    )

    assert b"revoke_devices" not in listing.content
    assert Device.objects.get(pk="truck-07").revoked_at is None


def test_the_back_office_login_is_rate_limited_too(db: None) -> None:
    create_user("boss", "admin")
    client = Client()
    for _ in range(5):
        client.post("/admin/login/", {"username": "boss", "password": "wrong password"})

    response = client.post("/admin/login/", {"username": "boss", "password": PASSWORD})

    assert response.status_code == 200
    assert b"Too many failed logins" in response.content
    assert client.get(AUDIT_LIST).status_code == 302
