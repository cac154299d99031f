"""`PATCH /api/v1/jobs/{id}` `{params}`: editing a PAUSED or ERROR job's params (docs/contract.md §2.2, §4.2).

No worker runs here: a job is PAUSED by pausing it while PENDING, and put in ERROR straight through the store
(dispatched, then failed), as a worker would leave it. The run of an edited job is tests/integration/test_edit.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient

from jobctl.scheduler.store import transitions
from jobctl.states import Action, JobStatus, allowed_operations
from jobctl.workers.services import Services

PARAMS = {"steps": 3, "seconds": 0.5}
#: the params as the job type stores them: validated, its defaults filled in
STORED = {"steps": 3, "seconds": 0.5, "fail_at": None, "fail_times": None, "subprocess": False}


def submit(client: TestClient, project: str, params: dict[str, Any] | None = None, status: str = "PENDING") -> str:
    """A `sleep` job of `project`, brought to `status` (PENDING, PAUSED or DISCARDED) through the API."""
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "params": params or PARAMS})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    if status != "PENDING":
        action = {"PAUSED": "pause", "DISCARDED": "discard"}[status]
        assert client.post(f"/api/v1/jobs/{job_id}/{action}").json()["status"] == status
    return job_id


def failed(services: Services, client: TestClient, project: str) -> str:
    """A job in ERROR: its first step dispatched, then failed for good, as a worker would record it."""
    job_id = submit(client, project)
    with services.db.write() as s:
        transitions.transition(s, job_id, Action.DISPATCH, "test")
    with services.db.write() as s:
        transitions.transition(s, job_id, Action.FAIL, "test", "step 0 failed")
    return job_id


GROWING = ("waiting_s", "duration_s", "waiting_for")


def edit(client: TestClient, job_id: str, params: Any, headers: dict[str, str] | None = None) -> Any:
    return client.patch(f"/api/v1/jobs/{job_id}", json={"params": params}, headers=headers)


def snapshot(client: TestClient, job_id: str) -> tuple[Any, Any]:
    """The job (minus the times that grow by themselves while it waits or runs) and its events."""
    job = {k: v for k, v in client.get(f"/api/v1/jobs/{job_id}").json().items() if k not in GROWING}
    job["steps"] = [{k: v for k, v in s.items() if k not in GROWING} for s in job["steps"]]
    return job, client.get(f"/api/v1/jobs/{job_id}/events").json()


def test_a_paused_jobs_params_are_replaced_and_the_edit_is_an_event(client: TestClient, project: str) -> None:
    job_id = submit(client, project, status="PAUSED")

    response = edit(client, job_id, {"steps": 3, "seconds": 2, "fail_at": 1})
    assert response.status_code == 200, response.text
    job = response.json()
    new = {**STORED, "seconds": 2.0, "fail_at": 1}  # validated and completed by the type, as at submission
    assert job["status"] == "PAUSED" and job["params"] == new
    assert job["allowed"] == allowed_operations(JobStatus.PAUSED)
    assert client.get(f"/api/v1/jobs/{job_id}").json()["params"] == new

    events = client.get(f"/api/v1/jobs/{job_id}/events").json()
    assert [(e["action"], e["from"], e["to"]) for e in events] == [
        ("submit", None, "PENDING"),
        ("pause", "PENDING", "PAUSED"),
        ("edit", "PAUSED", "PAUSED"),
    ]
    last = events[-1]
    assert last["actor"] == "admin" and last["reason"] == "params edited: fail_at, seconds"
    assert last["details"] == {"old": STORED, "new": new}
    assert all("details" not in e for e in events[:-1])  # only an event with details has them

    resumed = client.post(f"/api/v1/jobs/{job_id}/resume").json()
    assert resumed["status"] == "PENDING" and resumed["params"] == new


def test_an_error_job_is_edited_and_keeps_its_error_until_resumed(
    client: TestClient, services: Services, project: str
) -> None:
    job_id = failed(services, client, project)
    before = client.get(f"/api/v1/jobs/{job_id}").json()
    assert before["status"] == "ERROR" and before["error"]

    job = edit(client, job_id, {**PARAMS, "seconds": 0.1}).json()
    assert job["status"] == "ERROR" and job["params"]["seconds"] == 0.1
    assert job["error"] == before["error"] and job["steps"][0]["status"] == "ERROR"
    resumed = client.post(f"/api/v1/jobs/{job_id}/resume").json()
    assert resumed["status"] == "PENDING" and resumed["error"] is None and resumed["params"]["seconds"] == 0.1


def test_the_same_params_change_nothing_and_record_nothing(client: TestClient, project: str) -> None:
    job_id = submit(client, project, status="PAUSED")
    before = snapshot(client, job_id)
    response = edit(client, job_id, PARAMS)  # the same once the defaults are filled in
    assert response.status_code == 200 and response.json()["params"] == STORED
    assert snapshot(client, job_id) == before


def test_a_job_that_is_not_paused_or_in_error_refuses_with_its_state(
    client: TestClient, services: Services, project: str
) -> None:
    pending, discarded = submit(client, project), submit(client, project, status="DISCARDED")
    running = submit(client, project)
    with services.db.write() as s:
        transitions.transition(s, running, Action.DISPATCH, "test")
    for job_id, status in ((pending, "PENDING"), (running, "RUNNING"), (discarded, "DISCARDED")):
        before = snapshot(client, job_id)
        response = edit(client, job_id, {**PARAMS, "seconds": 9})
        assert response.status_code == 409, response.text
        body = response.json()
        allowed = allowed_operations(JobStatus(status))
        assert body["status"] == status and body["allowed"] == allowed
        assert body["error"]["code"] == "conflict" and body["error"]["status"] == status
        assert body["error"]["message"] == f"cannot edit a job that is {status}"
        assert snapshot(client, job_id) == before, status
    # its state is told first, even when the params are refused too
    assert edit(client, pending, {"steps": 0}).status_code == 409


def test_params_the_type_refuses_are_422_with_its_message_and_change_nothing(client: TestClient, project: str) -> None:
    job_id = submit(client, project, status="PAUSED")
    before = snapshot(client, job_id)
    for params, message in (
        ({"steps": 3, "seconds": -1}, "invalid params for job type 'sleep': seconds: "),
        ({"steps": 3, "colour": "red"}, "invalid params for job type 'sleep': colour: "),
        ({"steps": 3, "fail_at": 7}, "fail_at must be a step index below steps (3)"),
        ({"steps": 4}, "these params plan other steps (sleep-1, sleep-2, sleep-3, sleep-4) than the job has"),
    ):
        response = edit(client, job_id, params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "invalid"
        assert message in response.json()["error"]["message"], params
        assert snapshot(client, job_id) == before, params


def test_a_body_that_is_not_new_params_is_422(client: TestClient, project: str) -> None:
    job_id = submit(client, project, status="PAUSED")
    for body in ({}, {"params": [1]}, {"params": "x"}, {"params": {}, "priority": 1}, {"params": None}):
        response = client.patch(f"/api/v1/jobs/{job_id}", json=body)
        assert response.status_code == 422, (body, response.text)
    assert client.get(f"/api/v1/jobs/{job_id}").json()["params"] == STORED


def test_editing_needs_the_operator_role_in_the_jobs_project(
    client: TestClient, project: str, new_project: Callable[[], str], user: Callable[..., dict[str, str]]
) -> None:
    job_id = submit(client, project, status="PAUSED")
    before = snapshot(client, job_id)
    viewer, outsider = user({project: "viewer"}), user({new_project(): "operator"})
    assert edit(client, job_id, {**PARAMS, "seconds": 3}, viewer).status_code == 403
    assert edit(client, job_id, {**PARAMS, "seconds": 3}, outsider).status_code == 404  # as if it did not exist
    assert edit(client, "0" * 32, PARAMS).status_code == 404
    assert snapshot(client, job_id) == before

    operator = user({project: "operator"})
    done = edit(client, job_id, {**PARAMS, "seconds": 3}, operator)
    assert done.status_code == 200 and done.json()["params"]["seconds"] == 3
    events = client.get(f"/api/v1/jobs/{job_id}/events", headers=viewer).json()
    assert events[-1]["action"] == "edit" and events[-1]["details"]["new"]["seconds"] == 3


def test_the_openapi_document_states_the_edit(client: TestClient) -> None:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    patch = spec["paths"]["/api/v1/jobs/{job_id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobEdit")
    assert {"403", "404", "409", "422"} <= set(patch["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["JobEdit"]["required"] == ["params"] and schemas["JobEdit"]["additionalProperties"] is False
    assert "description" in schemas["JobEdit"]["properties"]["params"]
    assert "details" in schemas["Event"]["properties"] and "details" not in schemas["Event"].get("required", [])
