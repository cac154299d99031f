"""Invalid tokens from one address: 429 with Retry-After past the limit, shared by every API process through Redis,
never in the way of a valid token, and off (401 as before) when Redis is unreachable (api/ratelimit.py)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from httpx import Response

from jobctl.api import ratelimit
from jobctl.api.app import create_app
from jobctl.scheduler import keys
from jobctl.scheduler.settings import Settings
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.api.conftest import ADMIN

LIMIT = 4
WINDOW_S = 30
BAD = {"Authorization": "Bearer not-a-token"}
TESTCLIENT = "testclient"  # the address Starlette's TestClient gives by default


@pytest.fixture
def limited(settings: Settings) -> Settings:
    """The session's settings with a small limit, and a namespace (the queue) of this test's own: no other test
    counts into its counters."""
    update = {"auth_failure_limit": LIMIT, "auth_failure_window_s": WINDOW_S, "queue": f"rl-{uuid.uuid4().hex[:12]}"}
    return settings.model_copy(update=update)


@pytest.fixture
def processes(limited: Settings) -> Iterator[Callable[[], Services]]:
    """A factory of services over the same database and Redis: each stands for one API process."""
    made: list[Services] = []

    def make() -> Services:
        made.append(build(limited, pool_size=1))
        return made[-1]

    yield make
    for services in made:
        services.close()


def assert_unauthorized(response: Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def assert_throttled(response: Response, window_s: int = WINDOW_S) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["error"]["code"] == "too_many_requests" and set(body["error"]) == {"code", "message"}
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window_s


def test_past_the_limit_an_address_gets_429_but_a_valid_token_still_works(
    processes: Callable[[], Services], limited: Settings
) -> None:
    app = create_app(processes())
    with TestClient(app) as client:
        for _ in range(LIMIT):
            assert_unauthorized(client.get("/api/v1/me", headers=BAD))
        assert_throttled(client.get("/api/v1/me", headers=BAD))
        assert_throttled(client.post("/api/v1/projects", headers=BAD, json={"name": "x"}))  # every route
        me = client.get("/api/v1/me", headers=ADMIN)  # the same address, a valid token
        assert me.status_code == 200 and me.json()["name"] == "admin"
        for headers in ({}, {"Authorization": "Basic dGVzdDp0ZXN0"}, {"Authorization": "Bearer"}):
            assert_unauthorized(client.get("/api/v1/me", headers=headers))  # no token: not the limiter's business
        assert_throttled(client.get("/api/v1/me", headers=BAD))  # and still throttled
    with TestClient(app, client=("10.1.2.3", 1234)) as elsewhere:
        assert_unauthorized(elsewhere.get("/api/v1/me", headers=BAD))
        assert elsewhere.get("/api/v1/me", headers=ADMIN).status_code == 200


def test_a_missing_token_is_never_counted(processes: Callable[[], Services]) -> None:
    with TestClient(create_app(processes())) as client:
        for _ in range(LIMIT * 3):
            assert_unauthorized(client.get("/api/v1/me"))
        for _ in range(LIMIT):
            assert_unauthorized(client.get("/api/v1/me", headers=BAD))
        assert_throttled(client.get("/api/v1/me", headers=BAD))


def test_the_counter_is_shared_by_every_api_process(processes: Callable[[], Services]) -> None:
    first, second = TestClient(create_app(processes())), TestClient(create_app(processes()))
    with first, second:
        for _ in range(LIMIT // 2):
            assert_unauthorized(first.get("/api/v1/me", headers=BAD))
        for _ in range(LIMIT - LIMIT // 2):
            assert_unauthorized(second.get("/api/v1/me", headers=BAD))
        assert_throttled(second.get("/api/v1/me", headers=BAD))
        assert_throttled(first.get("/api/v1/me", headers=BAD))


def test_the_counter_lives_one_window_and_then_starts_afresh(limited: Settings) -> None:
    short = limited.model_copy(update={"auth_failure_limit": 1, "auth_failure_window_s": 1})
    services = build(short, pool_size=1)
    try:
        with TestClient(create_app(services)) as client:
            assert_unauthorized(client.get("/api/v1/me", headers=BAD))
            assert_throttled(client.get("/api/v1/me", headers=BAD), window_s=1)
            key = keys.auth_failures(short.queue, TESTCLIENT)
            assert int(services.redis.get(key) or 0) == 2
            assert 0 < services.redis.pttl(key) <= 1000  # the key has its window's expiry, never none
            time.sleep(1.2)
            assert services.redis.exists(key) == 0
            assert_unauthorized(client.get("/api/v1/me", headers=BAD))
    finally:
        services.close()


def test_unreachable_redis_answers_401_and_warns_once(
    limited: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(ratelimit, "warn", ratelimit._Warning())  # a fresh once-a-minute clock for this test
    broken = build(limited.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"}), pool_size=1)
    try:
        broken.redis.connection_pool.connection_kwargs["socket_connect_timeout"] = 0.5
        with pytest.raises(redis.ConnectionError):
            broken.redis.ping()  # it is unreachable indeed
        caplog.set_level(logging.WARNING, logger=ratelimit.__name__)
        with TestClient(create_app(broken)) as client:
            for _ in range(LIMIT * 2):
                assert_unauthorized(client.get("/api/v1/me", headers=BAD))
            assert client.get("/api/v1/me", headers=ADMIN).status_code == 200
    finally:
        broken.close()
    warnings = [r for r in caplog.records if r.name == ratelimit.__name__ and r.levelno == logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert "Redis" in warnings[0].getMessage()


def test_openapi_documents_429_where_401_is(anonymous: TestClient) -> None:
    spec = anonymous.get("/openapi.json").json()
    me = spec["paths"]["/api/v1/me"]["get"]["responses"]
    assert "401" in me and "429" in me
    assert "Retry-After" in me["429"]["headers"]
    assert "429" not in spec["paths"]["/healthz"]["get"]["responses"]
