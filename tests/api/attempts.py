"""Attempts for the API tests, where no worker runs: a job dispatched and its step started through the same store
and `Operations` calls the scheduler and a worker make (`transition(DISPATCH)`, `Operations.start`), so that what
a worker reports (`Operations.heartbeat`, `Operations.record`) goes the real way."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from jobctl.scheduler.store import transitions
from jobctl.scheduler.store.leases import StepStart
from jobctl.states import Action
from jobctl.workers.services import Services

WORKER = "tester@api"


def submit(client: TestClient, project: str, **body: Any) -> dict[str, Any]:
    """A job submitted through `POST /api/v1/jobs` (a `sleep` job unless `type` says otherwise)."""
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", **body})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def dispatch(services: Services, job_id: str) -> str:
    """Dispatch the PENDING job as a scheduler pass does (RUNNING, its step's attempt claimed); the attempt's token."""
    with services.db.write() as s:
        done = transitions.transition(s, job_id, Action.DISPATCH, "scheduler@test")
    assert done.dispatch is not None
    return done.dispatch.fence


def start(services: Services, job_id: str, fence: str, index: int = 0) -> StepStart:
    """Start the claimed attempt as the worker that received its message does."""
    begun = services.ops.start(job_id, index, fence, WORKER)
    assert begun is not None and not isinstance(begun.job, str)
    return begun.start


def run(services: Services, job_id: str) -> StepStart:
    """Dispatch the job and start its step: a RUNNING attempt."""
    return start(services, job_id, dispatch(services, job_id))
