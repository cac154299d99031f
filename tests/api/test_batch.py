"""`POST /api/v1/jobs/batch`: per-job outcomes, atomic batches, filters, permissions and the side effects.

No worker runs here, so jobs are put in states reachable without one: PENDING, PAUSED (pause a pending job),
DISCARDED, and deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.scheduler.batch import BatchRefused
from jobctl.scheduler.executor import Notices
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.records import Dispatch, JobRecord
from jobctl.states import Action, JobStatus
from jobctl.workers.services import Services

BATCH = "/api/v1/jobs/batch"
MISSING = "0123456789abcdef0123456789abcdef"


def submit(client: TestClient, project: str, status: str = "PENDING") -> str:
    """A one-step job of `project`, brought to `status` (PENDING, PAUSED or DISCARDED) through the API."""
    response = client.post(
        "/api/v1/jobs", json={"project": project, "type": "sleep", "params": {"steps": 1, "seconds": 0}}
    )
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    if status != "PENDING":
        action = {"PAUSED": "pause", "DISCARDED": "discard"}[status]
        assert client.post(f"/api/v1/jobs/{job_id}/{action}").json()["status"] == status
    return job_id


def snapshot(client: TestClient, job_id: str) -> tuple[int, Any, Any]:
    """The job (minus `waiting_s`, which grows by itself while PENDING) and its events."""
    job = client.get(f"/api/v1/jobs/{job_id}")
    if job.status_code == 404:
        return 404, None, None
    body = {k: v for k, v in job.json().items() if k != "waiting_s"}
    body["steps"] = [{k: v for k, v in s.items() if k != "waiting_s"} for s in body["steps"]]
    return job.status_code, body, client.get(f"/api/v1/jobs/{job_id}/events").json()


def status_of(client: TestClient, job_id: str) -> str | None:
    response = client.get(f"/api/v1/jobs/{job_id}")
    return None if response.status_code == 404 else str(response.json()["status"])


# ------------------------------------------------------------------------------------------------ by ids


def test_admin_batch_over_three_projects_reports_each_job(client: TestClient, new_project: Callable[[], str]) -> None:
    first, second, third = new_project(), new_project(), new_project()
    pending, paused, discarded = (
        submit(client, first),
        submit(client, second, "PAUSED"),
        submit(client, third, "DISCARDED"),
    )

    response = client.post(BATCH, json={"action": "pause", "ids": [pending, paused, discarded, MISSING, pending]})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "results": [
            {"id": pending, "ok": True, "status": "PAUSED", "error": None},
            {"id": paused, "ok": False, "status": "PAUSED", "error": "cannot pause a job that is PAUSED"},
            {"id": discarded, "ok": False, "status": "DISCARDED", "error": "cannot pause a job that is DISCARDED"},
            {"id": MISSING, "ok": False, "status": None, "error": f"job {MISSING!r} not found"},
        ]  # the id given twice counts once
    }
    assert [status_of(client, i) for i in (pending, paused, discarded)] == ["PAUSED", "PAUSED", "DISCARDED"]
    events = client.get(f"/api/v1/jobs/{pending}/events").json()
    assert [(e["action"], e["actor"]) for e in events] == [("submit", "admin"), ("pause", "admin")]

    deleted = client.post(BATCH, json={"action": "delete", "ids": [discarded, paused]}).json()["results"]
    assert deleted == [
        {"id": discarded, "ok": True, "status": None, "error": None},
        {"id": paused, "ok": False, "status": "PAUSED", "error": "cannot delete a job that is PAUSED"},
    ]
    assert status_of(client, discarded) is None


def test_atomic_batch_with_a_refused_job_is_409_and_changes_nothing(
    client: TestClient, new_project: Callable[[], str]
) -> None:
    first, second, third = new_project(), new_project(), new_project()
    ids = [submit(client, first), submit(client, second, "PAUSED"), submit(client, third), submit(client, first)]
    before = [snapshot(client, i) for i in ids]

    response = client.post(BATCH, json={"action": "resume", "ids": ids, "atomic": True})
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "conflict" and "nothing was changed" in error["message"]
    assert error["refused"] == [
        {"id": i, "ok": False, "status": "PENDING", "error": "cannot resume a job that is PENDING"}
        for i in (ids[0], ids[2], ids[3])
    ]
    assert [snapshot(client, i) for i in ids] == before

    with_missing = client.post(BATCH, json={"action": "pause", "ids": [ids[0], MISSING], "atomic": True})
    assert with_missing.status_code == 409
    assert with_missing.json()["error"]["refused"] == [
        {"id": MISSING, "ok": False, "status": None, "error": f"job {MISSING!r} not found"}
    ]
    assert snapshot(client, ids[0]) == before[0]

    done = client.post(BATCH, json={"action": "discard", "ids": ids, "atomic": True})
    assert done.status_code == 200
    assert done.json()["results"] == [{"id": i, "ok": True, "status": "DISCARDED", "error": None} for i in ids]
    assert {status_of(client, i) for i in ids} == {"DISCARDED"}


# ----------------------------------------------------------------------------------------------- filter


def test_filter_resumes_exactly_the_matching_jobs(client: TestClient, new_project: Callable[[], str]) -> None:
    a, other = new_project(), new_project()
    paused = [submit(client, a, "PAUSED") for _ in range(3)]
    untouched = [submit(client, a), submit(client, a, "DISCARDED"), submit(client, other, "PAUSED")]

    response = client.post(BATCH, json={"action": "resume", "filter": {"project": a, "status": ["PAUSED"]}})
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"id": i, "ok": True, "status": "PENDING", "error": None} for i in paused]
    assert [status_of(client, i) for i in paused] == ["PENDING"] * 3
    assert [status_of(client, i) for i in untouched] == ["PENDING", "DISCARDED", "PAUSED"]

    again = client.post(BATCH, json={"action": "resume", "filter": {"project": [a], "status": "PAUSED"}})
    assert again.json() == {"results": []}

    by_id = client.post(BATCH, json={"action": "pause", "filter": {"project": a, "q": paused[1][:16]}})
    assert by_id.json()["results"] == [{"id": paused[1], "ok": True, "status": "PAUSED", "error": None}]
    mixed = client.post(BATCH, json={"action": "pause", "filter": {"project": a}, "atomic": True})
    assert mixed.status_code == 409
    refused = mixed.json()["error"]["refused"]
    assert [(r["id"], r["status"]) for r in refused] == [(paused[1], "PAUSED"), (untouched[1], "DISCARDED")]
    assert [status_of(client, i) for i in paused] == ["PENDING", "PAUSED", "PENDING"]

    none_today = client.post(
        BATCH, json={"action": "pause", "filter": {"project": a, "until": "2000-01-01T00:00:00Z"}, "atomic": True}
    )
    assert none_today.json() == {"results": []}


def test_filter_of_an_invisible_project_is_404(
    client: TestClient,
    user: Callable[..., dict[str, str]],
    new_project: Callable[[], str],
    unique: Callable[[str], str],
) -> None:
    a, b = new_project(), new_project()
    headers = user({a: "operator"})
    for project in (b, unique("missing")):
        response = client.post(BATCH, headers=headers, json={"action": "pause", "filter": {"project": project}})
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


# ---------------------------------------------------------------------------------------------- who may


def test_non_admin_cross_project_batch_is_403(
    client: TestClient, user: Callable[..., dict[str, str]], new_project: Callable[[], str]
) -> None:
    a, b = new_project(), new_project()
    ids = [submit(client, a), submit(client, b)]
    headers = user({a: "operator", b: "operator"})
    for body in (
        {"action": "pause", "ids": ids},
        {"action": "pause", "ids": ids, "atomic": True},
        {"action": "pause", "filter": {}},  # every visible project: both
        {"action": "pause", "filter": {"project": [a, b]}},
        {"action": "pause", "filter": {"project": [a, b], "q": ids[0]}},  # names two projects, matches one
    ):
        response = client.post(BATCH, headers=headers, json=body)
        assert response.status_code == 403, (body, response.text)
        assert "several projects" in response.json()["error"]["message"]
    assert [status_of(client, i) for i in ids] == ["PENDING", "PENDING"]
    one = client.post(BATCH, headers=headers, json={"action": "pause", "filter": {"project": a}})
    assert one.json()["results"] == [{"id": ids[0], "ok": True, "status": "PAUSED", "error": None}]


def test_operator_batch_reports_other_projects_jobs_as_not_found(
    client: TestClient, user: Callable[..., dict[str, str]], new_project: Callable[[], str]
) -> None:
    a, b = new_project(), new_project()
    mine, theirs = submit(client, a), submit(client, b)
    headers = user({a: "operator"})
    before = snapshot(client, theirs)

    response = client.post(BATCH, headers=headers, json={"action": "pause", "ids": [mine, theirs, MISSING]})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0] == {"id": mine, "ok": True, "status": "PAUSED", "error": None}
    hidden, missing = results[1], results[2]
    assert hidden == {"id": theirs, "ok": False, "status": None, "error": f"job {theirs!r} not found"}
    assert {**missing, "id": theirs, "error": missing["error"].replace(MISSING, theirs)} == hidden  # same shape
    assert snapshot(client, theirs) == before

    atomic = client.post(BATCH, headers=headers, json={"action": "discard", "ids": [mine, theirs], "atomic": True})
    assert atomic.status_code == 409
    assert atomic.json()["error"]["refused"] == [hidden]
    assert status_of(client, mine) == "PAUSED" and snapshot(client, theirs) == before

    only_theirs = client.post(BATCH, headers=headers, json={"action": "pause", "ids": [theirs]})
    assert only_theirs.json()["results"] == [hidden]


def test_viewer_batch_is_403(
    client: TestClient, user: Callable[..., dict[str, str]], new_project: Callable[[], str]
) -> None:
    a, empty = new_project(), new_project()
    job = submit(client, a)
    headers = user({a: "viewer", empty: "viewer"})
    for body in (
        {"action": "pause", "ids": [job]},
        {"action": "pause", "filter": {"project": a}},
        {"action": "pause", "filter": {"project": empty}},  # refused for the role, whatever the filter matches
    ):
        response = client.post(BATCH, headers=headers, json=body)
        assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert status_of(client, job) == "PENDING"


# ------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "body",
    [
        {"action": "pause"},
        {"action": "pause", "ids": [MISSING], "filter": {}},
        {"action": "pause", "ids": []},
        {"action": "pause", "ids": [f"{i:032x}" for i in range(1001)]},
        {"action": "explode", "ids": [MISSING]},
        {"action": "submit", "ids": [MISSING]},
        {"action": "pause", "ids": [MISSING], "extra": 1},
        {"action": "pause", "filter": {"status": "BOGUS"}},
        {"action": "pause", "filter": {"sort": "created_at"}},
        {"action": "pause", "filter": {"period": "day", "since": "2024-01-01T00:00:00Z"}},
        {"action": "pause", "filter": {"since": "2024-02-01T00:00:00Z", "until": "2024-01-01T00:00:00Z"}},
    ],
)
def test_invalid_batch_is_422(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post(BATCH, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid"


# -------------------------------------------------------------------------------------------- side effects


class Recorder:
    """An executor and a bus that write down what they are asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def send(self, dispatch: Dispatch) -> None:
        self.calls.append(("send", dispatch.job_id))

    def stop(self, fence: str) -> None:
        self.calls.append(("stop", fence))

    def cleanup(self, job: JobRecord, reason: str, stopped_fence: str | None) -> None:
        self.calls.append(("cleanup", job.id))

    def settle(self) -> None:
        pass

    def notify(self, notices: Notices) -> None:
        self.calls += [("changed", (job.id, job.status)) for job in notices.changed]
        self.calls += [("deleted", job_id) for job_id, _ in notices.deleted]
        if notices.wake:
            self.calls.append(("wake", None))

    def job_changed(self, job: JobRecord) -> None:
        self.notify(Notices([job]))

    def wake_scheduler(self) -> None:
        self.notify(Notices(wake=True))

    def wait_for_wake(self, timeout: float) -> None:
        pass

    def capacity(self, queue: str) -> int:
        return 0


