"""Jobs over HTTP: submit and its validation, show, list, operate (and refuse), events and step logs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobctl.scheduler.store import models
from jobctl.scheduler.store.jobs import SORTS
from jobctl.states import JobStatus, allowed_operations
from jobctl.workers.services import Services


def submit(client: TestClient, project: str, **body: Any) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", **body})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def without_waiting(job: dict[str, Any]) -> dict[str, Any]:
    """The job minus `waiting_s`, which grows by itself while the job is PENDING, and `waiting_for`, why it waits
    as of the answer (a submission's answer does not say)."""
    return {
        **{k: v for k, v in job.items() if k not in ("waiting_s", "waiting_for")},
        "steps": [{k: v for k, v in s.items() if k != "waiting_s"} for s in job["steps"]],
    }


# ----------------------------------------------------------------------------------------------- submit


def test_submit_answers_201_with_the_pending_job(client: TestClient, project: str) -> None:
    job = submit(client, project, params={"steps": 4, "seconds": 0.5}, priority=1)
    assert job["project"] == project and job["type"] == "sleep" and job["status"] == "PENDING"
    assert job["priority"] == 1 and job["submitter"] == "admin" and job["attempt"] == 1
    assert job["params"]["steps"] == 4 and job["params"]["seconds"] == 0.5
    assert job["progress"] == 0 and job["target"] is None
    assert job["error"] is None and job["discard_reason"] is None and job["result"] is None
    assert job["started_at"] is None and job["finished_at"] is None and job["created_at"].endswith("Z")
    assert job["allowed"] == ["pause", "discard"]
    assert isinstance(job["id"], str)
    assert [(s["index"], s["name"], s["status"]) for s in job["steps"]] == [
        (i, f"sleep-{i + 1}", "PENDING") for i in range(4)
    ]
    assert set(job["steps"][0]) == {
        "index",
        "name",
        "status",
        "progress",
        "started_at",
        "finished_at",
        "duration_s",
        "waiting_s",
        "attempt",
        "error",
        "info",
        "output",
        "retry_at",
        "task_id",
        "flower_url",
    }
    assert job["steps"][0]["error"] is None and job["steps"][0]["info"] == {}
    assert job["error_code"] is None and job["waiting_for"] is None  # told when the job is read
    assert job["steps"][0]["task_id"] is None and job["steps"][0]["flower_url"] is None  # never dispatched
    assert submit(client, project)["priority"] == 3  # the default


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"type": "no-such-type"}, "unknown job type"),
        ({"params": {"steps": 0}}, "steps"),
        ({"params": {"steps": 51}}, "steps"),
        ({"params": {"seconds": -1}}, "seconds"),
        ({"params": {"unknown": 1}}, "unknown"),
        ({"priority": 5}, "priority"),
        ({"priority": -1}, "priority"),
        ({"surprise": True}, "surprise"),
        ({"target": {"kind": "record", "name": "x", "version": 1}}, "version"),
        ({"target": {"kind": "file", "name": "../etc/passwd"}}, "file root"),
        ({"target": {"kind": "file", "name": "/etc/passwd"}}, "file root"),
        ({"target": {"kind": "file", "name": "no-such-file.txt"}}, "does not exist"),
        ({"target": {"kind": "record", "name": "never-registered"}}, "does not exist"),
        ({"target": {"kind": "nosuchkind", "name": "x"}}, "unknown target kind"),
        ({"type": "file_digest"}, "target"),
        ({"type": ""}, "type"),
        ({"params": [1, 2]}, "params"),
    ],
)
def test_invalid_submit_is_422(client: TestClient, project: str, body: dict[str, Any], where: str) -> None:
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", **body})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert where in error["message"], error
    assert client.get("/api/v1/jobs", params={"project": project}).json()["total"] == 0  # nothing was created


def test_submit_to_a_missing_project_is_404(client: TestClient, unique: Callable[[str], str]) -> None:
    response = client.post("/api/v1/jobs", json={"project": unique("nope"), "type": "sleep"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"type": "no-such-type"},
        {"type": "sleep", "params": {"seconds": "long"}},
        {"type": "sleep", "target": {"kind": "record", "name": "t"}},
    ],
)
def test_a_missing_project_is_told_before_what_is_wrong_with_the_body(
    client: TestClient, unique: Callable[[str], str], body: dict[str, object]
) -> None:
    response = client.post("/api/v1/jobs", json={"project": unique("nope"), **body})
    assert response.status_code == 404 and "not found" in response.json()["error"]["message"], response.text


def test_submit_file_digest_pins_the_file_version(client: TestClient, project: str, file_root: Path) -> None:
    (file_root / "api-digest.txt").write_bytes(b"hello")
    job = submit(client, project, type="file_digest", target={"kind": "file", "name": "api-digest.txt"})
    assert job["target"]["kind"] == "file" and job["target"]["name"] == "api-digest.txt"
    assert job["target"]["version"].startswith("5:")
    assert [s["name"] for s in job["steps"]] == ["stat", "digest", "record"]


# ------------------------------------------------------------------------------------------------- show


