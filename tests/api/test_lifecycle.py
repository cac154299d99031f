"""The account lifecycle over HTTP (docs/contract.md §9): disable, enable, promote and delete users, never leaving
no enabled administrator; change and delete projects; and a changed `JOBCTL_ADMIN_TOKEN` rotating the admin's
token. Every change takes effect on the next request."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from jobctl.api.app import bootstrap_admin, create_app
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.conftest import fresh_database


def _new_user(client: TestClient, unique: Callable[[str], str], **body: object) -> tuple[str, dict[str, str]]:
    name = unique("l")
    created = client.post("/api/v1/users", json={"name": name, **body})
    assert created.status_code == 201, created.text
    return name, {"Authorization": f"Bearer {created.json()['token']}"}


def test_a_disabled_users_every_token_is_refused_until_enabled(
    client: TestClient, project: str, unique: Callable[[str], str]
) -> None:
    name, first = _new_user(client, unique, roles={project: "operator"})
    second = {
        "Authorization": f"Bearer {client.post(f'/api/v1/users/{name}/tokens', json={'name': 'b'}).json()['token']}"
    }
    disabled = client.patch(f"/api/v1/users/{name}", json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    assert disabled.json() == {"name": name, "admin": False, "disabled": True, "roles": {project: "operator"}}
    for headers in (first, second):
        assert client.get("/api/v1/me", headers=headers).status_code == 401
        assert (
            client.post("/api/v1/jobs", headers=headers, json={"project": project, "type": "sleep"}).status_code == 401
        )
    listed = [u for u in client.get("/api/v1/users").json() if u["name"] == name]
    assert listed[0]["disabled"] is True
    assert client.patch(f"/api/v1/users/{name}", json={"disabled": False}).json()["disabled"] is False
    for headers in (first, second):
        assert client.get("/api/v1/me", headers=headers).status_code == 200


def test_the_admin_flag_is_given_and_taken(client: TestClient, project: str, unique: Callable[[str], str]) -> None:
    name, headers = _new_user(client, unique)
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    assert client.patch(f"/api/v1/users/{name}", json={"admin": True}).json()["admin"] is True
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    assert project in [p["name"] for p in client.get("/api/v1/projects", headers=headers).json()]
    assert client.patch(f"/api/v1/users/{name}", json={"admin": False}).json()["admin"] is False
    assert client.get("/api/v1/users", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "body", [{"disabled": 1}, {"disabled": "true"}, {"admin": None, "x": 1}, {"admin": "yes"}, [], {"name": "x"}]
)
def test_a_bad_user_change_is_422_and_changes_nothing(
    client: TestClient, unique: Callable[[str], str], body: object
) -> None:
    name, headers = _new_user(client, unique)
    assert client.patch(f"/api/v1/users/{name}", json=body).status_code == 422
    assert client.get("/api/v1/me", headers=headers).json()["admin"] is False


def test_a_deleted_user_is_gone_with_tokens_and_roles_and_the_name_can_be_reused(
    client: TestClient, project: str, unique: Callable[[str], str]
) -> None:
    name, headers = _new_user(client, unique, roles={project: "operator"})
    job = client.post("/api/v1/jobs", headers=headers, json={"project": project, "type": "sleep"}).json()
    gone = client.delete(f"/api/v1/users/{name}")
    assert gone.status_code == 204 and gone.content == b""
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert name not in [u["name"] for u in client.get("/api/v1/users").json()]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["submitter"] == name  # the history keeps the name
    assert client.delete(f"/api/v1/users/{name}").status_code == 404
    assert client.patch(f"/api/v1/users/{name}", json={"disabled": True}).status_code == 404
    again = client.post("/api/v1/users", json={"name": name})
    assert again.status_code == 201 and again.json()["roles"] == {}  # nothing of the old user carries over


def test_only_admins_change_or_delete_users(
    client: TestClient, user: Callable[..., dict[str, str]], project: str, unique: Callable[[str], str]
) -> None:
    name, _ = _new_user(client, unique)
    operator = user({project: "operator"})
    assert client.patch(f"/api/v1/users/{name}", json={"disabled": True}, headers=operator).status_code == 403
    assert client.delete(f"/api/v1/users/{name}", headers=operator).status_code == 403
    assert [u["disabled"] for u in client.get("/api/v1/users").json() if u["name"] == name] == [False]


@pytest.fixture
def alone(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An API over a database of its own, whose only user is the bootstrapped admin."""
    url, drop = fresh_database(backend, tmp_path_factory)
    services = build(settings.model_copy(update={"database_url": url}))
    try:
        with TestClient(create_app(services), headers={"Authorization": "Bearer test-admin-token"}) as client:
            yield client
    finally:
        services.close()
        drop()


