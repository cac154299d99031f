"""API test fixtures: the real services for each backend, an app over them and clients with and without a token.

Jobs submitted here are never run: no worker consumes the test queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator

import pytest
from fastapi.testclient import TestClient

from jobctl.api.app import create_app
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts, transitions
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.states import NON_FINAL, Action
from jobctl.wiring import build
from jobctl.workers.services import Services

ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture(scope="module")
def services(settings: Settings) -> Iterator[Services]:
    built = build(settings)
    yield built
    built.close()


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    """A client that sends the admin's token on every request."""
    with TestClient(create_app(services), headers=ADMIN) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def anonymous(services: Services) -> Iterator[TestClient]:
    """A client that sends no token."""
    with TestClient(create_app(services)) as test_client:
        yield test_client


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test (or test module sharing the database) uses."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:10]}"


def discard_unfinished(services: Services, projects: Iterable[str]) -> None:
    """Discard every non-final job of these projects, straight through the store (no worker runs here), so that
    nothing this module left behind is picked up by a scheduler that later shares the database."""
    with services.db.write() as s:
        ids = [p.id for p in accounts.list_projects(s, list(projects))]
        if not ids:
            return
        query = jobs_store.JobQuery(project_ids=ids, statuses=tuple(NON_FINAL))
        for job_id in jobs_store.matching_job_ids(s, query, limit=1_000_000):
            transitions.transition(s, job_id, Action.DISCARD, "test-teardown")


@pytest.fixture
def new_project(client: TestClient, services: Services, unique: Callable[[str], str]) -> Iterator[Callable[[], str]]:
    """A factory of fresh projects; their unfinished jobs are discarded after the test."""
    made: list[str] = []

    def make() -> str:
        name = unique("p")
        response = client.post("/api/v1/projects", json={"name": name})
        assert response.status_code == 201, response.text
        made.append(name)
        return name

    yield make
    discard_unfinished(services, made)


@pytest.fixture
def project(new_project: Callable[[], str]) -> str:
    """A fresh project."""
    return new_project()


@pytest.fixture
def user(client: TestClient, unique: Callable[[str], str]) -> Callable[..., dict[str, str]]:
    """A factory of users created through the API: `user({project: role}, admin=False)` -> their auth headers."""

    def make(roles: dict[str, str] | None = None, *, admin: bool = False) -> dict[str, str]:
        body = {"name": unique("u"), "admin": admin, "roles": roles or {}}
        response = client.post("/api/v1/users", json=body)
        assert response.status_code == 201, response.text
        return {"Authorization": f"Bearer {response.json()['token']}"}

    return make
