"""Pure rules for identities: data in, cleaned data out, or `Invalid`."""

from __future__ import annotations

import re

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


def clean_device_id(device_id: str) -> str:
    device_id = device_id.strip()
    if len(device_id) > MAX_DEVICE_ID_LENGTH:
        raise Invalid.field("device_id", f"at most {MAX_DEVICE_ID_LENGTH} characters")
    return device_id
