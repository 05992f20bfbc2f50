"""Reading configuration from the environment, with safe embedded defaults.

Kept free of Django imports so the CLI can validate configuration before Django starts.
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


class ConfigError(Exception):
    """The environment asks for something unsafe or unparseable."""


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from exc


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(number) or number < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
    return number


def env_money(name: str, default: str) -> int:
    """An amount in minor units from a decimal string such as "1000.00"."""
    from quartermaster.core.money import parse_money  # pure; imports no Django

    value = os.environ.get(name) or default
    try:
        return parse_money(value)
    except ValueError as exc:
        raise ConfigError(f'{name} must be an amount such as "1000.00", got {value!r}') from exc


def data_dir() -> Path:
    """Where the embedded database and generated keys live (QM_DATA_DIR, default ./var)."""
    return Path(os.environ.get("QM_DATA_DIR") or Path.cwd() / "var").resolve()


def persistent_secret(env_name: str, file_name: str) -> str:
    """A secret from the environment, or one generated once and kept beside the embedded database.

    The embedded default must survive restarts (tokens and the audit chain depend on it) without
    asking a first-time user to invent keys; production sets the environment variables.
    """
    value = os.environ.get(env_name)
    if value:
        return value
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / file_name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    generated = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


@dataclass(frozen=True)
class DatabaseUrl:
    engine: str
    name: str
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = ""
    options: dict[str, str] | None = None


def parse_database_url(url: str) -> DatabaseUrl:
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or `postgresql://user:pw@host:port/name`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        if not path:
            raise ConfigError("QM_DATABASE_URL: a sqlite URL needs a file path")
        return DatabaseUrl(engine="sqlite", name=str(Path(path).resolve()))
    if parsed.scheme in {"postgres", "postgresql"}:
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        return DatabaseUrl(
            engine="postgresql",
            name=unquote(parsed.path.lstrip("/")),
            host=parsed.hostname or "",
            port=str(parsed.port or ""),
            user=unquote(parsed.username or ""),
            password=unquote(parsed.password or ""),
            options=options,
        )
    raise ConfigError(f"QM_DATABASE_URL: unsupported scheme {parsed.scheme!r}")


def check_bind_is_safe(host: str, debug: bool) -> None:
    """DEBUG pages leak settings and SQL; they must never face a network."""
    if debug and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"refusing to serve with QM_DEBUG on {host}: DEBUG is allowed on loopback only"
        )
