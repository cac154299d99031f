"""Live systems: the session's shared one (scheduler + 2-process worker) and dedicated ones on demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from jobctl.scheduler.settings import Settings
from tests.conftest import fresh_database
from tests.integration.system import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def system(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The shared live system of this backend's integration tests."""
    yield from live_system(settings, backend, tmp_path_factory, "live")


def live_system(
    settings: Settings, backend: str, factory: pytest.TempPathFactory, name: str, **overrides: object
) -> Iterator[System]:
    """A live system (one scheduler, one 2-process worker) on a database and queue of its own, so other
    tests' leftovers never become its backlog; `overrides` change its settings."""
    url, drop = fresh_database(backend, factory)
    live = System(
        settings.model_copy(update={"database_url": url, "queue": f"{settings.queue}-{name}", **overrides}),
        factory.mktemp(f"logs-{name}"),
    )
    try:
        live.start_scheduler()
        live.start_worker(concurrency=2)
        yield live
    finally:
        live.stop()
        drop()


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

    def make(system_class: type[System] = System, **overrides: object) -> System:
        url, drop = fresh_database(backend, tmp_path_factory)
        tuned = settings.model_copy(update={"database_url": url, "queue": f"q{uuid.uuid4().hex[:8]}", **overrides})
        live = system_class(tuned, tmp_path_factory.mktemp("logs"))
        made.append((live, drop))
        return live

    yield make
    for live, drop in made:
        live.stop()
        drop()


@pytest.fixture(scope="session")
def api_url(system: System) -> str:
    """A real API server (uvicorn subprocess) in front of the shared system."""
    return system.start_api()[1]
