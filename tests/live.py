"""Live systems: the session's one shared system per backend (a scheduler and a 2-process worker, and an API
server when a test asks for `api_url`), and `live_system`, which builds any other.

Registered once, from `tests/conftest.py` (`pytest_plugins`), so every folder that uses `system` - the
integration tests, the `jobctl` command's live tests - shares the same one: a session fixture defined in two
conftests is two systems, and two workers on one queue take each other's messages. A folder that wants a
system of its own (tests/e2e) overrides `system` and `api_url` under its own queue name.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobctl.scheduler.settings import Settings
from tests.conftest import fresh_database
from tests.integration.system import System


@pytest.fixture(scope="session")
def system(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The shared live system of this backend."""
    yield from live_system(settings, backend, tmp_path_factory, "live")


@pytest.fixture(scope="session")
def api_url(system: System) -> str:
    """A real API server (uvicorn subprocess) in front of the shared system."""
    return system.start_api()[1]


def live_system(
    settings: Settings, backend: str, factory: pytest.TempPathFactory, name: str, **overrides: object
) -> Iterator[System]:
    """A live system (one scheduler, one 2-process worker) on a database and queue of its own (`name` names
    the queue: two live systems need two names), so other tests' leftovers never become its backlog;
    `overrides` change its settings."""
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
