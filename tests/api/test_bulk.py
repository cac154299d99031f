"""`POST /api/v1/jobs/bulk`: up to 1,000 jobs, each checked first, created in one transaction or not at all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.scheduler import store
from jobctl.workers.services import Services


def count_jobs(services: Services, project: str) -> int:
    with services.db.read() as s:
        proj = store.get_project(s, project)
        return store.list_jobs(s, store.JobQuery(project_ids=[proj.id], page_size=1))[1]


def test_bulk_creates_every_job_in_order(client: TestClient, project: str, services: Services) -> None:
    jobs = [{"project": project, "type": "sleep", "params": {"steps": 1 + i % 3}, "priority": i % 5} for i in range(25)]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 201, answer.text
    items = answer.json()["items"]
    assert [len(j["steps"]) for j in items] == [1 + i % 3 for i in range(25)]
    assert [j["priority"] for j in items] == [i % 5 for i in range(25)]
    assert {j["status"] for j in items} == {"PENDING"} and len({j["id"] for j in items}) == 25
    assert all(step["output"] is None and step["retry_at"] is None for j in items for step in j["steps"])
    assert client.get(f"/api/v1/jobs/{items[7]['id']}").json()["params"]["steps"] == 2
    assert count_jobs(services, project) == 25


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ({"type": "nope"}, "unknown job type 'nope'"),
        ({"type": "sleep", "params": {"steps": 0}}, "invalid params for job type 'sleep'"),
        ({"type": "file_digest"}, "needs a file target"),
        ({"type": "sleep", "target": {"kind": "record", "name": "missing"}}, "does not exist"),
        ({"type": "sleep", "project": "no-such-project"}, "not found"),
    ],
)
def test_one_bad_job_refuses_the_whole_bulk(
    client: TestClient, project: str, services: Services, bad: dict[str, Any], says: str
) -> None:
    good = {"project": project, "type": "sleep"}
    jobs = [good, good, {**good, **bad}, good]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert [item["index"] for item in error["items"]] == [2] and says in error["items"][0]["message"]
    assert "jobs[2]" in error["message"] and "none submitted" in error["message"]
    assert count_jobs(services, project) == 0


def test_every_bad_job_is_named(client: TestClient, project: str, services: Services) -> None:
    jobs = [
        {"project": project, "type": "nope"},
        {"project": project, "type": "sleep"},
        {"project": project, "type": "sleep", "target": {"kind": "record", "name": "gone"}},
    ]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 422
    assert [item["index"] for item in answer.json()["error"]["items"]] == [0, 2]
    assert count_jobs(services, project) == 0


@pytest.mark.parametrize("count", [0, 1001])
def test_bulk_size_is_1_to_1000(client: TestClient, project: str, count: int) -> None:
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": [{"project": project, "type": "sleep"}] * count})
    assert answer.status_code == 422
    assert "jobs" in answer.json()["error"]["message"]


def test_a_malformed_item_is_named_by_its_place(client: TestClient, project: str) -> None:
    jobs = [{"project": project, "type": "sleep"}, {"project": project, "type": "sleep", "colour": "red"}]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 422
    assert "jobs.1.colour" in answer.json()["error"]["message"]


def test_viewers_and_strangers(
    client: TestClient,
    project: str,
    new_project: Callable[[], str],
    user: Callable[..., dict[str, str]],
    services: Services,
) -> None:
    other = new_project()
    viewer = user({project: "viewer", other: "operator"})
    answer = client.post(
        "/api/v1/jobs/bulk",
        json={"jobs": [{"project": other, "type": "sleep"}, {"project": project, "type": "sleep"}]},
        headers=viewer,
    )
    assert answer.status_code == 403 and "jobs 1" in answer.json()["error"]["message"]
    stranger = user({other: "operator"})
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": [{"project": project, "type": "sleep"}]}, headers=stranger)
    assert answer.status_code == 422
    assert answer.json()["error"]["items"] == [{"index": 0, "message": f"project {project!r} not found"}]
    assert count_jobs(services, other) == 0 and count_jobs(services, project) == 0


def test_a_thousand_jobs_in_one_request(client: TestClient, project: str, services: Services) -> None:
    began = time.perf_counter()
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": [{"project": project, "type": "sleep"}] * 1000})
    took = time.perf_counter() - began
    assert answer.status_code == 201 and len(answer.json()["items"]) == 1000
    assert count_jobs(services, project) == 1000
    assert took < 10, took  # measured ~0.2-0.5 s here; a generous bound for a loaded CI machine
