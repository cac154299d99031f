"""Request bodies take JSON's types as the OpenAPI document states them: an `integer` is a JSON number without a
fraction (`3.0` included, as JSON Schema has it), never a string, a boolean or `3.5`; a `boolean` is `true` or
`false`, never `0`, `1` or `"true"`. A refused value is a 422 that names the field, and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize(("given", "stored"), [(3.0, 3), (0, 0), (4.0, 4)])
def test_a_whole_number_is_an_integer(client: TestClient, project: str, given: float, stored: int) -> None:
    answer = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "priority": given})
    assert answer.status_code == 201, answer.text
    assert answer.json()["priority"] == stored


@pytest.mark.parametrize("given", [3.5, "3", True, None, 5, -1.0])
def test_anything_else_is_not_a_priority(client: TestClient, project: str, given: Any) -> None:
    before = client.get("/api/v1/jobs", params={"project": project}).json()["total"]
    answer = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "priority": given})
    assert answer.status_code == 422, answer.text
    assert "priority" in str(answer.json()["error"]["details"])
    assert client.get("/api/v1/jobs", params={"project": project}).json()["total"] == before


@pytest.mark.parametrize("given", [0, 1, "true", "false", None])
def test_atomic_is_a_json_boolean(client: TestClient, project: str, given: Any) -> None:
    body = {"action": "pause", "filter": {"project": project}, "atomic": given}
    answer = client.post("/api/v1/jobs/batch", json=body)
    assert answer.status_code == 422 and "atomic" in str(answer.json()["error"]["details"]), answer.text


@pytest.mark.parametrize("given", [0, 1, "yes"])
def test_admin_is_a_json_boolean(client: TestClient, unique: Callable[[str], str], given: Any) -> None:
    name = unique("u")
    answer = client.post("/api/v1/users", json={"name": name, "admin": given})
    assert answer.status_code == 422 and "admin" in str(answer.json()["error"]["details"]), answer.text
    assert all(user["name"] != name for user in client.get("/api/v1/users").json())


@pytest.mark.parametrize(("given", "status"), [(5.0, 201), (5, 201), ("5", 422), (2.5, 422), (True, 422), (0, 422)])
def test_max_running_is_a_whole_number(
    client: TestClient, unique: Callable[[str], str], given: Any, status: int
) -> None:
    answer = client.post("/api/v1/projects", json={"name": unique("p"), "max_running": given})
    assert answer.status_code == status, answer.text
    if status == 201:
        assert answer.json()["max_running"] == 5


def test_the_openapi_document_states_the_bounds(anonymous: TestClient) -> None:
    schemas = anonymous.get("/openapi.json").json()["components"]["schemas"]
    priority = schemas["JobSubmit"]["properties"]["priority"]
    assert (priority["type"], priority["minimum"], priority["maximum"]) == ("integer", 0, 4)
    limit = schemas["ProjectCreate"]["properties"]["max_running"]["anyOf"][0]
    assert (limit["type"], limit["minimum"], limit["maximum"]) == ("integer", 1, 100_000)
    assert schemas["JobBatch"]["properties"]["atomic"]["type"] == "boolean"
