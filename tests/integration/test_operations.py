"""All 30 (operation, state) pairs through the HTTP API on a live system (issue acceptance 6).

Every state is reached through real transitions. An allowed pair must do what docs/contract.md §2 says; a refused pair
must answer 409 with `status` and `allowed` and leave the job's rows exactly as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from jobctl.api.app import create_app
from jobctl.states import OPERATIONS, JobStatus, allowed_from, allowed_operations, is_valid_path
from tests.integration.system import System

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer test-admin-token"}
LONG = {"steps": 2, "seconds": 120}


@pytest.fixture(scope="module")
def api(system: System) -> Iterator[TestClient]:
    with TestClient(create_app(system.svc), headers=ADMIN) as client:
        yield client


@pytest.fixture(scope="module")
def blocked(system: System) -> Iterator[str]:
    """A project whose only slot is held by a long job: jobs submitted to it stay PENDING."""
    name = system.project(max_running=1)
    blocker = system.submit(name, params=LONG)
    system.wait_step_running(blocker.id, 0)
    yield name
    system.settle(name)


def _reach(system: System, state: str, blocked: str, free: str) -> str:
    """A fresh job in `state`, reached through real transitions."""
    if state == "PENDING":
        return system.submit(blocked, params=LONG).id
    if state == "PAUSED":
        job = system.submit(blocked, params=LONG)
        system.op(job.id, "pause")
        return job.id
    if state == "DISCARDED":
        job = system.submit(blocked, params=LONG)
        system.op(job.id, "discard")
        return job.id
    if state == "RUNNING":
        job = system.submit(free, params=LONG)
        system.wait_step_running(job.id, 0)
        return job.id
    if state == "ERROR":
        job = system.submit(free, params={"steps": 2, "seconds": 0.05, "fail_at": 1})
        system.wait_status(job.id, "ERROR")
        return job.id
    if state == "FINISHED":
        job = system.submit(free, params={"steps": 2, "seconds": 0})
        system.wait_status(job.id, "FINISHED")
        return job.id
    raise AssertionError(state)


# Columns the running attempt itself keeps writing while it runs (its heartbeat), whatever the API does.
LIVE_STEP_COLUMNS = {"progress", "lease_until", "checkpoint"}


def _rows(system: System, job_id: str) -> dict[str, Any]:
    """Every stored row of the job, as raw values."""
    with system.svc.db.engine.connect() as conn:

        def q(sql: str) -> list[dict[str, Any]]:
            return [dict(r._mapping) for r in conn.execute(text(sql), {"id": job_id})]

        return {
            "job": q("SELECT * FROM jobs WHERE id = :id"),
            "steps": q("SELECT * FROM steps WHERE job_id = :id ORDER BY idx"),
            "events": q("SELECT * FROM events WHERE job_id = :id ORDER BY id"),
            "logs": q("SELECT * FROM step_logs WHERE job_id = :id ORDER BY id"),
        }


def _without_live(rows: dict[str, Any]) -> dict[str, Any]:
    steps = [{k: v for k, v in step.items() if k not in LIVE_STEP_COLUMNS} for step in rows["steps"]]
    return {**rows, "steps": steps, "logs": len(rows["logs"])}


PAIRS = [(op.value, state.value) for op in OPERATIONS for state in JobStatus]
assert len(PAIRS) == 30


def test_every_operation_in_every_state(system: System, api: TestClient, blocked: str, project: str) -> None:
    free = project
    failures: list[str] = []
    for op, state in PAIRS:
        job_id = _reach(system, state, blocked, free)
        assert system.job(job_id).status.value == state
        before = _rows(system, job_id)
        response = api.delete(f"/api/v1/jobs/{job_id}") if op == "delete" else api.post(f"/api/v1/jobs/{job_id}/{op}")
        allowed = JobStatus(state) in allowed_from(_action(op))
        try:
            if allowed:
                _check_allowed(system, api, op, state, job_id, response, before)
            else:
                _check_refused(system, state, job_id, response, before)
        except AssertionError as exc:
            failures.append(f"{op} from {state}: {exc}")
        system.settle(free)
    assert not failures, "\n".join(failures)


def _action(op: str) -> Any:
    from jobctl.states import Action

    return Action(op)


def _check_refused(system: System, state: str, job_id: str, response: Any, before: dict[str, Any]) -> None:
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["error"]["code"] == "conflict"
    assert body["status"] == state and body["error"]["status"] == state
    assert body["allowed"] == allowed_operations(JobStatus(state))
    after = _rows(system, job_id)
    if state == "RUNNING":
        assert _without_live(after) == _without_live(before)
    else:
        assert after == before


def _check_allowed(
    system: System, api: TestClient, op: str, state: str, job_id: str, response: Any, before: dict[str, Any]
) -> None:
    if op == "delete":
        assert response.status_code == 204, response.text
        assert api.get(f"/api/v1/jobs/{job_id}").status_code == 404
        assert _rows(system, job_id) == {"job": [], "steps": [], "events": [], "logs": []}
        return
    assert response.status_code == 200, response.text
    job = response.json()
    expected = {"pause": "PAUSED", "resume": "PENDING", "restart": "PENDING", "discard": "DISCARDED"}[op]
    assert job["status"] == expected
    assert set(job["allowed"]) == set(allowed_operations(JobStatus(expected)))
    steps = job["steps"]
    if op == "pause" and state == "RUNNING":
        assert steps[0]["status"] == "PAUSED"
    if op == "resume":
        assert job["error"] is None
        assert all(s["status"] in ("PENDING", "FINISHED") for s in steps)
    if op == "restart":
        assert job["attempt"] == before["job"][0]["attempt"] + 1
        assert all(s["status"] == "PENDING" and s["started_at"] is None and s["attempt"] == 0 for s in steps)
        assert _rows(system, job_id)["logs"] == []
    if op == "discard":
        assert all(s["status"] in ("DISCARDED", "FINISHED") for s in steps)
        assert job["finished_at"] is not None
    assert is_valid_path(system.events(job_id))
