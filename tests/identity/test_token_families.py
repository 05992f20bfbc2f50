"""Refresh-token families: reuse revokes the family (and is audited), logout ends it."""

from __future__ import annotations

import pytest
from django.test import Client

from quartermaster.core.models import AuditEntry
from tests.conftest import Api, create_user, login

pytestmark = pytest.mark.django_db


def refresh(token: str) -> Api:
    return Api(Client()).post("/api/v1/auth/refresh", {"refresh": token})


def test_refresh_rotates_the_pair_and_spends_the_old_token(db: None) -> None:
    create_user("driver", "staff")
    first = login("driver", device_id="truck-07")

    second = refresh(first["refresh"])

    assert second.status == 200
    assert set(second.body) == {"access", "refresh", "token_type", "expires_in"}
    assert second.body["refresh"] != first["refresh"]
    assert Api(Client(), second.body["access"]).get("/api/v1/auth/me").status == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(db: None) -> None:
    create_user("driver", "staff")
    first = login("driver")
    second = refresh(first["refresh"]).body
    third = refresh(second["refresh"]).body

    reuse = refresh(first["refresh"])  # a thief replays the stolen, spent token

    assert reuse.status == 401
    assert reuse.body["code"] == "token_reused"
    # Every token of the family is dead now, including the legitimate newest one...
    assert refresh(third["refresh"]).status == 401
    assert refresh(second["refresh"]).status == 401
    # ...while another session of the same user is untouched.
    other = login("driver")
    assert refresh(other["refresh"]).status == 200
    revocations = AuditEntry.objects.filter(
        entity_type="session", after__state="revoked: refresh token reused"
    )
    assert [(e.action, e.actor) for e in revocations] == [("session.refresh", "driver")]


def test_logout_ends_the_family(db: None) -> None:
    create_user("driver", "staff")
    pair = login("driver")
    api = Api(Client(), pair["access"])

    assert api.post("/api/v1/auth/logout", {"refresh": pair["refresh"]}).status == 204
    assert refresh(pair["refresh"]).status == 401


def test_an_access_token_is_not_a_refresh_token(db: None) -> None:
    create_user("driver", "staff")
    pair = login("driver")

    assert refresh(pair["access"]).status == 401
