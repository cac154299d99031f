"""Projects and targets over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient


def test_create_and_list_projects(client: TestClient, unique: Callable[[str], str]) -> None:
    name = unique("proj")
    created = client.post("/api/v1/projects", json={"name": name, "max_running": 2})
    assert created.status_code == 201
    body = created.json()
    assert body["name"] == name and body["max_running"] == 2
    assert body["created_at"].endswith("Z")
    listed = client.get("/api/v1/projects").json()
    assert body in listed
    assert [p["name"] for p in listed] == sorted(p["name"] for p in listed)


def test_duplicate_project_is_409(client: TestClient, project: str) -> None:
    response = client.post("/api/v1/projects", json={"name": project})
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": f"project {project!r} already exists"}}


@pytest.mark.parametrize(
    "body",
    [
        {"name": "Upper"},
        {"name": "-leading-dash"},
        {"name": ""},
        {"name": "a" * 65},
        {"name": "has space"},
        {"name": "ok", "extra": 1},
        {"name": "ok", "max_running": 0},
        {},
    ],
)
def test_invalid_project_is_422(client: TestClient, body: dict[str, object]) -> None:
    response = client.post("/api/v1/projects", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid" and error["message"] and error["details"]


def test_target_put_versions_only_on_change(client: TestClient, project: str) -> None:
    url = f"/api/v1/projects/{project}/targets/record/table-1"
    first = client.put(url, json={"attributes": {"rows": 1}})
    assert first.status_code == 200
    assert first.json()["version"] == 1 and first.json()["attributes"] == {"rows": 1}
    same = client.put(url, json={"attributes": {"rows": 1}}).json()
    assert same["version"] == 1
    changed = client.put(url, json={"attributes": {"rows": 2}}).json()
    assert changed["version"] == 2 and changed["attributes"] == {"rows": 2}
    bare = client.put(f"/api/v1/projects/{project}/targets/record/table-2")  # no body: empty attributes
    assert bare.status_code == 200 and bare.json()["attributes"] == {}
    listed = client.get(f"/api/v1/projects/{project}/targets").json()
    assert [(t["kind"], t["name"], t["version"]) for t in listed] == [
        ("record", "table-1", 2),
        ("record", "table-2", 1),
    ]


def test_target_change_and_delete_auto_discard_pinned_jobs(client: TestClient, project: str) -> None:
    url = f"/api/v1/projects/{project}/targets/record/src"
    client.put(url, json={"attributes": {"v": 1}})
    target = {"kind": "record", "name": "src"}
    first = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "target": target}).json()
    assert first["target"] == {"kind": "record", "name": "src", "version": "1"}

    client.put(url, json={"attributes": {"v": 2}})
    job = client.get(f"/api/v1/jobs/{first['id']}").json()
    assert job["status"] == "DISCARDED"
    assert "src" in job["discard_reason"] and "changed" in job["discard_reason"]

    second = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "target": target}).json()
    deleted = client.delete(url)
    assert deleted.status_code == 200
    assert deleted.json() == {"project": project, "kind": "record", "name": "src", "discarded": [second["id"]]}
    job = client.get(f"/api/v1/jobs/{second['id']}").json()
    assert job["status"] == "DISCARDED" and "no longer exists" in job["discard_reason"]
    assert client.get(f"/api/v1/projects/{project}/targets").json() == []
    assert client.delete(url).status_code == 404


def test_target_errors(client: TestClient, project: str, unique: Callable[[str], str]) -> None:
    base = f"/api/v1/projects/{project}/targets"
    assert client.put(f"{base}/file/data.txt", json={}).status_code == 422  # files are not registered
    assert client.put(f"{base}/BAD/x", json={}).status_code == 422
    assert client.put(f"{base}/record/x", json={"attributes": {}, "extra": 1}).status_code == 422
    assert client.put(f"{base}/record/x", json={"attributes": [1]}).status_code == 422
    missing = unique("missing")
    for method in ("GET", "PUT", "DELETE"):
        path = f"/api/v1/projects/{missing}/targets" + ("" if method == "GET" else "/record/x")
        response = client.request(method, path)
        assert response.status_code == 404, (method, response.text)
        assert response.json()["error"]["code"] == "not_found"
