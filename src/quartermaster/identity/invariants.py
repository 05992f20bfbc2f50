"""Pure rules for identities: data in, cleaned data out, or `Invalid`."""

from __future__ import annotations

import re
import unicodedata

from quartermaster.core.errors import Invalid

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@+-]{1,150}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_DEVICE_ID_LENGTH = 200


def clean_username(username: str) -> str:
    username = username.strip()
    if not USERNAME_PATTERN.match(username):
        raise Invalid.field("username", "1 to 150 letters, digits or . @ + - _ characters")
    return username


def clean_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise Invalid.field(
            "password", f"must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return password


# Control, format (zero-width joiners, bidi marks), surrogate, private-use and unassigned
# characters: invisible or unstable, they would make two ids that look alike different devices.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def clean_device_id(device_id: str) -> str:
    """The device id as it will be stored and shown: NFKC-normalised (the full-width letters
    some phone keyboards type become ASCII) and stripped; no invisible characters."""
    device_id = unicodedata.normalize("NFKC", device_id).strip()
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise Invalid.field("device_id", f"at most {MAX_DEVICE_ID_LENGTH} characters")
    if any(unicodedata.category(char) in _REFUSED_CATEGORIES for char in device_id):
        raise Invalid.field("device_id", "must not contain control or zero-width characters")
    return device_id


def device_key(device_id: str) -> str:
    """What makes two device ids the same device: `Truck-07`, `TRUCK-07` and its full-width form are
    one. Unique among devices, so a revoked id cannot come back in another case."""
    return unicodedata.normalize("NFKC", clean_device_id(device_id).casefold())
