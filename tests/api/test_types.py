"""`GET /api/v1/types`: the registered job types, their params' schema, steps, target kind and exclusivity."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_types_describe_the_built_ins(client: TestClient) -> None:
    answer = client.get("/api/v1/types")
    assert answer.status_code == 200
    types = {t["name"]: t for t in answer.json()}
    assert list(types) == sorted(types)
    assert types["sleep"]["steps"] is None  # planned from its params
    assert types["sleep"]["target_kind"] == "any" and types["sleep"]["exclusive"] is None
    assert set(types["sleep"]["params_schema"]["properties"]) >= {"steps", "seconds", "fail_at"}
    digest = types["file_digest"]
    assert digest["steps"] == [
        {"name": "stat", "weight": 1.0},
        {"name": "digest", "weight": 8.0},
        {"name": "record", "weight": 1.0},
    ]
    assert digest["target_kind"] == "file"


def test_types_need_a_token(anonymous: TestClient) -> None:
    assert anonymous.get("/api/v1/types").status_code == 401
