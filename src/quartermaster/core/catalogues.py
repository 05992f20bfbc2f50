"""Compiling the message catalogues (`core/locale/<lang>/LC_MESSAGES/django.po` → `.mo`).

Compiled at install by scripts/bootstrap.sh (`python -m quartermaster.core.catalogues`), with
Babel, a pinned Python dependency, rather than GNU gettext's msgfmt (what Django's
`compilemessages` runs): installing needs no system package and no root, and it runs the same on
a developer's machine and in CI. The `.mo` files are built, never committed (.gitignore): the
`.po` is the one source, and tests/core/test_i18n.py fails when a `.mo` is missing or older than
its `.po`.

Before writing, every entry is checked: a translation must use exactly its message's
placeholders (`%(limit)s`), or saying it would fail at the edge; a fuzzy or untranslated entry
is refused too, so a half-done translation never ships silently.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from quartermaster.core.i18n import DOMAIN, LOCALE_DIR

_PLACEHOLDER = re.compile(r"%\((\w+)\)[a-z]|%[a-z]")


@dataclass(frozen=True)
class Problem:
    po: Path
    msgid: str
    why: str

    def __str__(self) -> str:
        return f"{self.po}: {self.msgid!r}: {self.why}"


def po_files(locale_dir: Path = LOCALE_DIR) -> list[Path]:
    return sorted(locale_dir.glob(f"*/LC_MESSAGES/{DOMAIN}.po"))


def read_catalogue(po: Path) -> Catalog:
    with po.open("rb") as handle:
        return read_po(handle, locale=po.parent.parent.name, abort_invalid=True)


def problems_of(po: Path, catalog: Catalog) -> list[Problem]:
    problems = []
    if "POT-Creation-Date" not in po.read_text(encoding="utf-8"):
        problems.append(
            Problem(po, "", "the header needs a POT-Creation-Date (Babel dates it now)")
        )
    for message in catalog:
        if not message.id:
            continue  # the header
        msgid = str(message.id)
        translated = message.string if isinstance(message.string, str) else ""
        if message.fuzzy:
            problems.append(Problem(po, msgid, "marked fuzzy"))
        elif not translated:
            problems.append(Problem(po, msgid, "not translated"))
        elif sorted(_PLACEHOLDER.findall(msgid)) != sorted(_PLACEHOLDER.findall(translated)):
            problems.append(Problem(po, msgid, "placeholders differ from the message's"))
    return problems


def compiled(catalog: Catalog) -> bytes:
    """The `.mo` bytes: the same for the same `.po` (its header must date itself: Babel fills
    a missing POT-Creation-Date with the current minute)."""
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    return buffer.getvalue()


def compile_all(locale_dir: Path = LOCALE_DIR, *, check_only: bool = False) -> list[Problem]:
    """Compile every catalogue under `locale_dir` whose `.mo` differs from its `.po` (all or
    none: nothing is written while any has a problem). `check_only`: write nothing; a missing
    or stale `.mo` is a problem."""
    problems: list[Problem] = []
    pending: list[tuple[Path, bytes]] = []
    for po in po_files(locale_dir):
        catalog = read_catalogue(po)
        problems += problems_of(po, catalog)
        mo = po.with_suffix(".mo")
        wanted = compiled(catalog)
        if mo.exists() and mo.read_bytes() == wanted:
            continue
        if check_only:
            why = "stale" if mo.exists() else "missing"
            problems.append(Problem(mo, "", f"{why}: run scripts/bootstrap.sh (or make messages)"))
        pending.append((mo, wanted))
    if problems or check_only:
        return problems
    for mo, wanted in pending:
        mo.write_bytes(wanted)
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; fail when stale")
    args = parser.parse_args(argv)
    problems = compile_all(check_only=args.check)
    for problem in problems:
        sys.stderr.write(f"catalogues: {problem}\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
