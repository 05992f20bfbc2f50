"""People managed through the API (issue 10 item 12): an admin's users endpoints, one's own
password, and self sign-up behind QM_SIGNUP. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import logging
import threading
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from quartermaster.core.models import AuditEntry, IdempotencyRecord
from quartermaster.identity.models import User
from tests.conftest import PASSWORD, Api, audit_count, create_user, login

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a much longer secret"


def _user(admin: Api, **fields: Any) -> dict[str, Any]:
    body = {"username": "ravi", "password": NEW_PASSWORD, "role": "staff", **fields}
    reply = admin.post("/api/v1/users", body)
    assert reply.status == 201, reply.body
    return reply.body


def _signed_in(username: str, password: str = PASSWORD) -> tuple[Api, dict[str, Any]]:
    reply = Api(Client()).post("/api/v1/auth/login", {"username": username, "password": password})
    assert reply.status == 200, reply.body
    return Api(Client(), reply.body["access"]), reply.body


def test_an_admin_creates_a_user_with_role_and_locations_who_then_signs_in(
    admin: Api, default_location_id: str
) -> None:
    created = _user(admin, locations=[default_location_id])

    assert created["role"] == "staff"
    assert created["locations"] == [default_location_id]
    assert created["is_active"] is True
    assert (created["customer"], created["farmer"]) == (None, None)
    assert "password" not in created
    me = _signed_in("ravi", NEW_PASSWORD)[0].get("/api/v1/auth/me").body
    assert (me["id"], me["role"], me["locations"]) == (
        created["id"],
        "staff",
        [default_location_id],
    )
    assert admin.get(f"/api/v1/users/{created['id']}").body == created


def test_users_are_listed_a_page_at_a_time_by_username(admin: Api) -> None:
    for name in ("cara", "bala", "devi"):
        _user(admin, username=name)

    pages = [admin.get("/api/v1/users?limit=2").body]
    while pages[-1]["next_cursor"] is not None:
        pages.append(admin.get(f"/api/v1/users?limit=2&cursor={pages[-1]['next_cursor']}").body)
    staff_only = admin.get("/api/v1/users?role=staff").body

    names = [u["username"] for page in pages for u in page["results"]]
    assert names == ["admin", "bala", "cara", "devi"]
    assert [len(page["results"]) for page in pages[:2]] == [2, 2]
    assert [u["username"] for u in staff_only["results"]] == ["bala", "cara", "devi"]
    assert admin.get("/api/v1/users?cursor=nonsense").status == 400


@pytest.mark.parametrize("role", ["manager", "staff", "auditor", "party"])
def test_only_an_admin_creates_or_changes_users(
    role: str, make_api: Any, admin: Api, default_location_id: str
) -> None:
    someone = _user(admin)
    caller = make_api(role, locations=(default_location_id,))
    before = audit_count()

    created = caller.post(
        "/api/v1/users", {"username": "x1", "password": "p" * 12, "role": "admin"}
    )
    changed = caller.patch(f"/api/v1/users/{someone['id']}", {"role": "admin"})

    assert (created.status, created.body["code"]) == (403, "permission_denied")
    assert (changed.status, changed.body["code"]) == (403, "permission_denied")
    assert audit_count() == before
    assert User.objects.get(pk=someone["id"]).role == "staff"
    assert not User.objects.filter(username="x1").exists()
    # Managers see users (as in the back office); the others do not.
    listed = caller.get("/api/v1/users").status
    assert listed == (200 if role == "manager" else 403)


def test_a_deactivated_users_tokens_stop_working_at_once(admin: Api) -> None:
    user = _user(admin)
    api, pair = _signed_in("ravi", NEW_PASSWORD)
    assert api.get("/api/v1/auth/me").status == 200

    reply = admin.patch(f"/api/v1/users/{user['id']}", {"is_active": False})

    assert reply.status == 200 and reply.body["is_active"] is False
    assert api.get("/api/v1/auth/me").status == 401
    assert Api(Client()).post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}).status == 401
    again = Api(Client()).post("/api/v1/auth/login", {"username": "ravi", "password": NEW_PASSWORD})
    assert again.status == 401
    # Back again: signs in anew.
    assert admin.patch(f"/api/v1/users/{user['id']}", {"is_active": True}).status == 200
    assert _signed_in("ravi", NEW_PASSWORD)[0].get("/api/v1/auth/me").status == 200


def test_an_admin_resets_a_password_and_every_session_of_the_user_ends(admin: Api) -> None:
    user = _user(admin)
    api, _ = _signed_in("ravi", NEW_PASSWORD)

    reply = admin.patch(f"/api/v1/users/{user['id']}", {"password": "reset by the admin"})

    assert reply.status == 200 and "password" not in reply.body
    assert api.get("/api/v1/auth/me").status == 401
    old = Api(Client()).post("/api/v1/auth/login", {"username": "ravi", "password": NEW_PASSWORD})
    assert old.status == 401
    assert _signed_in("ravi", "reset by the admin")[0].get("/api/v1/auth/me").status == 200
    sealed = AuditEntry.objects.filter(entity_type="user.password", entity_id=user["id"])
    assert [entry.after for entry in sealed] == [{"state": "reset"}]


def test_a_patch_changes_only_the_fields_it_names(admin: Api, default_location_id: str) -> None:
    user = _user(admin, locations=[default_location_id])

    reply = admin.patch(f"/api/v1/users/{user['id']}", {"role": "manager"})

    assert (reply.body["role"], reply.body["locations"]) == ("manager", [default_location_id])
    assert admin.patch(f"/api/v1/users/{user['id']}", {"locations": []}).body["locations"] == []


def test_bad_user_input_is_refused_and_nothing_is_made(admin: Api) -> None:
    before = (audit_count(), User.objects.count())
    unknown = "00000000-0000-4000-8000-000000000000"

    replies = [
        admin.post("/api/v1/users", {"username": "x", "password": "short", "role": "staff"}),
        admin.post("/api/v1/users", {"username": "x y", "password": "p" * 12, "role": "staff"}),
        admin.post("/api/v1/users", {"username": "x", "password": "p" * 12, "role": "king"}),
        admin.post(
            "/api/v1/users",
            {"username": "x", "password": "p" * 12, "role": "staff", "locations": [unknown]},
        ),
        admin.post(
            "/api/v1/users",
            {"username": "x", "password": "p" * 12, "role": "party", "customer": unknown},
        ),
        admin.post("/api/v1/users", {"username": "x", "password": "p" * 12, "role": "s", "x": 1}),
        admin.patch(f"/api/v1/users/{unknown}", {"role": "staff"}),
        admin.patch("/api/v1/users/not-a-uuid", {"role": "staff"}),
    ]

    assert [r.status for r in replies] == [400, 400, 400, 400, 400, 400, 404, 400]
    assert replies[3].body["fields"] == {"locations": f"no location has the id {unknown}"}
    assert replies[4].body["fields"] == {"customer": "unknown customer"}
    assert (audit_count(), User.objects.count()) == before


def test_a_username_is_taken_once(admin: Api) -> None:
    _user(admin)

    reply = admin.post("/api/v1/users", {"username": "ravi", "password": "p" * 12, "role": "staff"})

    assert (reply.status, reply.body["code"]) == (409, "conflict")


def test_the_last_active_admin_is_not_demoted_or_deactivated(admin: Api) -> None:
    me = admin.get("/api/v1/auth/me").body

    for change in ({"is_active": False}, {"role": "manager"}):
        reply = admin.patch(f"/api/v1/users/{me['id']}", change)
        assert (reply.status, reply.body["code"]) == (409, "last_admin")
    _user(admin, username="second", role="admin")
    assert admin.patch(f"/api/v1/users/{me['id']}", {"role": "manager"}).status == 200


def test_a_party_user_is_linked_to_their_customer_and_reads_its_statement(admin: Api) -> None:
    customer = admin.post("/api/v1/customers", {"name": "Lakshmi Stores"}).body
    staff_user = _user(admin, username="not-a-party")

    user = _user(admin, username="lakshmi", role="party", customer=customer["id"])
    refused = admin.patch(f"/api/v1/users/{staff_user['id']}", {"customer": customer["id"]})

    assert user["customer"] == customer["id"]
    party, _ = _signed_in("lakshmi", NEW_PASSWORD)
    assert party.get(f"/api/v1/customers/{customer['id']}/statement").status == 200
    assert refused.status == 400
    assert refused.body["fields"] == {"customer": "must be a user of role party"}
    linked = AuditEntry.objects.filter(entity_type="customer", entity_id=customer["id"])
    assert [entry.after["user"] for entry in linked.order_by("seq")] == [None, user["id"]]


def test_a_party_user_is_linked_to_their_farmer(admin: Api) -> None:
    farmer = admin.post(
        "/api/v1/market/farmers", {"name": "Valli", "phone": "9876500000", "language": "en"}
    ).body
    user = _user(admin, username="valli", role="party")

    reply = admin.patch(f"/api/v1/users/{user['id']}", {"farmer": farmer["id"]})

    assert reply.status == 200 and reply.body["farmer"] == farmer["id"]
    party, _ = _signed_in("valli", NEW_PASSWORD)
    assert party.get(f"/api/v1/market/farmers/{farmer['id']}/statement").status == 200


# -- one's own password ----------------------------------------------------------------------


def test_changing_ones_password_ends_every_other_session_and_keeps_this_one() -> None:
    create_user("driver", "staff")
    here, here_pair = _signed_in("driver")
    there, there_pair = _signed_in("driver")

    reply = here.post(
        "/api/v1/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert reply.status == 204
    assert here.get("/api/v1/auth/me").status == 200
    assert there.get("/api/v1/auth/me").status == 401
    refresh = Api(Client()).post
    assert refresh("/api/v1/auth/refresh", {"refresh": there_pair["refresh"]}).status == 401
    assert refresh("/api/v1/auth/refresh", {"refresh": here_pair["refresh"]}).status == 200
    old = refresh("/api/v1/auth/login", {"username": "driver", "password": PASSWORD})
    assert old.status == 401
    assert _signed_in("driver", NEW_PASSWORD)[0].get("/api/v1/auth/me").status == 200


def test_a_password_change_needs_the_old_one_and_a_valid_new_one() -> None:
    create_user("driver", "staff")
    api, _ = _signed_in("driver")
    before = audit_count()

    wrong = api.post(
        "/api/v1/auth/password", {"old_password": "not it at all", "new_password": NEW_PASSWORD}
    )
    weak = api.post("/api/v1/auth/password", {"old_password": PASSWORD, "new_password": "short"})
    missing = api.post("/api/v1/auth/password", {"new_password": NEW_PASSWORD})

    assert (wrong.status, wrong.body["fields"]) == (
        400,
        {"old_password": "is not the current password"},
    )
    assert weak.status == 400 and "password" in weak.body["fields"]
    assert missing.status == 400
    assert audit_count() == before
    assert api.get("/api/v1/auth/me").status == 200
    assert _signed_in("driver")[0].get("/api/v1/auth/me").status == 200


def test_guessing_the_old_password_locks_out_like_login(settings: Any) -> None:
    settings.LOGIN_LOCKOUT_FAILURES = 3
    create_user("driver", "staff")
    api, _ = _signed_in("driver")
    guess = {"old_password": "a wrong guess", "new_password": NEW_PASSWORD}

    statuses = [api.post("/api/v1/auth/password", guess).status for _ in range(4)]
    right = api.post("/api/v1/auth/password", {**guess, "old_password": PASSWORD})

    assert statuses == [400, 400, 400, 429]
    assert right.status == 429


def test_no_password_or_hash_appears_in_any_answer_audit_entry_stored_answer_or_log(
    admin: Api, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    user = _user(admin, username="secretive")
    admin.patch(f"/api/v1/users/{user['id']}", {"password": "second secret here"})
    api, _ = _signed_in("secretive", "second secret here")
    api.post(
        "/api/v1/auth/password",
        {"old_password": "second secret here", "new_password": "third secret here"},
    )
    keyed = admin.post(
        "/api/v1/users",
        {"username": "keyed", "password": "fourth secret here", "role": "staff"},
        headers={"Idempotency-Key": "make-keyed"},
    )
    hashes = list(User.objects.values_list("password", flat=True))

    texts = [json.dumps(admin.get("/api/v1/users?limit=500").body), json.dumps(keyed.body)]
    texts += [json.dumps([e.before, e.after]) for e in AuditEntry.objects.all()]
    texts += [json.dumps(k.body) for k in IdempotencyRecord.objects.all()]
    logged = capsys.readouterr()
    texts += [caplog.text, logged.out, logged.err]
    secrets = [NEW_PASSWORD, "second secret", "third secret", "fourth secret", "argon2", *hashes]
    assert all(secret not in text for secret in secrets for text in texts)


# -- self sign-up ----------------------------------------------------------------------------


def test_sign_up_is_off_by_default(anon: Api) -> None:
    reply = anon.post("/api/v1/auth/signup", {"username": "walkin", "password": NEW_PASSWORD})

    assert (reply.status, reply.body["code"]) == (404, "not_found")
    assert not User.objects.filter(username="walkin").exists()


def test_a_signed_up_account_is_inactive_until_an_admin_approves_it(
    settings: Any, anon: Api, admin: Api, default_location_id: str
) -> None:
    settings.SIGNUP = True

    reply = anon.post("/api/v1/auth/signup", {"username": "walkin", "password": NEW_PASSWORD})

    assert reply.status == 201
    assert (reply.body["role"], reply.body["is_active"]) == ("party", False)
    login_body = {"username": "walkin", "password": NEW_PASSWORD}
    assert anon.post("/api/v1/auth/login", login_body).status == 401
    waiting = admin.get("/api/v1/users?is_active=false").body["results"]
    assert [u["username"] for u in waiting] == ["walkin"]
    approved = admin.patch(
        f"/api/v1/users/{reply.body['id']}",
        {"is_active": True, "role": "staff", "locations": [default_location_id]},
    )
    assert approved.status == 200
    api, _ = _signed_in("walkin", NEW_PASSWORD)
    assert api.get("/api/v1/auth/me").body["role"] == "staff"
    created = (
        AuditEntry.objects.filter(entity_type="user", entity_id=reply.body["id"])
        .order_by("seq")
        .first()
    )
    assert created is not None and created.before is None
    assert (created.actor, created.after["is_active"]) == ("self sign-up", False)


def test_sign_up_is_rate_limited_per_address(settings: Any, anon: Api) -> None:
    settings.SIGNUP = True
    settings.SIGNUPS_PER_IP = 2

    statuses = [
        anon.post("/api/v1/auth/signup", {"username": f"w{n}", "password": NEW_PASSWORD}).status
        for n in range(3)
    ]

    assert statuses == [201, 201, 429]
    assert User.objects.filter(username__startswith="w").count() == 2


def test_sign_up_refuses_taken_names_and_weak_passwords(settings: Any, anon: Api) -> None:
    settings.SIGNUP = True
    create_user("driver", "staff")

    taken = anon.post("/api/v1/auth/signup", {"username": "driver", "password": NEW_PASSWORD})
    weak = anon.post("/api/v1/auth/signup", {"username": "walkin", "password": "short"})
    extra = anon.post(
        "/api/v1/auth/signup", {"username": "walkin", "password": NEW_PASSWORD, "role": "admin"}
    )

    assert [taken.status, weak.status, extra.status] == [409, 400, 400]
    assert not User.objects.filter(username="walkin").exists()


# -- the chain's format ----------------------------------------------------------------------


def test_identity_records_keep_their_audit_snapshot_format(admin: Api) -> None:
    user = _user(admin)
    admin.patch(f"/api/v1/users/{user['id']}", {"role": "manager"})
    login("admin", device_id="till-1")
    admin.post("/api/v1/devices/till-1/revoke")

    sealed = {(e.entity_type, e.before is None): sorted(e.after) for e in AuditEntry.objects.all()}

    assert sealed[("user", True)] == ["id", "locations", "role", "username"]
    assert sealed[("user", False)] == ["id", "is_active", "locations", "role", "username"]
    device = [
        *("device_id", "first_seen_at", "last_seen_at", "online", "revoked_at", "user_id"),
        "username",
    ]
    assert sealed[("device", True)] == sealed[("device", False)] == device
    assert sealed[("session", True)] == ["state"]
    # The very values, as before identity had typed views (chain format 1).
    made, changed = AuditEntry.objects.filter(entity_id=user["id"]).order_by("seq")
    identity = {"id": user["id"], "username": "ravi", "role": "staff", "locations": []}
    assert (made.before, made.after) == (None, identity)
    assert changed.before == {**identity, "is_active": True}
    assert changed.after == {**identity, "role": "manager", "is_active": True}


# -- concurrency -----------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_admins_creating_one_username_at_once_make_one_user() -> None:
    create_user("admin", "admin")
    create_user("admin2", "admin")
    tokens = [login("admin")["access"], login("admin2")["access"]]
    start = threading.Barrier(2)
    statuses: list[int] = []

    def create(token: str) -> None:
        try:
            start.wait()
            reply = Api(Client(), token).post(
                "/api/v1/users", {"username": "same", "password": NEW_PASSWORD, "role": "staff"}
            )
            statuses.append(reply.status)
        finally:
            connection.close()

    threads = [threading.Thread(target=create, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201, 409]
    assert User.objects.filter(username="same").count() == 1


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/users", '{"username": "x", "password": "long \\ud800 secret", "role": "staff"}'),
        ("/api/v1/auth/signup", '{"username": "x", "password": "long \\udfff secret"}'),
        (
            "/api/v1/auth/password",
            '{"old_password": "correct horse battery", "new_password": "long \\ud83d secret"}',
        ),
    ],
)
def test_a_lone_surrogate_in_a_password_is_400(
    admin: Api, settings: Any, path: str, body: str
) -> None:
    settings.SIGNUP = True
    entries = audit_count()

    reply = admin.post(path, raw=body)

    assert (reply.status, reply.body["code"]) == (400, "invalid")
    assert audit_count() == entries
