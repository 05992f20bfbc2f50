"""What a message carries besides its text (an invoice's PDF), built at send time by the domain
that produced the message: a domain registers a builder per template at start-up
(AppConfig.ready), as domains register outbox deliverers, so notifications import no domain.

Built at send time, not stored: the notification holds only the ids the builder needs, and a
document is rendered from the records as they are (an invoice never changes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from quartermaster.core.commands import Command


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str


class Gone(Exception):
    """The record the attachment is made from no longer exists: sending again will not help."""


# (the message's params, its language) → its attachments.
Builder = Callable[[dict[str, str], str], list[Attachment]]
# What to do once a message of a template was sent (the invoice becomes `emailed`): a builder
# of the command to run, in the outbox's transaction that records the send.
SentHook = Callable[[dict[str, str]], Command | None]

_builders: dict[str, Builder] = {}
_sent_hooks: dict[str, SentHook] = {}


def register(template: str, builder: Builder, *, on_sent: SentHook | None = None) -> None:
    _builders[template] = builder
    if on_sent is not None:
        _sent_hooks[template] = on_sent


def build(template: str, params: dict[str, str], language: str) -> list[Attachment]:
    builder = _builders.get(template)
    return builder(params, language) if builder is not None else []


def sent_hook(template: str) -> SentHook | None:
    return _sent_hooks.get(template)
