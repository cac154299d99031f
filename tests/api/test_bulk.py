"""`POST /api/v1/jobs/bulk`: up to 1,000 jobs, each checked first, created in one transaction or not at all."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from jobctl.scheduler import keys
from jobctl.scheduler.store import accounts, dispatch, models
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.workers.services import Services


def count_jobs(services: Services, project: str) -> int:
    with services.db.read() as s:
        proj = accounts.get_project(s, project)
        return jobs_store.list_jobs(s, jobs_store.JobQuery(project_ids=[proj.id], page_size=1))[1]


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


def test_a_bad_job_at_the_end_of_a_thousand_refuses_them_all(
    client: TestClient, project: str, services: Services
) -> None:
    jobs = [{"project": project, "type": "sleep"}] * 999 + [{"project": project, "type": "sleep", "priority": 4.5}]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 422 and "jobs.999.priority" in answer.json()["error"]["message"]
    jobs = [{"project": project, "type": "sleep"}] * 999 + [{"project": project, "type": "sleep", "params": {"x": 1}}]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 422
    assert [item["index"] for item in answer.json()["error"]["items"]] == [999]
    assert count_jobs(services, project) == 0


def test_many_refusals_are_all_listed_and_the_message_stays_short(client: TestClient, project: str) -> None:
    jobs = [{"project": project, "type": f"nope{i}"} for i in range(300)]
    error = client.post("/api/v1/jobs/bulk", json={"jobs": jobs}).json()["error"]
    assert [item["index"] for item in error["items"]] == list(range(300))
    assert error["message"].startswith("300 of 300 jobs refused") and error["message"].endswith("and 280 more")


def test_a_bulk_is_written_as_the_same_jobs_submitted_one_by_one(
    client: TestClient, project: str, services: Services
) -> None:
    """Row for row (job, steps, event), a job of a bulk is what `POST /jobs` writes, its target pinned alike;
    and the answer is what `GET /jobs/{id}` reads back."""
    assert client.put(f"/api/v1/projects/{project}/targets/record/orders", json={"attributes": {"a": 1}}).is_success
    one = {"project": project, "type": "sleep", "params": {"steps": 2, "seconds": 0.5}, "priority": 1}
    one["target"] = {"kind": "record", "name": "orders"}
    single = client.post("/api/v1/jobs", json=one).json()
    bulk = client.post("/api/v1/jobs/bulk", json={"jobs": [one, one]}).json()["items"]
    assert bulk[0]["target"] == {"kind": "record", "name": "orders", "version": "1"}
    assert comparable(bulk[0]) == comparable(bulk[1]) == comparable(single)
    for job in bulk:
        assert comparable(client.get(f"/api/v1/jobs/{job['id']}").json()) == comparable(job)
    assert rows_of(services, bulk[0]["id"]) == rows_of(services, bulk[1]["id"]) == rows_of(services, single["id"])


def test_jobs_are_created_in_the_order_given(client: TestClient, project: str, services: Services) -> None:
    """Listed oldest first and dispatched (same priority) in the order of the bulk, as if submitted one by one."""
    jobs = [{"project": project, "type": "sleep", "params": {"steps": 1 + i % 2}} for i in range(40)]
    items = client.post("/api/v1/jobs/bulk", json={"jobs": jobs}).json()["items"]
    ids = [job["id"] for job in items]
    created = [job["created_at"] for job in items]
    assert created == sorted(created) and len(set(created)) == len(created)
    listed = client.get("/api/v1/jobs", params={"project": project, "sort": "created_at", "page_size": 50}).json()
    assert [job["id"] for job in listed["items"]] == ids
    with services.db.read() as s:
        proj = accounts.get_project(s, project)
        candidates = dispatch.pending_candidates(s, {proj.id: 40})
    assert [c[0] for c in candidates] == ids


def test_each_job_is_announced(client: TestClient, project: str, services: Services) -> None:
    """After the commit every job of the bulk is published on the event channel, PENDING."""
    pubsub = services.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(keys.EVENTS)
    try:
        jobs = [{"project": project, "type": "sleep"}] * 5
        ids = {job["id"] for job in client.post("/api/v1/jobs/bulk", json={"jobs": jobs}).json()["items"]}
        seen: dict[str, str] = {}
        deadline = time.monotonic() + 5
        while set(seen) != ids and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
            if message is not None:
                event = json.loads(message["data"])
                if event["id"] in ids:
                    seen[event["id"]] = event["status"]
        assert seen == dict.fromkeys(ids, "PENDING")
    finally:
        pubsub.close()


def comparable(job: dict[str, Any]) -> dict[str, Any]:
    """A job's JSON without what differs between two submissions of the same job (id, creation, waiting)."""
    steps = [{k: v for k, v in s.items() if k != "waiting_s"} for s in job["steps"]]
    varying = {"id", "created_at", "waiting_s", "waiting_for"}
    return {**{k: v for k, v in job.items() if k not in varying}, "steps": steps}


def rows_of(services: Services, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """The job's rows in jobs, steps and events, without ids and times (which differ between two jobs)."""
    varying = {"id", "job_id", "created_at", "updated_at", "pending_since", "ready_at", "at"}
    with services.db.read() as s:
        return {
            table.name: [
                {k: v for k, v in row._mapping.items() if k not in varying}
                for row in s.execute(select(table).where(key == job_id).order_by(*order))
            ]
            for table, key, order in (
                (models.JOBS, models.JOBS.c.id, [models.JOBS.c.id]),
                (models.STEPS, models.STEPS.c.job_id, [models.STEPS.c.idx]),
                (models.EVENTS, models.EVENTS.c.job_id, [models.EVENTS.c.id]),
            )
        }


def test_the_answer_is_each_job_as_it_reads_back(client: TestClient, project: str, services: Services) -> None:
    """Jobs of the same steps share one JSON of them in the answer (`Job.from_records`): it is still each job's."""
    jobs = [{"project": project, "type": "sleep", "params": {"steps": 1 + i % 2}} for i in range(6)]
    answer = client.post("/api/v1/jobs/bulk", json={"jobs": jobs})
    assert answer.status_code == 201, answer.text
    for item in answer.json()["items"]:
        read = client.get(f"/api/v1/jobs/{item['id']}").json()
        for job in (item, read):  # times spent waiting grow from the submission on; why it waits is told on reads
            job["waiting_s"], job["waiting_for"] = 0, None
            for step in job["steps"]:
                step["waiting_s"] = 0
        assert item == read