def test_the_last_enabled_admin_cannot_be_disabled_demoted_or_deleted(alone: TestClient) -> None:
    for method, body in (("PATCH", {"disabled": True}), ("PATCH", {"admin": False}), ("DELETE", None)):
        refused = alone.request(method, "/api/v1/users/admin", json=body)
        assert refused.status_code == 409, (method, body, refused.text)
        assert "last enabled administrator" in refused.json()["error"]["message"]
    assert alone.get("/api/v1/me").json()["admin"] is True
    # With a second admin, the first may go; then the second is the last.
    second = alone.post("/api/v1/users", json={"name": "second", "admin": True}).json()["token"]
    other = {"Authorization": f"Bearer {second}"}
    assert alone.patch("/api/v1/users/admin", json={"disabled": True}).status_code == 200
    assert alone.get("/api/v1/me").status_code == 401
    assert alone.patch("/api/v1/users/second", json={"admin": False}, headers=other).status_code == 409
    assert alone.delete("/api/v1/users/admin", headers=other).status_code == 204
    assert alone.delete("/api/v1/users/second", headers=other).status_code == 409


# ------------------------------------------------------------------------------------------------ projects


def test_a_projects_limit_is_changed_and_reset(client: TestClient, project: str) -> None:
    changed = client.patch(f"/api/v1/projects/{project}", json={"max_running": 3})
    assert changed.status_code == 200, changed.text
    assert changed.json()["name"] == project and changed.json()["max_running"] == 3
    assert [p["max_running"] for p in client.get("/api/v1/projects").json() if p["name"] == project] == [3]
    assert client.patch(f"/api/v1/projects/{project}", json={"max_running": None}).json()["max_running"] is None


@pytest.mark.parametrize("body", [{"max_running": 0}, {"max_running": "3"}, {"max_running": True}, {}, {"name": "x"}])
def test_a_bad_project_change_is_422_and_changes_nothing(client: TestClient, project: str, body: object) -> None:
    assert client.patch(f"/api/v1/projects/{project}", json={"max_running": 7}).status_code == 200
    assert client.patch(f"/api/v1/projects/{project}", json=body).status_code == 422
    assert [p["max_running"] for p in client.get("/api/v1/projects").json() if p["name"] == project] == [7]


def test_project_changes_need_an_admin_and_an_existing_project(
    client: TestClient, user: Callable[..., dict[str, str]], project: str
) -> None:
    operator = user({project: "operator"})
    assert client.patch(f"/api/v1/projects/{project}", json={"max_running": 2}, headers=operator).status_code == 403
    assert client.delete(f"/api/v1/projects/{project}", headers=operator).status_code == 403
    assert client.patch("/api/v1/projects/no-such-project", json={"max_running": 2}).status_code == 404
    assert client.delete("/api/v1/projects/no-such-project").status_code == 404


def test_a_project_is_deleted_only_once_every_job_is_final(
    client: TestClient, services: Services, project: str, user: Callable[..., dict[str, str]]
) -> None:
    viewer = user({project: "viewer"})
    assert client.put(f"/api/v1/projects/{project}/targets/record/t1", json={"attributes": {}}).status_code == 200
    job = client.post("/api/v1/jobs", json={"project": project, "type": "sleep"}).json()
    refused = client.delete(f"/api/v1/projects/{project}")
    assert refused.status_code == 409 and "not final" in refused.json()["error"]["message"]
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "PENDING"  # nothing deleted
    assert client.post(f"/api/v1/jobs/{job['id']}/discard").status_code == 200
    gone = client.delete(f"/api/v1/projects/{project}")
    assert gone.status_code == 204, gone.text
    assert client.get(f"/api/v1/jobs/{job['id']}").status_code == 404
    assert client.get(f"/api/v1/projects/{project}/targets").status_code == 404
    assert project not in [p["name"] for p in client.get("/api/v1/projects").json()]
    assert client.get("/api/v1/me", headers=viewer).json()["roles"] == {}  # the role went with it
    with services.db.read() as s:
        assert accounts.list_projects(s, [project]) == []
    assert client.post("/api/v1/projects", json={"name": project}).status_code == 201  # the name is free again


# ------------------------------------------------------------------------------------------------ rotation


def test_a_changed_admin_token_setting_rotates_the_admins_token(
    settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url, drop = fresh_database(backend, tmp_path_factory)
    first = build(settings.model_copy(update={"database_url": url, "admin_token": "first-admin-token"}))
    rotated = build(settings.model_copy(update={"database_url": url, "admin_token": "second-admin-token"}))
    try:
        assert bootstrap_admin(first) == "first-admin-token"
        with TestClient(create_app(rotated)) as client:  # a restart with the new setting
            assert client.get("/api/v1/me", headers={"Authorization": "Bearer first-admin-token"}).status_code == 401
            new = {"Authorization": "Bearer second-admin-token"}
            assert client.get("/api/v1/me", headers=new).json()["name"] == "admin"
            [default] = client.get("/api/v1/users/admin/tokens", headers=new).json()
            assert default["name"] == "default" and default["prefix"] == "second-a"
            # A revoked token is not brought back by the next start.
            keep = client.post("/api/v1/me/tokens", headers=new, json={"name": "keep"}).json()["token"]
            assert client.delete("/api/v1/me/tokens/default", headers=new).status_code == 204
        assert bootstrap_admin(rotated) is None
        with rotated.db.read() as s:
            names = [t.name for t in accounts.list_tokens(s, accounts.get_user(s, "admin").id)]
        assert names == ["keep"] and keep
    finally:
        first.close()
        rotated.close()
        drop()
