"""Live systems: the session's shared one (scheduler + 2-process worker) and dedicated ones on demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from scheduler.migrate import upgrade
from scheduler.settings import Settings
from tests.conftest import PG_ADMIN_URL
from tests.integration.system import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def system(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The shared live system of this backend: one scheduler, one worker with 2 processes."""
    live = System(settings, tmp_path_factory.mktemp("logs"))
    try:
        live.start_scheduler()
        live.start_worker(concurrency=2)
        yield live
    finally:
        live.stop()


@pytest.fixture
def project(system: System) -> Iterator[str]:
    """A fresh project on the shared system; its unfinished jobs are discarded afterwards."""
    name = system.project()
    yield name
    system.settle(name)


@pytest.fixture
def dedicated(
    settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[..., System]]:
    """A factory of systems with their own database and queue (nothing shared with the session's system)."""
    made: list[tuple[System, Callable[[], None]]] = []

    def make(**overrides: object) -> System:
        url, drop = _fresh_database(backend, tmp_path_factory)
        tuned = settings.model_copy(update={"database_url": url, "queue": f"q{uuid.uuid4().hex[:8]}", **overrides})
        live = System(tuned, tmp_path_factory.mktemp("logs"))
        made.append((live, drop))
        return live

    yield make
    for live, drop in made:
        live.stop()
        drop()


def _fresh_database(backend: str, factory: pytest.TempPathFactory) -> tuple[str, Callable[[], None]]:
    if backend == "sqlite":
        url = f"sqlite:///{factory.mktemp('db') / 'jobctl.db'}"
        upgrade(url)
        return url, lambda: None
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jobctl_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop


@pytest.fixture(scope="session")
def api_url(system: System) -> str:
    """A real API server (uvicorn subprocess) in front of the shared system."""
    import socket

    import httpx

    from tests.integration.system import Process, wait_until

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Process("api", ["api", "--port", str(port)], system.settings, system.log_dir)
    system.processes.append(server)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(healthy, 30, "the API server to answer")
    return url
