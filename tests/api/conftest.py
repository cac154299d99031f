"""API test fixtures: the real services for each backend, an app over them and clients with and without a token.

Jobs submitted here are never run: no worker consumes the test queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from scheduler.settings import Settings
from workers.services import Services, build

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


@pytest.fixture
def project(client: TestClient, unique: Callable[[str], str]) -> str:
    """A fresh project."""
    name = unique("p")
    response = client.post("/api/v1/projects", json={"name": name})
    assert response.status_code == 201, response.text
    return name
