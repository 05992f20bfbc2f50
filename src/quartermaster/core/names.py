"""Names people type: one spelling stored, one key compared.

A name is stored NFC-normalised (a Tamil or accented name typed on two keyboards is one string)
and stripped, and may hold no invisible character (control, zero-width, bidi and other format
characters, unassigned code points), which would make two equal-looking names differ. Two names
are the same name when their keys are equal: NFKC (a full-width R, U+FF32, is R) and case-folded,
so `Regulator`, `regulator` and a full-width-R `Regulator` are one name, shown as first spelt.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from quartermaster.core.errors import Invalid

# Control, format (zero-width space and joiners, bidi marks), surrogate, private-use, unassigned.
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def clean_name(value: Any, *, field: str = "name", max_length: int = 200) -> str:
    """`value` as a name to store, or Invalid naming `field`."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid.field(field, "must be a non-blank string")
    name = unicodedata.normalize("NFC", value.strip())
    if len(name) > max_length:
        raise Invalid.field(field, f"at most {max_length} characters")
    if any(unicodedata.category(char) in INVISIBLE_CATEGORIES for char in name):
        raise Invalid.field(field, "must not contain control or zero-width characters")
    return name


def name_key(name: str) -> str:
    """What two names must share to be one name (NFKC case-folded)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
