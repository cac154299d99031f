"""Structured failures and step info over HTTP, on SQLite and PostgreSQL: a step's `error` as `{code, message,
hint, at}`, the job's `error` and `error_code`, the list's and the batch filter's `error_code`, a step's `info`
(written fenced by the attempt's token), and what resume and restart clear.

No worker runs here: attempts are started and their outcomes recorded through `Operations`, the calls a worker
makes (tests/api/attempts.py); the codes real steps produce are tested on live workers
(tests/integration/test_diagnosis.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from jobctl.scheduler import failures
from jobctl.scheduler.operations import Failed
from jobctl.scheduler.store import leases, models
from jobctl.workers.services import Services
from tests.api.attempts import WORKER, dispatch, run, start, submit


def job(client: TestClient, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def listed(client: TestClient, **params: Any) -> list[str]:
    answer = client.get("/api/v1/jobs", params={"page_size": 200, **params})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def fail(
    services: Services, job_id: str, message: str, code: str = failures.EXCEPTION, hint: str | None = None
) -> None:
    """A job whose step's only attempt failed for good with this failure."""
    attempt = run(services, job_id)
    assert services.ops.record(attempt, Failed(message, code=code, hint=hint), WORKER).accepted


# --------------------------------------------------------------------------------------------- the shapes


def test_a_failed_step_shows_its_code_message_hint_and_time(
    client: TestClient, project: str, services: Services
) -> None:
    submitted = submit(client, project, params={"steps": 2, "seconds": 0})
    assert [s["error"] for s in submitted["steps"]] == [None, None]
    before = datetime.now(UTC)
    fail(services, submitted["id"], "the export table is locked", "table-locked", "wait for the nightly load to end")

    failed = job(client, submitted["id"])
    assert failed["status"] == "ERROR"
    assert failed["error"] == "the export table is locked" and failed["error_code"] == "table-locked"
    error = failed["steps"][0]["error"]
    assert set(error) == {"code", "message", "hint", "at"}
    assert error["code"] == "table-locked" and error["message"] == "the export table is locked"
    assert error["hint"] == "wait for the nightly load to end"
    assert before <= datetime.fromisoformat(error["at"]) <= datetime.now(UTC)
    assert failed["steps"][1]["error"] is None  # the step that never ran
    assert failed["waiting_for"] is None  # only a PENDING job waits

    events = client.get(f"/api/v1/jobs/{submitted['id']}/events").json()
    assert events[-1]["action"] == "fail" and events[-1]["reason"] == "step 0 failed"


