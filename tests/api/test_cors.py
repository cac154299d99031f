"""CORS only when configured (`api/cors.py`, `JOBCTL_CORS_ORIGINS`): by default no cross-origin request gets any
`Access-Control-Allow-*` header; with origins set, exactly those origins may call the API, without credentials."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from jobctl.api.app import create_app
from jobctl.processes import api_app
from jobctl.scheduler.settings import Settings, get_settings
from jobctl.wiring import build
from tests.conftest import env_for

OK = "https://ok.example"
EVIL = "https://evil.example"
ADMIN = {"Authorization": "Bearer test-admin-token"}


def preflight(client: TestClient, origin: str, method: str = "POST") -> dict[str, str]:
    answer = client.options(
        "/api/v1/projects",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    return {"status": str(answer.status_code), **answer.headers}


@pytest.fixture(scope="module")
def configured(settings: Settings) -> Iterator[TestClient]:
    """An app whose settings allow `OK` (and only it)."""
    services = build(settings.model_copy(update={"cors_origins": OK}))
    try:
        with TestClient(create_app(services)) as started:
            yield started
    finally:
        services.close()


def test_without_the_setting_no_origin_is_allowed(anonymous: TestClient) -> None:
    assert anonymous.app.state.services.settings.cors_origins == ""  # type: ignore[attr-defined]
    for origin in (EVIL, OK):
        answer = preflight(anonymous, origin)
        assert not any(key.startswith("access-control-") for key in answer), answer
        got = anonymous.get("/api/v1/me", headers={"Origin": origin, **ADMIN})
        assert got.status_code == 200 and "access-control-allow-origin" not in got.headers


def test_a_configured_origin_is_allowed_and_no_other(configured: TestClient) -> None:
    allowed = preflight(configured, OK)
    assert allowed["status"] == "200" and allowed["access-control-allow-origin"] == OK
    assert set(allowed["access-control-allow-methods"].split(", ")) == {"GET", "POST", "PUT", "PATCH", "DELETE"}
    assert {"authorization", "content-type"} <= set(allowed["access-control-allow-headers"].lower().split(", "))
    assert "access-control-allow-credentials" not in allowed  # tokens go in a header, never in cookies
    assert allowed["x-frame-options"] == "DENY"  # the preflight's answer carries the security headers too

    got = configured.get("/api/v1/me", headers={"Origin": OK, **ADMIN})
    assert got.status_code == 200 and got.headers["access-control-allow-origin"] == OK

    refused = preflight(configured, EVIL)
    assert refused["status"] == "400" and "access-control-allow-origin" not in refused
    got = configured.get("/api/v1/me", headers={"Origin": EVIL, **ADMIN})
    assert got.status_code == 200 and "access-control-allow-origin" not in got.headers
    assert "access-control-allow-origin" not in preflight(configured, "http://ok.example")  # another scheme


def test_a_method_outside_the_list_is_not_allowed(configured: TestClient) -> None:
    assert preflight(configured, OK, method="TRACE")["status"] == "400"


def test_the_setting_read_by_the_lifespan_applies(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """An app made before its settings are read (`create_app(build=...)`, as `jobctl api` runs it) follows the
    settings its lifespan read from the environment."""
    for key, value in env_for(settings).items():
        if key.startswith("JOBCTL_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("JOBCTL_CORS_ORIGINS", f" {OK} ,http://localhost:3000")
    get_settings.cache_clear()
    try:
        with TestClient(api_app()) as started:
            assert preflight(started, OK)["access-control-allow-origin"] == OK
            assert preflight(started, "http://localhost:3000")["status"] == "200"
            assert "access-control-allow-origin" not in preflight(started, EVIL)
    finally:
        get_settings.cache_clear()


def test_the_setting_is_a_list_of_origins() -> None:
    assert Settings(cors_origins="").cors_origin_list == ()
    parsed = Settings(cors_origins=" https://OK.example, http://127.0.0.1:5173 ,")
    assert parsed.cors_origin_list == (OK, "http://127.0.0.1:5173")


@pytest.mark.parametrize(
    "value", [f"{OK}/", f"{OK}/path", "ok.example", "*", "ftp://ok.example", f"{OK}:443", "https://u@ok.example"]
)
def test_what_is_not_an_origin_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="cors_origins"):
        Settings(cors_origins=value)
