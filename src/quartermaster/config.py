"""Reading configuration from the environment, with safe embedded defaults.

Kept free of Django imports so the CLI can validate configuration before Django starts.
"""

from __future__ import annotations

import math
import os
import re
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
    """`sqlite:///relative.db`, `sqlite:////abs/path.db` or `postgresql://user:pw@host:port/name`.

    A PostgreSQL URL may list several hosts, as libpq does
    (`postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write`): `host` and `port` then hold
    comma-separated lists of the same length, which psycopg passes to libpq unchanged, so a
    process connects to whichever of them is the primary.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path[1:] if parsed.path.startswith("/") else parsed.path)
        if not path:
            raise ConfigError("QM_DATABASE_URL: a sqlite URL needs a file path")
        return DatabaseUrl(engine="sqlite", name=str(Path(path).resolve()))
    if parsed.scheme in {"postgres", "postgresql"}:
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        userinfo, _, hostlist = parsed.netloc.rpartition("@")
        user, _, password = userinfo.partition(":")
        hosts, ports = _hosts_and_ports(hostlist)
        return DatabaseUrl(
            engine="postgresql",
            name=unquote(parsed.path.lstrip("/")),
            host=",".join(hosts),
            port=",".join(ports),
            user=unquote(user),
            password=unquote(password),
            options=options,
        )
    raise ConfigError(f"QM_DATABASE_URL: unsupported scheme {parsed.scheme!r}")


def _hosts_and_ports(hostlist: str) -> tuple[list[str], list[str]]:
    """`h1:p1,[::1]:p2,h3` → (["h1", "::1", "h3"], ["p1", "p2", "5432"]); one host without a
    port → ([host], [""]) (libpq's default). libpq wants one port or one per host."""
    hosts: list[str] = []
    ports: list[str] = []
    for entry in hostlist.split(","):
        match = re.fullmatch(r"(\[[^\]]*\]|[^:\[\]]*)(?::(\d*))?", entry.strip())
        if match is None:
            raise ConfigError(f"QM_DATABASE_URL: unreadable host {entry!r}")
        host, port = match.group(1).strip("[]"), match.group(2) or ""
        if port and not 0 < int(port) < 65536:
            raise ConfigError(f"QM_DATABASE_URL: port out of range in {entry!r}")
        hosts.append(unquote(host))
        ports.append(port)
    if len(hosts) > 1:
        ports = [port or "5432" for port in ports]
    if len(hosts) > 1 and not all(hosts):
        raise ConfigError("QM_DATABASE_URL: every host of a list needs a name")
    return hosts, ports


def database_hosts(url: DatabaseUrl) -> list[tuple[str, str]]:
    """The (host, port) pairs a PostgreSQL URL names, in order."""
    return list(zip(url.host.split(","), url.port.split(","), strict=False))


def check_bind_is_safe(host: str, debug: bool) -> None:
    """DEBUG pages leak settings and SQL; they must never face a network."""
    if debug and host not in LOOPBACK_HOSTS:
        raise ConfigError(
            f"refusing to serve with QM_DEBUG on {host}: DEBUG is allowed on loopback only"
        )