def test_show_job_and_404(client: TestClient, project: str) -> None:
    job = submit(client, project)
    shown = client.get(f"/api/v1/jobs/{job['id']}")
    assert shown.status_code == 200
    assert without_waiting(shown.json()) == without_waiting(job)
    missing = client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


def test_steps_show_their_output_and_retry_time(client: TestClient, project: str, services: Services) -> None:
    """A FINISHED step's `output` is what it returned (JSON); a step waiting to retry shows `retry_at` (ISO UTC).
    The rows are set as a worker leaves them (no worker runs here)."""
    job = submit(client, project, params={"steps": 3})
    retry_at = datetime(2031, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)
    with services.db.write() as s:
        step = models.Step
        s.execute(
            update(step)
            .where(step.job_id == job["id"], step.index == 0)
            .values(status="FINISHED", progress=100.0, attempt=1, output={"rows": 3, "names": ["a", "é"]})
        )
        s.execute(update(step).where(step.job_id == job["id"], step.index == 1).values(attempt=1, retry_at=retry_at))
    steps = client.get(f"/api/v1/jobs/{job['id']}").json()["steps"]
    assert steps[0]["output"] == {"rows": 3, "names": ["a", "é"]} and steps[0]["retry_at"] is None
    assert steps[1]["output"] is None and steps[1]["retry_at"] == "2031-05-01T12:00:00.250000Z"
    assert steps[2]["output"] is None and steps[2]["retry_at"] is None


# ------------------------------------------------------------------------------------------------- list


def test_list_filters_sorts_and_pages(client: TestClient, unique: Callable[[str], str]) -> None:
    first, second = unique("la"), unique("lb")
    for name in (first, second):
        assert client.post("/api/v1/projects", json={"name": name}).status_code == 201
    a = [submit(client, first) for _ in range(3)]
    b = [submit(client, second, params={"steps": 1})]
    paused = client.post(f"/api/v1/jobs/{a[0]['id']}/pause").json()
    assert paused["status"] == "PAUSED"

    def ids(**params: Any) -> list[str]:
        response = client.get("/api/v1/jobs", params=params)
        assert response.status_code == 200, response.text
        return [j["id"] for j in response.json()["items"]]

    page = client.get("/api/v1/jobs", params={"project": first}).json()
    assert page["total"] == 3 and page["page"] == 1 and page["page_size"] == 50
    assert [j["id"] for j in page["items"]] == [j["id"] for j in reversed(a)]  # default: newest first
    assert ids(project=first, sort="created_at") == [j["id"] for j in a]
    assert set(ids(project=[first, second])) == {j["id"] for j in a + b}
    assert ids(project=[first, second], status="PAUSED") == [a[0]["id"]]
    assert set(ids(project=[first, second], status=["PAUSED", "PENDING"])) == {j["id"] for j in a + b}
    assert ids(project=[first, second], sort="project")[-1] == b[0]["id"]
    assert ids(project=[first, second], sort="-project")[0] == b[0]["id"]
    assert ids(project=first, type="file_digest") == []
    assert ids(project=first, q=a[1]["id"][:12]) == [a[1]["id"]]
    assert len(ids(project=first, period="day")) == 3
    assert ids(project=first, since="2000-01-01T00:00:00Z", until="2000-01-02T00:00:00Z") == []
    assert len(ids(project=first, since="2000-01-01T00:00:00")) == 3
    assert set(ids(id=[a[1]["id"], b[0]["id"], "no-such-job"])) == {a[1]["id"], b[0]["id"]}
    assert ids(id=[a[1]["id"], b[0]["id"]], project=second) == [b[0]["id"]]  # with the other filters: AND
    assert ids(id=[a[0]["id"], a[1]["id"]], status="PAUSED") == [a[0]["id"]]

    one = client.get("/api/v1/jobs", params={"project": first, "page_size": 2, "page": 2, "sort": "created_at"})
    body = one.json()
    assert body["total"] == 3 and body["page"] == 2 and body["page_size"] == 2
    assert [j["id"] for j in body["items"]] == [a[2]["id"]]
    beyond = client.get("/api/v1/jobs", params={"project": first, "page": 9}).json()
    assert beyond["items"] == [] and beyond["total"] == 3
    assert b[0]["id"] in ids(page_size=200)  # admin, no project: every project


