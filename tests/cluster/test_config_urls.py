"""Database URLs naming several hosts, as libpq takes them (pure)."""

from __future__ import annotations

import pytest

from quartermaster.config import ConfigError, parse_database_url


def test_several_hosts_become_libpq_lists() -> None:
    url = parse_database_url(
        "postgresql://qm:p%40ss@10.0.0.1:5433,10.0.0.2:5434/shop?target_session_attrs=read-write"
    )

    assert (url.host, url.port, url.name) == ("10.0.0.1,10.0.0.2", "5433,5434", "shop")
    assert (url.user, url.password) == ("qm", "p@ss")
    assert url.options == {"target_session_attrs": "read-write"}


def test_a_host_of_a_list_without_a_port_gets_the_default_one() -> None:
    url = parse_database_url("postgresql://a,b:6000/db")

    assert (url.host, url.port) == ("a,b", "5432,6000")


def test_one_host_is_as_before() -> None:
    url = parse_database_url("postgresql://qm@127.0.0.1:54329/quartermaster")

    assert (url.host, url.port, url.user, url.password) == ("127.0.0.1", "54329", "qm", "")


@pytest.mark.parametrize("url", ["postgresql://a:99999/db", "postgresql://a:1,:2/db"])
def test_unusable_host_lists_are_refused(url: str) -> None:
    with pytest.raises(ConfigError):
        parse_database_url(url)