def test_retries_that_ran_out_keep_the_last_failures_code_and_say_so(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    first = run(services, job_id)
    later = Failed("disk full", retry=True, delay_s=60, code="disk-full", hint="free some space")
    assert services.ops.record(first, later, WORKER).accepted
    waiting = job(client, job_id)
    assert waiting["status"] == "PENDING" and waiting["steps"][0]["error"] is None  # no error while it waits
    assert waiting["waiting_for"].startswith("retry at ")

    second = run(services, job_id)  # its retry, dispatched (as the scheduler does once it is due)
    assert second.failures == 1
    assert services.ops.record(second, Failed("disk full", code="disk-full", hint="free some space"), WORKER).accepted
    failed = job(client, job_id)
    message = "disk full (after 2 attempts, no retry left)"
    assert failed["error"] == message and failed["error_code"] == "disk-full"
    assert failed["steps"][0]["error"]["message"] == message
    assert failed["steps"][0]["error"]["hint"] == "free some space"
    reasons = [e["reason"] for e in client.get(f"/api/v1/jobs/{job_id}/events").json()]
    assert reasons[-1] == "step 0 failed 2 times"
    assert "step 0 failed: [disk-full] disk full (hint: free some space); retrying in 60s" in reasons


def test_a_lost_worker_fails_the_job_with_jobctls_code_and_hint(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    attempt = run(services, job_id)
    with services.db.write() as s:  # its heartbeats stopped long ago
        s.execute(
            update(models.Step)
            .where(models.Step.job_id == job_id)
            .values(lease_until=datetime.now(UTC) - timedelta(minutes=1))
        )
    with services.db.read() as s:
        lost = [lease for lease in leases.expired_leases(s, datetime.now(UTC)) if lease.job_id == job_id]
    assert [lease.fence for lease in lost] == [attempt.fence]
    services.ops.worker_lost(lost[0], retry=False, actor="scheduler@test")
    failed = job(client, job_id)
    assert failed["error_code"] == failures.WORKER_LOST
    assert failed["error"] == f"worker lost: worker {WORKER} lost during step 0 (attempt 1)"
    assert failed["steps"][0]["error"]["code"] == failures.WORKER_LOST
    assert failed["steps"][0]["error"]["hint"] == failures.CODES[failures.WORKER_LOST]


def test_a_failure_recorded_before_codes_shows_a_null_code(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    fail(services, job_id, "boom")
    with services.db.write() as s:  # as a failure recorded by a jobctl without codes reads
        s.execute(update(models.Step).where(models.Step.job_id == job_id).values(error_code=None, error_hint=None))
    error = job(client, job_id)["steps"][0]["error"]
    assert error["code"] is None and error["message"] == "boom"


# ------------------------------------------------------------------------------------------------- info


def test_a_steps_info_is_written_with_its_heartbeat_and_shown_with_the_step(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 2, "seconds": 0})["id"]
    assert [s["info"] for s in job(client, job_id)["steps"]] == [{}, {}]
    attempt = run(services, job_id)
    details = {"rows": 1200, "app_url": "https://spark.example.com/app/1", "done": False, "ratio": 0.5, "n": None}
    assert services.ops.heartbeat(attempt, 12.5, ["line"], info=details)
    shown = job(client, job_id)["steps"]
    assert shown[0]["info"] == details and shown[0]["progress"] == 12.5 and shown[1]["info"] == {}
    assert services.ops.heartbeat(attempt, None, [], info={**details, "done": True})
    assert job(client, job_id)["steps"][0]["info"]["done"] is True


def test_a_stale_attempts_info_is_refused(client: TestClient, project: str, services: Services) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    attempt = run(services, job_id)
    assert services.ops.heartbeat(attempt, None, [], info={"rows": 1})
    assert client.post(f"/api/v1/jobs/{job_id}/pause").status_code == 200  # the attempt is stopped: fenced out
    assert not services.ops.heartbeat(attempt, None, [], info={"rows": 999})
    assert job(client, job_id)["steps"][0]["info"] == {"rows": 1}

    assert client.post(f"/api/v1/jobs/{job_id}/resume").status_code == 200
    again = start(services, job_id, dispatch(services, job_id))
    assert again.info == {"rows": 1}  # the next attempt starts from what the step reported (ctx.info merges over it)


def test_resume_clears_the_error_and_keeps_the_info_restart_clears_both(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    attempt = run(services, job_id)
    assert services.ops.heartbeat(attempt, None, [], info={"rows": 5})
    assert services.ops.record(attempt, Failed("boom", code="boom"), WORKER).accepted

    resumed = client.post(f"/api/v1/jobs/{job_id}/resume").json()
    assert resumed["error"] is None and resumed["error_code"] is None
    assert resumed["steps"][0]["error"] is None and resumed["steps"][0]["info"] == {"rows": 5}
    assert listed(client, project=project, error_code="boom") == []

    fail(services, job_id, "boom again", "boom")
    assert listed(client, project=project, error_code="boom") == [job_id]
    restarted = client.post(f"/api/v1/jobs/{job_id}/restart").json()
    assert restarted["error"] is None and restarted["error_code"] is None
    assert restarted["steps"][0]["error"] is None and restarted["steps"][0]["info"] == {}
    with services.db.read() as s:
        step = s.get(models.Step, (job_id, 0))
        assert step is not None
        assert (step.error, step.error_code, step.error_hint, step.error_at, step.info) == (None,) * 5


# ----------------------------------------------------------------------------------------------- filters


def test_the_list_filters_by_error_code(client: TestClient, project: str, services: Services) -> None:
    locked, lost, other = (submit(client, project, params={"steps": 1, "seconds": 0})["id"] for _ in range(3))
    pending = submit(client, project)["id"]
    fail(services, locked, "locked", "table-locked")
    fail(services, lost, "KeyError: 'x'")
    fail(services, other, "timed out", failures.TIMEOUT)

    assert listed(client, project=project, error_code="table-locked") == [locked]
    assert set(listed(client, project=project, error_code=["table-locked", "exception"])) == {locked, lost}
    assert listed(client, project=project, error_code="exception", status="PAUSED") == []
    assert listed(client, project=project, error_code="no-such-code") == []
    assert pending in listed(client, project=project)  # no filter: every job
    refused = client.get("/api/v1/jobs", params={"project": project, "error_code": "x" * 65})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid"


def test_a_batch_filter_takes_error_codes_like_the_list(client: TestClient, project: str, services: Services) -> None:
    locked, other = (submit(client, project, params={"steps": 1, "seconds": 0})["id"] for _ in range(2))
    fail(services, locked, "locked", "table-locked")
    fail(services, other, "boom")
    batch = {"action": "discard", "filter": {"project": project, "error_code": "table-locked"}}
    answer = client.post("/api/v1/jobs/batch", json=batch)
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [{"id": locked, "ok": True, "status": "DISCARDED", "error": None}]
    assert job(client, other)["status"] == "ERROR"
    listed_form = {"action": "discard", "filter": {"project": project, "error_code": ["a", "exception"]}}
    assert [r["id"] for r in client.post("/api/v1/jobs/batch", json=listed_form).json()["results"]] == [other]
    too_long = {"action": "discard", "filter": {"project": project, "error_code": "x" * 65}}
    assert client.post("/api/v1/jobs/batch", json=too_long).status_code == 422


# ---------------------------------------------------------------------------------------------- OpenAPI


def test_the_openapi_document_describes_the_new_fields(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    schemas = document["components"]["schemas"]
    error = schemas["StepError"]["properties"]
    assert set(error) == {"code", "message", "hint", "at"}
    assert all(code in error["code"]["description"] for code in failures.CODES)
    step = schemas["Step"]["properties"]
    assert "info" in step and "ctx.info" in step["info"]["description"]
    job_fields = schemas["Job"]["properties"]
    assert "error_code" in job_fields and "waiting_for" in job_fields
    assert "project limit" in job_fields["waiting_for"]["description"]
    parameters = {p["name"]: p for p in document["paths"]["/api/v1/jobs"]["get"]["parameters"]}
    assert "error_code" in parameters and parameters["error_code"]["description"]
    assert "error_code" in schemas["JobFilter"]["properties"]
