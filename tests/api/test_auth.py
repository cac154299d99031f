"""Authentication, the admin bootstrap, health endpoints, the error format and the OpenAPI document."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobctl.api.app import bootstrap_admin, create_app
from jobctl.api.auth import hash_token
from jobctl.processes import api_app
from jobctl.scheduler.migrate import upgrade
from jobctl.scheduler.settings import Settings, get_settings
from jobctl.scheduler.store import accounts
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.conftest import env_for


def _user(services: Services, name: str, token: str) -> None:
    with services.db.write() as s:
        accounts.create_user(s, name, hash_token(token), admin=False)


def test_health_needs_no_token(anonymous: TestClient) -> None:
    assert anonymous.get("/healthz").json() == {"status": "ok"}
    ready = anonymous.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    bad = {"Authorization": "Bearer wrong"}
    assert anonymous.get("/healthz", headers=bad).status_code == 200
    assert anonymous.get("/readyz", headers=bad).status_code == 200


def test_readyz_names_what_failed(settings: Settings) -> None:
    broken = build(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}))
    try:
        broken.redis.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
        response = TestClient(create_app(broken)).get("/readyz")
    finally:
        broken.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed")


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token"}, {"Authorization": "Basic dGVzdDp0ZXN0"}, {"Authorization": "Bearer"}],
)
def test_missing_or_invalid_token_is_401(anonymous: TestClient, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/api/v1/me"), ("GET", "/api/v1/jobs"), ("POST", "/api/v1/projects")]:
        response = anonymous.request(method, path, headers=headers, json={"name": "x"})
        assert response.status_code == 401, (method, path, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert set(response.json()["error"]) == {"code", "message"}
        assert response.headers["www-authenticate"] == "Bearer"


def test_me_is_the_admin(client: TestClient) -> None:
    assert client.get("/api/v1/me").json() == {"name": "admin", "admin": True, "roles": {}}


def test_tokens_are_stored_hashed(services: Services) -> None:
    with services.db.read() as s:
        user = accounts.user_by_token_hash(s, hashlib.sha256(b"test-admin-token").hexdigest())
        assert user is not None and user.name == "admin" and user.admin
        assert accounts.user_by_token_hash(s, "test-admin-token") is None


def test_bootstrap_changes_nothing_once_a_user_exists(services: Services) -> None:
    with services.db.read() as s:
        before = accounts.count_users(s)
    assert bootstrap_admin(services) is None
    with services.db.read() as s:
        assert accounts.count_users(s) == before


def test_bootstrap_generates_and_prints_a_token_once(
    tmp_path: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    fresh = build(Settings(database_url=url, redis_url=redis_url, file_root=tmp_path, admin_token=None))
    try:
        app = create_app(fresh)
        printed = capsys.readouterr().out
        match = re.search(r"token \(shown only this once\): (\S+)", printed)
        assert match, printed
        token = match.group(1)
        with TestClient(app) as again:  # the lifespan's startup does not create or print a second one
            assert "token" not in capsys.readouterr().out
            me = again.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["admin"] is True
        with fresh.db.read() as s:
            assert accounts.count_users(s) == 1
            assert accounts.user_by_token_hash(s, token) is None  # only the hash is stored
    finally:
        fresh.close()


def test_a_user_without_roles_sees_no_project(
    client: TestClient, services: Services, project: str, unique: Callable[[str], str]
) -> None:
    token = unique("token")
    _user(services, unique("u"), token)
    headers = {"Authorization": f"Bearer {token}"}
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["admin"] is False and me["roles"] == {}
    assert client.get("/api/v1/projects", headers=headers).json() == []
    job = client.post("/api/v1/jobs", json={"project": project, "type": "sleep"}).json()
    for method, path in [
        ("GET", f"/api/v1/jobs/{job['id']}"),
        ("POST", f"/api/v1/jobs/{job['id']}/pause"),
        ("DELETE", f"/api/v1/jobs/{job['id']}"),
        ("GET", f"/api/v1/jobs/{job['id']}/events"),
        ("GET", f"/api/v1/jobs/{job['id']}/steps/0/log"),
        ("GET", f"/api/v1/projects/{project}/targets"),
        ("PUT", f"/api/v1/projects/{project}/targets/record/r1"),
        ("GET", f"/api/v1/jobs?project={project}"),
    ]:
        response = client.request(method, path, headers=headers)
        assert response.status_code == 404, (method, path, response.text)
    submit = client.post("/api/v1/jobs", headers=headers, json={"project": project, "type": "sleep"})
    assert submit.status_code == 404
    listed = client.get("/api/v1/jobs", headers=headers).json()
    assert listed["total"] == 0 and listed["items"] == []
    create = client.post("/api/v1/projects", headers=headers, json={"name": unique("p")})
    assert create.status_code == 403 and create.json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "PENDING"  # nothing changed


def test_unknown_route_and_method_use_the_error_format(client: TestClient) -> None:
    missing = client.get("/api/v1/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = client.put("/api/v1/me")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/api/v1/jobs/some-job", "GET, PATCH, DELETE"),  # three routes share the path
        ("PATCH", "/api/v1/jobs", "GET, POST"),
        ("GET", "/api/v1/projects/p/targets/record/t", "PUT, DELETE"),
        ("GET", "/api/v1/jobs/some-job/pause", "POST"),
        ("POST", "/healthz", "GET"),
    ],
)
def test_a_wrong_method_is_told_every_method_the_path_takes(
    client: TestClient, method: str, path: str, allow: str
) -> None:
    wrong = client.request(method, path)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed", wrong.text
    assert wrong.headers["allow"] == allow


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post("/api/v1/projects", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "bad_request", "message": "the request body is not valid JSON"}}


def test_openapi_has_typed_models(anonymous: TestClient) -> None:
    spec = anonymous.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    for model in ("Job", "Step", "JobPage", "JobSubmit", "Project", "ProjectCreate", "Target", "Event", "ErrorBody"):
        assert model in schemas, model
    assert "HTTPValidationError" not in schemas  # every 422 is documented with the API's own error body
    job_props = schemas["Job"]["properties"]
    for field in (
        "id",
        "project",
        "type",
        "target",
        "params",
        "priority",
        "status",
        "progress",
        "created_at",
        "started_at",
        "finished_at",
        "duration_s",
        "waiting_s",
        "submitter",
        "attempt",
        "error",
        "discard_reason",
        "result",
        "steps",
        "allowed",
    ):
        assert field in job_props, field
    assert schemas["JobSubmit"]["additionalProperties"] is False
    post_jobs = spec["paths"]["/api/v1/jobs"]["post"]
    assert post_jobs["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/Job")
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert anonymous.get("/docs").status_code == 200


def test_app_without_services_builds_them_from_the_environment(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in env_for(settings).items():
        if key.startswith("JOBCTL_"):
            monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    try:
        app = api_app()
        with TestClient(app) as started:
            assert started.get("/readyz").status_code == 200
            me = started.get("/api/v1/me", headers={"Authorization": "Bearer test-admin-token"})
            assert me.status_code == 200 and me.json()["name"] == "admin"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("name", ["token", "access_token", "Token"])
def test_a_token_in_the_query_string_is_refused_and_not_echoed(
    anonymous: TestClient, client: TestClient, name: str
) -> None:
    for caller in (anonymous, client):  # with or without a token in the header as well
        answer = caller.get("/api/v1/jobs", params={name: "test-admin-token", "page_size": 1})
        assert answer.status_code == 400, answer.text
        error = answer.json()["error"]
        assert error["code"] == "bad_request" and "Authorization: Bearer" in error["message"]
        assert "test-admin-token" not in answer.text


def test_an_over_long_authorization_header_is_refused_before_any_lookup(anonymous: TestClient) -> None:
    from jobctl.api.guard import MAX_AUTHORIZATION

    just = "Bearer " + "x" * (MAX_AUTHORIZATION - len("Bearer "))
    assert anonymous.get("/api/v1/me", headers={"Authorization": just}).status_code == 401  # looked up: unknown
    over = anonymous.get("/api/v1/me", headers={"Authorization": just + "x"})
    assert over.status_code == 400 and "longer than" in over.json()["error"]["message"], over.text
