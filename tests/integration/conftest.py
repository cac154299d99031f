"""Integration fixtures: a fresh project on the shared live system (`system`, from tests/live.py) and dedicated
systems on demand."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from jobctl.scheduler.settings import Settings
from tests.conftest import fresh_database
from tests.integration.system import System

pytestmark = pytest.mark.integration


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
