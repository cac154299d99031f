"""`jobctl.client` on structured failures, step info and waiting reasons: the new shapes read as typed models, an
older server's plain error strings still read, and the error-code filter sent as the list and a batch take it
(against the scripted server of tests/client/test_client.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from jobctl.client import Job, JobQuery, StepError
from tests.client.test_client import Server, job_json, run


def failed_job(**fields: object) -> dict[str, object]:
    step = {
        "index": 0,
        "name": "load",
        "status": "ERROR",
        "error": {
            "code": "table-locked",
            "message": "the table is locked",
            "hint": "wait for the load",
            "at": "2026-05-01T12:00:07Z",
        },
        "info": {"rows": 1200, "app_url": "https://spark.example.com/app/1", "done": False},
    }
    return job_json(status="ERROR", error="the table is locked", error_code="table-locked", steps=[step], **fields)


def test_a_step_error_reads_as_a_step_error_and_the_job_keeps_its_code() -> None:
    job = Job.model_validate(failed_job())
    assert job.error == "the table is locked" and job.error_code == "table-locked" and job.waiting_for is None
    error = job.steps[0].error
    assert error == StepError(
        code="table-locked",
        message="the table is locked",
        hint="wait for the load",
        at=datetime(2026, 5, 1, 12, 0, 7, tzinfo=UTC),
    )
    assert job.steps[0].info == {"rows": 1200, "app_url": "https://spark.example.com/app/1", "done": False}


def test_what_an_older_server_sends_still_reads() -> None:
    older = job_json(status="ERROR", error="step 0 failed: boom")
    older["steps"][0]["error"] = "KeyError: 'columns'"  # a step's error was a string; no info, no code
    job = Job.model_validate(older)
    assert job.error == "step 0 failed: boom" and job.error_code is None
    assert job.steps[0].error == StepError(message="KeyError: 'columns'") and job.steps[0].info == {}
    assert (
        Job.model_validate(job_json(steps=[{"index": 0, "name": "s", "status": "PENDING", "info": None}])).steps[0].info
        == {}
    )
    coded = Job.model_validate(job_json(status="ERROR", error={"code": "E1", "message": "disk full"}))
    assert coded.error == "disk full" and coded.error_code == "E1"  # an error object: its message, and its code


def test_a_pending_jobs_reason_reads_through_the_handle() -> None:
    server = Server({("GET", "/api/v1/jobs/j1"): job_json(waiting_for="project limit 20/20")})
    handle = server.client().job("j1")
    assert handle.waiting_for == "project limit 20/20" and handle.job.waiting_for == "project limit 20/20"


def test_the_error_code_filter_is_sent_by_the_list_and_a_batch() -> None:
    page = {"items": [failed_job()], "total": 1, "page": 1, "page_size": 200}
    server = Server({("GET", "/api/v1/jobs"): page})
    found = list(server.client().jobs(project="demo", error_code=["table-locked", "timeout"]))
    assert [h.error_code for h in found] == ["table-locked"]
    assert server.requests[0].url.params.get_list("error_code") == ["table-locked", "timeout"]

    async def listed() -> list[str]:
        return [h.id async for h in server.aclient().jobs(error_code="table-locked")]

    assert run(listed()) == ["j1"]
    assert server.requests[-1].url.params.get_list("error_code") == ["table-locked"]
    query = JobQuery(projects=("demo",), error_codes=("timeout",))
    assert ("error_code", "timeout") in query.params()
    assert query.as_filter() == {"project": ["demo"], "error_code": ["timeout"]}
