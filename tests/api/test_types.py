"""`GET /api/v1/types`: the registered job types, their params' schema, steps, target kind and exclusivity."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient


def test_types_describe_the_built_ins(client: TestClient) -> None:
    answer = client.get("/api/v1/types")
    assert answer.status_code == 200
    types = {t["name"]: t for t in answer.json()}
    assert list(types) == sorted(types)
    assert all(set(t) == {"name", "params_schema", "steps", "target_kind", "exclusive"} for t in types.values())
    sleep = types["sleep"]
    assert sleep["steps"] is None  # planned from its params
    assert sleep["target_kind"] == "any" and sleep["exclusive"] is None  # a target of any kind is optional
    assert sleep["params_schema"]["type"] == "object"
    assert set(sleep["params_schema"]["properties"]) >= {"steps", "seconds", "fail_at", "fail_times", "subprocess"}
    digest = types["file_digest"]
    assert digest["steps"] == [
        {"name": "stat", "weight": 1.0},
        {"name": "digest", "weight": 8.0},
        {"name": "record", "weight": 1.0},
    ]
    assert digest["target_kind"] == "file"


def test_any_user_may_read_them(client: TestClient, user: Callable[..., dict[str, str]]) -> None:
    """No role is needed: a user without any project sees the same list as an admin."""
    nobody = user({})
    answer = client.get("/api/v1/types", headers=nobody)
    assert answer.status_code == 200
    assert answer.json() == client.get("/api/v1/types").json()


def test_types_need_a_token(anonymous: TestClient) -> None:
    assert anonymous.get("/api/v1/types").status_code == 401
