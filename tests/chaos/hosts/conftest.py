"""Fixtures of the several-hosts scenarios: the run's network and servers (once per session), and clusters on
them (a database and a queue of their own each).

They run on PostgreSQL only (`cluster.SQLITE_REASON`). Where network namespaces cannot be made (not root, no
`ip` or `nft`) or the servers cannot be started, they are skipped - and fail under CI=true (`tests.conftest.missing`).
Each session first removes what crashed earlier runs left (`netns.sweep`, `servers.sweep`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from jobctl.scheduler.migrate import upgrade
from jobctl.scheduler.settings import Settings
from tests.chaos import ledger
from tests.chaos.conftest import PLUGINS
from tests.chaos.hosts import netns, servers
from tests.chaos.hosts.cluster import SQLITE_REASON, Cluster
from tests.conftest import missing


@pytest.fixture(scope="session")
def hosts_network(backend: str) -> Iterator[tuple[netns.Network, servers.Servers]]:
    """The run's bridge and its servers (PostgreSQL, Redis on the bridge's address)."""
    if backend != "postgresql":
        pytest.skip(SQLITE_REASON)
    reason = netns.unavailable() or servers.unavailable()
    if reason:
        missing(f"several hosts on one machine ({reason})")
    netns.sweep()
    servers.sweep()
    network = netns.Network()
    try:
        running = servers.Servers(network.address, str(network.subnet)).start()
        try:
            yield network, running
        finally:
            running.stop()
    finally:
        network.close()


@pytest.fixture
def cluster(
    hosts_network: tuple[netns.Network, servers.Servers], settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., Cluster]]:
    """A factory of clusters on the run's servers, each with a fresh database (with the chaos side tables) and
    queue, JSON logs (the self-fences are read from them). Nothing is started; the test adds hosts and workers."""
    network, running = hosts_network
    made: list[tuple[Cluster, str]] = []

    def make(**overrides: object) -> Cluster:
        name = f"jobctl_hosts_{uuid.uuid4().hex[:8]}"
        url = running.create_database(name)
        upgrade(url)
        ledger.install(url)
        tuned = settings.model_copy(
            update={
                "database_url": url,
                "redis_url": running.redis_url(),
                "queue": f"q{uuid.uuid4().hex[:8]}",
                "plugins": PLUGINS,
                "log_format": "json",
                **overrides,
            }
        )
        logs = tmp_path / f"logs-{len(made)}"
        logs.mkdir()
        live = Cluster(tuned, logs, network, running)
        made.append((live, name))
        return live

    yield make
    for live, name in made:
        live.kill_all()
        live.stop()
        admin = sa.create_engine(running.database_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()
    for host in list(network.hosts):
        host.remove()
