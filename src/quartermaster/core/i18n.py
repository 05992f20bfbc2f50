"""The languages the server speaks — English and Tamil — and saying a message in the caller's.

Every message is written in English where it is raised, as a plain string (an f-string when it
carries values): English is what logs, audit entries and stored answers (idempotency keys, sync op
ids) hold, and `code` is what programs read. Only the HTTP edge says a message in the language the
request asked for (`Accept-Language`, made active by `core.middleware.RequestMiddleware`), when it
renders an error body, through Django's gettext and the catalogue in `core/locale/<lang>/LC_MESSAGES`.

A catalogue entry is either a whole message ("unknown flower") or a template with named values
("at most %(limit)s characters"). A template is also the pattern that recognises the message it
was filled into, so raise sites stay plain f-strings, a stored English answer replayed later is
said in the replaying caller's language too, and translating a message means editing the
catalogue only. The values of a recognised message are said too, when they are messages
themselves (pydantic's "Value error, <our message>").

The catalogue is compiled to `.mo` at install (`core.catalogues`, run by scripts/bootstrap.sh).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.utils import translation

SOURCE_LANGUAGE = "en"
# (code, name) as Django's LANGUAGES setting wants them; the names are in their own script.
LANGUAGES = (("en", "English"), ("ta", "தமிழ்"))
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "django"
# Longer messages are not matched against templates: bounds the regex work a hostile input costs.
MAX_MATCHED_LENGTH = 2000
# "%(name)s" in a template: values are recognised as text, so every placeholder is one of text.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def active_language() -> str:
    return translation.get_language() or SOURCE_LANGUAGE


def say(message: str) -> str:
    """`message` (English) in the active language: its catalogue entry, or the template it was
    filled into, said with its values; unchanged when the catalogue has neither."""
    language = active_language()
    if language == SOURCE_LANGUAGE or not message or not isinstance(message, str):
        return message
    said = translation.gettext(message)
    if said != message:
        return said
    return _said_from_template(message, language, depth=1)


def _said_from_template(message: str, language: str, *, depth: int) -> str:
    if len(message) > MAX_MATCHED_LENGTH:
        return message
    for template in _templates(language):
        found = template.pattern.fullmatch(message)
        if found is None:
            continue
        values = found.groupdict()
        if depth > 0:
            values = {
                name: _said_value(value, language, depth - 1) for name, value in values.items()
            }
        try:
            return translation.gettext(template.msgid) % values
        except (KeyError, ValueError, TypeError):
            # A translation whose placeholders differ from its template's (core.catalogues
            # refuses to compile one, but a hand-made .mo could): keep the English.
            return message
    return message


def _said_value(value: str, language: str, depth: int) -> str:
    said = translation.gettext(value)
    if said != value:
        return said
    return _said_from_template(value, language, depth=depth)


@dataclass(frozen=True)
class Template:
    msgid: str
    pattern: re.Pattern[str]


def template_pattern(msgid: str) -> re.Pattern[str]:
    """The regex recognising what `msgid` says once filled in: its text literally, each
    placeholder as a non-empty value (the shortest that lets the rest match)."""
    parts: list[str] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(msgid):
        parts.append(re.escape(msgid[position : placeholder.start()].replace("%%", "%")))
        parts.append(f"(?P<{placeholder.group(1)}>.+?)")
        position = placeholder.end()
    parts.append(re.escape(msgid[position:].replace("%%", "%")))
    return re.compile("".join(parts), re.DOTALL)


@functools.lru_cache(maxsize=8)
def _templates(language: str) -> tuple[Template, ...]:
    """The catalogue's templates for `language`, most literal text first, so that "at most
    %(limit)s characters" is tried before "at most %(limit)s"."""
    msgids = [msgid for msgid in catalogue_msgids(language) if _PLACEHOLDER.search(msgid)]
    msgids.sort(key=lambda msgid: (-len(_PLACEHOLDER.sub("", msgid)), msgid))
    return tuple(Template(msgid, template_pattern(msgid)) for msgid in msgids)


def catalogue_msgids(language: str) -> list[str]:
    """The message ids the compiled catalogue of `language` translates (none when it has no
    compiled catalogue)."""
    from babel.messages.mofile import read_mo

    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
    if not path.exists():
        return []
    with path.open("rb") as handle:
        catalog = read_mo(handle)
    return [str(message.id) for message in catalog if message.id and message.string]


def say_error_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """An error body with its `error` and each of its `fields` said in the active language;
    `code` and everything else unchanged. A body in the source language comes back as it is."""
    localized = dict(body)
    if active_language() == SOURCE_LANGUAGE:
        return localized
    fields = body.get("fields")
    said_fields = None
    if isinstance(fields, dict):
        said_fields = {name: say(message) for name, message in fields.items()}
        localized["fields"] = said_fields
    message = body.get("error")
    if isinstance(message, str):
        if said_fields is not None and message == validation_message(fields or {}):
            localized["error"] = validation_message(said_fields, prefix=say(VALIDATION_PREFIX))
        else:
            localized["error"] = say(message)
    return localized


VALIDATION_PREFIX = "invalid request"


def validation_message(fields: Mapping[str, Any], *, prefix: str = VALIDATION_PREFIX) -> str:
    """The message of a request that failed validation: every bad field and why."""
    return f"{prefix}: " + "; ".join(f"{name}: {why}" for name, why in fields.items())
