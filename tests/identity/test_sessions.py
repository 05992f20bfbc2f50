"""Login, refresh rotation with reuse detection, logout, me (API.md "Health and auth")."""

from __future__ import annotations

from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.hashers import identify_hasher
from django.utils import timezone

from quartermaster.identity.models import RefreshToken, User
from tests.conftest import PASSWORD, Api, create_user, login

pytestmark = pytest.mark.django_db


def test_login_returns_a_bearer_pair(anon: Api) -> None:
    create_user("driver", "staff")

    reply = anon.post("/api/v1/auth/login", {"username": "driver", "password": PASSWORD})

    assert reply.status == 200
    assert set(reply.body) == {"access", "refresh", "token_type", "expires_in"}
    assert reply.body["token_type"] == "Bearer"
    assert reply.body["expires_in"] == 900


def test_access_token_lives_15_minutes_and_refresh_7_days() -> None:
    create_user("driver", "staff")
    pair = login("driver")

    access = jwt.decode(pair["access"], options={"verify_signature": False})
    refresh = jwt.decode(pair["refresh"], options={"verify_signature": False})

    assert access["exp"] - access["iat"] == 15 * 60
    assert refresh["exp"] - refresh["iat"] == 7 * 24 * 3600


@pytest.mark.parametrize(
    "body",
    [
        {"username": "driver", "password": "wrong password"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_bad_credentials_are_401(anon: Api, body: dict) -> None:
    create_user("driver", "staff")

    reply = anon.post("/api/v1/auth/login", body)

    assert reply.status == 401
    assert reply.body["code"] == "not_authenticated"


def test_login_with_a_malformed_body_is_400(anon: Api) -> None:
    assert anon.post("/api/v1/auth/login", {"username": "x"}).status == 400


def test_passwords_are_stored_with_argon2() -> None:
    create_user("driver", "staff")

    stored = User.objects.get(username="driver").password

    assert identify_hasher(stored).algorithm == "argon2"
    assert PASSWORD not in stored


def test_me_describes_the_caller(anon: Api, default_location_id: str) -> None:
    created = create_user("driver", "staff", locations=(default_location_id,))
    api = Api(anon.client, login("driver")["access"])

    reply = api.get("/api/v1/auth/me")

    assert reply.status == 200
    assert reply.body == {
        "id": created["id"],
        "username": "driver",
        "role": "staff",
        "locations": [default_location_id],
    }


def test_refresh_rotates_and_a_spent_token_revokes_the_family(anon: Api) -> None:
    create_user("driver", "staff")
    first = login("driver")

    second = anon.post("/api/v1/auth/refresh", {"refresh": first["refresh"]})
    reused = anon.post("/api/v1/auth/refresh", {"refresh": first["refresh"]})
    after_theft = anon.post("/api/v1/auth/refresh", {"refresh": second.body["refresh"]})

    assert second.status == 200
    assert second.body["refresh"] != first["refresh"]
    assert reused.status == 401
    assert after_theft.status == 401
    # The family is revoked: its access tokens, the newest included, stop working at once.
    assert Api(anon.client, second.body["access"]).get("/api/v1/auth/me").status == 401
    assert Api(anon.client, first["access"]).get("/api/v1/auth/me").status == 401


def test_refresh_families_are_independent(anon: Api) -> None:
    create_user("driver", "staff")
    phone, tablet = login("driver"), login("driver")
    anon.post("/api/v1/auth/refresh", {"refresh": phone["refresh"]})

    anon.post("/api/v1/auth/refresh", {"refresh": phone["refresh"]})  # reuse on the phone

    assert anon.post("/api/v1/auth/refresh", {"refresh": tablet["refresh"]}).status == 200


def test_an_access_token_is_not_a_refresh_token(anon: Api) -> None:
    create_user("driver", "staff")
    pair = login("driver")

    assert anon.post("/api/v1/auth/refresh", {"refresh": pair["access"]}).status == 401
    assert Api(anon.client, pair["refresh"]).get("/api/v1/auth/me").status == 401


def test_logout_revokes_the_refresh_token(anon: Api) -> None:
    create_user("driver", "staff")
    pair = login("driver")
    api = Api(anon.client, pair["access"])

    assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status == 204
    assert anon.post("/api/v1/auth/refresh", {"refresh": pair["refresh"]}).status == 401
    assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status == 204


def _forged(claims_change: dict, key: str | None = None, algorithm: str = "HS256") -> str:
    create_user("driver", "staff")
    good = jwt.decode(login("driver")["access"], options={"verify_signature": False})
    signing_key = None if algorithm == "none" else (key or settings.JWT_KEY)
    return jwt.encode({**good, **claims_change}, signing_key, algorithm=algorithm)


@pytest.mark.parametrize(
    "token_factory",
    [
        pytest.param(lambda: None, id="missing"),
        pytest.param(lambda: "not-a-jwt", id="garbage"),
        pytest.param(
            lambda: _forged({"exp": int((timezone.now() - timedelta(seconds=1)).timestamp())}),
            id="expired",
        ),
        pytest.param(
            lambda: _forged({}, key="another-key-of-sufficient-length-123456"), id="wrong-key"
        ),
        pytest.param(lambda: _forged({}, algorithm="none"), id="alg-none"),
        pytest.param(lambda: _forged({"typ": "refresh"}), id="wrong-type"),
    ],
)
def test_bad_access_tokens_are_401_json(anon: Api, token_factory) -> None:  # type: ignore[no-untyped-def]
    token = token_factory()
    headers = {"Authorization": f"Bearer {token}"} if token else {}

    reply = anon.get("/api/v1/auth/me", headers=headers)

    assert reply.status == 401
    assert reply.body["code"] == "not_authenticated"


def test_tampered_token_is_401(anon: Api) -> None:
    create_user("driver", "staff")
    token = login("driver")["access"]
    header, payload, signature = token.split(".")
    tampered = f"{header}.{payload[:-2]}xx.{signature}"

    assert Api(anon.client, tampered).get("/api/v1/auth/me").status == 401


def test_a_deactivated_user_is_locked_out_at_once(anon: Api) -> None:
    create_user("driver", "staff")
    api = Api(anon.client, login("driver")["access"])
    User.objects.filter(username="driver").update(is_active=False)

    assert api.get("/api/v1/auth/me").status == 401


def test_logins_are_audited_without_secrets(admin: Api) -> None:
    entries = admin.get("/api/v1/audit?entity_type=session&actor=admin").body["results"]

    assert [e["action"] for e in entries] == ["session.start"]
    assert PASSWORD not in str(entries)


def test_logout_ends_the_sessions_access_tokens_at_once(anon: Api) -> None:
    create_user("driver", "staff")
    pair, other = login("driver"), login("driver")
    api = Api(anon.client, pair["access"])
    assert api.get("/api/v1/auth/me").status == 200

    assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status == 204

    reply = api.get("/api/v1/auth/me")
    assert (reply.status, reply.body["code"]) == (401, "not_authenticated")
    assert api.get("/api/v1/items").status == 401
    # Logging out again with the token the session just lost is still 204; another session of
    # the same user goes on.
    assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status == 204
    assert Api(anon.client, other["access"]).get("/api/v1/auth/me").status == 200


def test_a_session_ended_by_another_process_is_refused_at_the_next_request(anon: Api) -> None:
    create_user("driver", "staff")
    pair = login("driver")
    api = Api(anon.client, pair["access"])
    assert api.get("/api/v1/auth/me").status == 200

    # What another server process's logout commits: nothing of it is cached here.
    RefreshToken.objects.filter(user__username="driver").update(revoked_at=timezone.now())

    assert api.get("/api/v1/auth/me").status == 401


def test_an_access_token_that_names_no_session_is_401(anon: Api) -> None:
    create_user("driver", "staff")
    claims = jwt.decode(login("driver")["access"], options={"verify_signature": False})
    del claims["fam"]
    sessionless = jwt.encode(claims, settings.JWT_KEY, algorithm="HS256")

    assert Api(anon.client, sessionless).get("/api/v1/auth/me").status == 401
