"""Applies the code-level experiments once Django is ready."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.apps import AppConfig
from django.conf import settings


class WhatIfConfig(AppConfig):
    name = "qm_whatif"
    label = "qm_whatif"

    def ready(self) -> None:
        whatif = getattr(settings, "WHATIF", set())
        if "location" in whatif:
            _cache_default_location()
        if "actor" in whatif:
            _one_query_actor()


def _cache_default_location() -> None:
    from quartermaster.inventory import selectors, services

    original = selectors.get_default_location
    cached: dict[str, Any] = {}

    def get_default_location() -> Any:
        if "location" not in cached:
            cached["location"] = original()
        return cached["location"]

    selectors.get_default_location = get_default_location  # type: ignore[assignment]
    services.get_default_location = get_default_location  # type: ignore[assignment]


def _one_query_actor() -> None:
    from quartermaster.core.types import Actor
    from quartermaster.identity import auth
    from quartermaster.identity.models import User

    def load_actor(user_id: UUID, *, device_id: str = "") -> Actor | None:
        rows = list(
            User.objects.filter(pk=user_id, is_active=True).values_list(
                "username", "role", "locations__id"
            )
        )
        if not rows:
            return None
        return Actor(
            user_id=user_id,
            username=rows[0][0],
            role=rows[0][1],
            location_ids=frozenset(r[2] for r in rows if r[2] is not None),
            device_id=device_id,
        )

    auth.load_actor = load_actor  # type: ignore[assignment]