@pytest.mark.parametrize(
    "params",
    [
        {"status": "BOGUS"},
        {"status": "pending"},
        {"sort": "name"},
        {"sort": "--created_at"},
        {"period": "century"},
        {"period": "day", "since": "2024-01-01T00:00:00Z"},
        {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"},
        {"since": "yesterday"},
        {"page": 0},
        {"page_size": 0},
        {"page_size": 201},
        {"id": ""},
        {"id": "x" * 65},
        {"id": [f"j{i}" for i in range(201)]},
    ],
)
def test_invalid_list_query_is_422(client: TestClient, params: dict[str, Any]) -> None:
    response = client.get("/api/v1/jobs", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"


def test_list_of_a_missing_project_is_404(client: TestClient, unique: Callable[[str], str]) -> None:
    assert client.get("/api/v1/jobs", params={"project": unique("gone")}).status_code == 404


def test_every_store_sort_is_offered() -> None:
    from jobctl.api.schemas import JobSort

    assert {s.value for s in JobSort} == set(SORTS) | {f"-{k}" for k in SORTS}


# ---------------------------------------------------------------------------------------------- operate


def test_refused_operation_is_409_and_changes_nothing(client: TestClient, project: str) -> None:
    job = submit(client, project)
    url = f"/api/v1/jobs/{job['id']}"
    events = client.get(f"{url}/events").json()
    for method, path in [("DELETE", url), ("POST", f"{url}/resume"), ("POST", f"{url}/restart")]:
        before = client.get(url).json()
        response = client.request(method, path)
        assert response.status_code == 409, response.text
        body = response.json()
        assert body["status"] == "PENDING" and body["allowed"] == ["pause", "discard"]
        assert body["error"]["code"] == "conflict"
        assert body["error"]["status"] == "PENDING" and body["error"]["allowed"] == ["pause", "discard"]
        after = client.get(url).json()
        assert without_waiting(after) == without_waiting(before)
        assert after["waiting_s"] >= before["waiting_s"]
    assert client.get(f"{url}/events").json() == events

    # A PAUSED job's clock stands still, so here the job must be byte-for-byte unchanged.
    assert client.post(f"{url}/pause").status_code == 200
    before = client.get(url)
    events = client.get(f"{url}/events").json()
    for method, path in [("DELETE", url), ("POST", f"{url}/pause")]:
        refused = client.request(method, path)
        assert refused.status_code == 409
        assert refused.json()["status"] == "PAUSED"
        assert refused.json()["allowed"] == allowed_operations(JobStatus.PAUSED)
        assert client.get(url).content == before.content
    assert client.get(f"{url}/events").json() == events


def test_operations_follow_the_state_table(client: TestClient, project: str) -> None:
    job = submit(client, project, params={"steps": 2})
    url = f"/api/v1/jobs/{job['id']}"

    paused = client.post(f"{url}/pause")
    assert paused.status_code == 200
    assert paused.json()["status"] == "PAUSED" and paused.json()["allowed"] == ["resume", "restart", "discard"]

    resumed = client.post(f"{url}/resume").json()
    assert resumed["status"] == "PENDING"
    client.post(f"{url}/pause")
    restarted = client.post(f"{url}/restart").json()
    assert restarted["status"] == "PENDING" and restarted["attempt"] == 2

    discarded = client.post(f"{url}/discard").json()
    assert discarded["status"] == "DISCARDED" and discarded["allowed"] == ["delete"]
    assert discarded["finished_at"] is not None
    assert [s["status"] for s in discarded["steps"]] == ["DISCARDED", "DISCARDED"]
    assert client.post(f"{url}/discard").status_code == 409  # a final state is never left

    deleted = client.delete(url)
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(url).status_code == 404
    assert client.delete(url).status_code == 404
    assert client.post(f"{url}/pause").status_code == 404


# ------------------------------------------------------------------------------------------ events, logs


def test_events_record_every_change(client: TestClient, project: str) -> None:
    job = submit(client, project)
    url = f"/api/v1/jobs/{job['id']}"
    client.post(f"{url}/pause")
    client.post(f"{url}/discard")
    events = client.get(f"{url}/events")
    assert events.status_code == 200
    rows = events.json()
    assert [(e["action"], e["from"], e["to"], e["actor"]) for e in rows] == [
        ("submit", None, "PENDING", "admin"),
        ("pause", "PENDING", "PAUSED", "admin"),
        ("discard", "PAUSED", "DISCARDED", "admin"),
    ]
    assert set(rows[0]) == {"at", "actor", "action", "from", "to", "reason"}
    assert all(e["at"].endswith("Z") for e in rows)
    assert client.get("/api/v1/jobs/0123456789abcdef0123456789abcdef/events").status_code == 404


def test_step_log_is_text(client: TestClient, project: str) -> None:
    job = submit(client, project, params={"steps": 2})
    url = f"/api/v1/jobs/{job['id']}/steps"
    log = client.get(f"{url}/1/log")
    assert log.status_code == 200
    assert log.headers["content-type"].startswith("text/plain")
    assert log.text == ""
    assert client.get(f"{url}/0/log", params={"tail": 10}).text == ""
    assert client.get(f"{url}/2/log").status_code == 404
    assert client.get(f"{url}/0/log", params={"tail": 0}).status_code == 422
    assert client.get(f"{url}/-1/log").status_code == 422


def test_the_openapi_document_states_the_rules_the_list_and_batch_enforce(anonymous: TestClient) -> None:
    document = anonymous.get("/openapi.json").json()
    described = {p["name"]: p.get("description", "") for p in document["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert "not with since/until" in described["period"] and "not with period" in described["since"]
    assert "not after until" in described["since"] and "not with period" in described["until"]
    assert "exactly one of the two" in document["components"]["schemas"]["JobBatch"]["description"]
