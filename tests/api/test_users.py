"""Users and roles over HTTP (docs/contract.md §3): create with a token shown once, list, grant, revoke; `/me`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from jobctl.scheduler.store import accounts
from jobctl.workers.services import Services


def test_create_user_answers_its_token_once_and_stores_only_its_hash(
    client: TestClient, services: Services, project: str, unique: Callable[[str], str]
) -> None:
    name = unique("alice")
    created = client.post("/api/v1/users", json={"name": name, "roles": {project: "operator"}})
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"name", "admin", "disabled", "roles", "token"}
    assert body["name"] == name and body["admin"] is False and body["roles"] == {project: "operator"}
    token = body["token"]
    assert len(token) >= 43  # secrets.token_urlsafe(32)

    with services.db.read() as s:
        assert accounts.user_by_token_hash(s, token) is None
        stored = accounts.user_by_token_hash(s, hashlib.sha256(token.encode()).hexdigest())
        assert stored is not None and stored.name == name

    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).json() == {
        "name": name,
        "admin": False,
        "roles": {project: "operator"},
    }
    listed = client.get("/api/v1/users").json()
    mine = [u for u in listed if u["name"] == name]
    assert mine == [{"name": name, "admin": False, "disabled": False, "roles": {project: "operator"}}]  # no token
    assert token not in client.get("/api/v1/users").text
    assert [u["name"] for u in listed] == sorted(u["name"] for u in listed)


def test_a_created_admin_sees_everything(client: TestClient, user: Callable[..., dict[str, str]], project: str) -> None:
    headers = user(admin=True)
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["admin"] is True and me["roles"] == {}
    assert project in [p["name"] for p in client.get("/api/v1/projects", headers=headers).json()]
    assert client.get("/api/v1/users", headers=headers).status_code == 200


def test_duplicate_user_is_409(client: TestClient, unique: Callable[[str], str]) -> None:
    name = unique("bob")
    assert client.post("/api/v1/users", json={"name": name}).status_code == 201
    again = client.post("/api/v1/users", json={"name": name, "admin": True})
    assert again.status_code == 409
    assert again.json() == {"error": {"code": "conflict", "message": f"user {name!r} already exists"}}
    assert client.post("/api/v1/users", json={"name": "admin"}).status_code == 409


def test_unknown_project_in_roles_is_422_and_creates_nothing(
    client: TestClient, project: str, unique: Callable[[str], str]
) -> None:
    name, missing = unique("carol"), unique("nope")
    response = client.post("/api/v1/users", json={"name": name, "roles": {project: "viewer", missing: "operator"}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and missing in error["message"] and "project" in error["message"]
    assert name not in [u["name"] for u in client.get("/api/v1/users").json()]
    assert client.post("/api/v1/users", json={"name": name}).status_code == 201  # the name is still free


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "has space"},
        {"name": "x" * 65},
        {"name": "ok", "roles": {"p": "admin"}},
        {"name": "ok", "roles": ["p"]},
        {"name": "ok", "token": "chosen-by-me"},
        {"name": "ok", "admin": "maybe"},
    ],
)
def test_invalid_user_is_422(client: TestClient, body: dict[str, object]) -> None:
    response = client.post("/api/v1/users", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"


def test_grant_change_and_revoke_roles(
    client: TestClient, new_project: Callable[[], str], unique: Callable[[str], str]
) -> None:
    first, second = new_project(), new_project()
    name = unique("dave")
    token = client.post("/api/v1/users", json={"name": name, "roles": {first: "viewer"}}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    url = f"/api/v1/users/{name}/roles"

    granted = client.put(url, json={second: "operator"})
    assert granted.status_code == 200
    assert granted.json() == {
        "name": name,
        "admin": False,
        "disabled": False,
        "roles": {first: "viewer", second: "operator"},
    }
    assert [p["name"] for p in client.get("/api/v1/projects", headers=headers).json()] == sorted([first, second])
    submitted = client.post("/api/v1/jobs", headers=headers, json={"project": second, "type": "sleep"})
    assert submitted.status_code == 201  # takes effect on the next request

    changed = client.put(url, json={first: "operator", second: None}).json()
    assert changed["roles"] == {first: "operator"}
    assert client.get("/api/v1/me", headers=headers).json()["roles"] == {first: "operator"}
    assert client.get(f"/api/v1/jobs/{submitted.json()['id']}", headers=headers).status_code == 404

    assert client.put(url, json={second: None}).json()["roles"] == {first: "operator"}  # revoking nothing is fine
    assert client.put(url, json={}).json()["roles"] == {first: "operator"}


def test_role_update_errors(client: TestClient, project: str, unique: Callable[[str], str]) -> None:
    name = unique("erin")
    client.post("/api/v1/users", json={"name": name, "roles": {project: "viewer"}})
    missing = unique("nope")
    unknown_project = client.put(f"/api/v1/users/{name}/roles", json={project: "operator", missing: "viewer"})
    assert unknown_project.status_code == 422 and missing in unknown_project.json()["error"]["message"]
    after = [u for u in client.get("/api/v1/users").json() if u["name"] == name]
    assert after[0]["roles"] == {project: "viewer"}  # nothing changed
    assert client.put(f"/api/v1/users/{name}/roles", json={project: "owner"}).status_code == 422
    assert client.put(f"/api/v1/users/{name}/roles", json=[project]).status_code == 422
    no_user = client.put(f"/api/v1/users/{unique('ghost')}/roles", json={project: "viewer"})
    assert no_user.status_code == 404 and no_user.json()["error"]["code"] == "not_found"


def test_only_admins_manage_users(
    client: TestClient, user: Callable[..., dict[str, str]], project: str, unique: Callable[[str], str]
) -> None:
    operator = user({project: "operator"})
    for method, path, body in [
        ("POST", "/api/v1/users", {"name": unique("x")}),
        ("GET", "/api/v1/users", None),
        ("PUT", "/api/v1/users/admin/roles", {project: "operator"}),
    ]:
        response = client.request(method, path, headers=operator, json=body)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    assert client.get("/api/v1/me", headers=operator).json()["roles"] == {project: "operator"}


def test_projects_and_me_show_only_the_callers_projects(
    client: TestClient, user: Callable[..., dict[str, str]], new_project: Callable[[], str]
) -> None:
    seen, viewed, hidden = new_project(), new_project(), new_project()
    headers = user({seen: "operator", viewed: "viewer"})
    assert [p["name"] for p in client.get("/api/v1/projects", headers=headers).json()] == sorted([seen, viewed])
    assert client.get("/api/v1/me", headers=headers).json()["roles"] == {seen: "operator", viewed: "viewer"}
    assert hidden in [p["name"] for p in client.get("/api/v1/projects").json()]