def test_batch_side_effects_run_after_the_commit_like_operate(
    client: TestClient, services: Services, new_project: Callable[[], str]
) -> None:
    a, b = new_project(), new_project()
    first, second = submit(client, a, "PAUSED"), submit(client, b, "PAUSED")
    recorder = Recorder()
    ops = Operations(services.db, recorder, recorder, services.targets, services.settings)

    with pytest.raises(BatchRefused):
        ops.batch([first, second, MISSING], Action.RESUME, "test", atomic=True)
    assert recorder.calls == []  # refused: nothing committed, nothing announced

    items = ops.batch([first, second], Action.RESUME, "test", atomic=True)
    assert [(i.ok, i.status) for i in items] == [(True, JobStatus.PENDING)] * 2
    assert recorder.calls == [
        ("changed", (first, JobStatus.PENDING)),
        ("changed", (second, JobStatus.PENDING)),
        ("wake", None),
    ]

    recorder.calls.clear()
    ops.batch([first, second], Action.DISCARD, "test", atomic=True)
    assert recorder.calls == [
        ("changed", (first, JobStatus.DISCARDED)),
        ("changed", (second, JobStatus.DISCARDED)),
        ("cleanup", first),
        ("cleanup", second),
    ]

    recorder.calls.clear()
    ops.batch([second, first], Action.DELETE, "test", atomic=False)
    assert recorder.calls == [("deleted", second), ("deleted", first)]
