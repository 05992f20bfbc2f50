"""The failover tests' cluster: started once per run (session scope), shared by its tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ha.cluster import Cluster, running_cluster


@pytest.fixture(scope="session")
def ha_cluster() -> Iterator[Cluster]:
    with running_cluster() as cluster:
        yield cluster
