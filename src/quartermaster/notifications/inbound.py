"""Messages people send us (WhatsApp's inbound webhook), handed to whichever domain knows the
sender. Domains above notifications register a handler at start-up (AppConfig.ready): the
market answers its farmers. A message no handler takes gets a log line and nothing else: an
unknown number is never answered."""

from __future__ import annotations

import logging
from collections.abc import Callable

from quartermaster.notifications.invariants import InboundMessage

logger = logging.getLogger(__name__)

# True: the handler took the message (answered it, or chose not to).
InboundHandler = Callable[[InboundMessage], bool]

_handlers: list[InboundHandler] = []


def register(handler: InboundHandler) -> None:
    if handler not in _handlers:
        _handlers.append(handler)


def dispatch(message: InboundMessage) -> bool:
    for handler in _handlers:
        if handler(message):
            return True
    # The number's last digits only: enough to trace, not a list of strangers' numbers.
    logger.info(
        "inbound WhatsApp message %s from an unknown number ending %s: not answered",
        message.id,
        message.sender[-4:],
    )
    return False
