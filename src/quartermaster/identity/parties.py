"""The party records a party user signs in as (a customer, a farmer), as identity sees them.

Those records belong to domains above identity (sales, market), which identity may not import.
Each registers its kind here when the app is ready: how to read which of its records a user is
linked to, and the command that links one (its own update command, so the link is checked,
versioned and sealed on the party's record exactly as when that domain's API makes it). A user
command that links a party runs that command inside its own transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

PartyLinks = tuple[tuple[str, UUID], ...]


@dataclass(frozen=True)
class PartyKind:
    """`name`: the wire name ("customer"); `link(party_id, user_id)`: the command that links
    them; `linked(user_ids)`: user id → the id of the record of this kind it signs in as."""

    name: str
    link: Callable[[UUID, UUID], Any]
    linked: Callable[[Iterable[UUID]], dict[UUID, UUID]]


_kinds: dict[str, PartyKind] = {}


def register(kind: PartyKind) -> None:
    _kinds[kind.name] = kind


def kind_names() -> tuple[str, ...]:
    """Every kind registered, in a stable order (the users API shows one field per kind)."""
    return tuple(sorted(_kinds))


def kind(name: str) -> PartyKind | None:
    return _kinds.get(name)


def links_of_many(user_ids: Iterable[UUID]) -> dict[UUID, PartyLinks]:
    """Each user's party links, one query per kind however many users."""
    ids = list(user_ids)
    found: dict[UUID, list[tuple[str, UUID]]] = {user_id: [] for user_id in ids}
    for name in kind_names():
        for user_id, party_id in _kinds[name].linked(ids).items():
            found[user_id].append((name, party_id))
    return {user_id: tuple(links) for user_id, links in found.items()}


def links_of(user_id: UUID) -> PartyLinks:
    return links_of_many([user_id])[user_id]
