"""Why it is stuck, what went wrong, on real prefork workers behind a real API (SQLite and PostgreSQL): the codes,
messages and hints real steps fail with, the info they report (while they run, and merged), and the reasons
PENDING jobs wait on a live system - a project's limit, the workers' capacity, a held target, a restart's
cleanup. The test job types are tests/integration/testing_jobtypes.py's `diagnose`, `diagnose_alone` and
`tidy`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobctl.scheduler import failures
from jobctl.scheduler.settings import Settings
from tests.integration.system import System, wait_until
from tests.live import live_system

pytestmark = pytest.mark.integration

PLUGINS = "tests.integration.testing_jobtypes"
ADMIN = {"Authorization": "Bearer test-admin-token"}
REPORTED = {  # what `diagnose` reports before it ends, over two calls of `ctx.info`
    "rows": 1200,
    "app_id": "application_1714",
    "done": True,
    "app_url": "https://spark.example.com/app/1714",
    "script": "javascript:alert(1)",
    "ratio": 0.5,
}


@pytest.fixture(scope="module")
def live(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """A system of its own with the test job types: a scheduler and a 2-process worker."""
    name = f"diagnosis-{uuid.uuid4().hex[:6]}"
    yield from live_system(settings, backend, tmp_path_factory, name, plugins=PLUGINS)


@pytest.fixture(scope="module")
def api(live: System) -> Iterator[httpx.Client]:
    """The live system's API (a uvicorn subprocess), as the admin."""
    _, url = live.start_api()
    with httpx.Client(base_url=f"{url}/api/v1", headers=ADMIN, timeout=10) as client:
        yield client


@pytest.fixture
def project(live: System) -> Iterator[str]:
    name = live.project()
    yield name
    live.settle(name)


def submit(api: httpx.Client, project: str, job_type: str = "diagnose", **body: Any) -> str:
    answer = api.post("/jobs", json={"project": project, "type": job_type, **body})
    assert answer.status_code == 201, answer.text
    job_id: str = answer.json()["id"]
    return job_id


def job(api: httpx.Client, job_id: str) -> dict[str, Any]:
    answer = api.get(f"/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    shown: dict[str, Any] = answer.json()
    return shown


def ended(live: System, api: httpx.Client, job_id: str, status: str = "ERROR") -> dict[str, Any]:
    live.wait_status(job_id, status, timeout=30)
    return job(api, job_id)


# ------------------------------------------------------------------------------------------- failures


def test_a_step_failed_with_its_own_code_and_hint(live: System, api: httpx.Client, project: str) -> None:
    job_id = submit(api, project, params={"how": "step_failed"})
    failed = ended(live, api, job_id)
    assert failed["error"] == "the export table is locked" and failed["error_code"] == "table-locked"
    step = failed["steps"][0]
    assert step["status"] == "ERROR" and step["error"]["code"] == "table-locked"
    assert step["error"]["message"] == "the export table is locked"
    assert step["error"]["hint"] == "wait for the nightly load to end" and step["error"]["at"]
    assert step["info"] == REPORTED  # two calls merged, flushed before the failure was recorded
    log = api.get(f"/jobs/{job_id}/steps/0/log").text
    assert "failed: [table-locked] the export table is locked (hint: wait for the nightly load to end)" in log
    found = api.get("/jobs", params={"project": project, "error_code": "table-locked"}).json()["items"]
    assert [item["id"] for item in found] == [job_id]


@pytest.mark.parametrize(
    ("how", "code", "message"),
    [
        ("exception", failures.EXCEPTION, "KeyError: 'columns'"),
        ("invalid_output", failures.INVALID_OUTPUT, "step '_report' returned a dict that JSON cannot hold"),
        ("too_much_info", failures.EXCEPTION, "ValueError: a step's info holds at most 50 keys; this call would"),
    ],
)
def test_jobctls_own_failures_have_codes_of_their_own(
    live: System, api: httpx.Client, project: str, how: str, code: str, message: str
) -> None:
    failed = ended(live, api, submit(api, project, params={"how": how}))
    error = failed["steps"][0]["error"]
    assert failed["error_code"] == error["code"] == code
    assert error["message"].startswith(message) and failed["error"] == error["message"]
    assert error["hint"] == failures.CODES[code]
    assert failed["steps"][0]["info"] == REPORTED  # a call refused stored nothing of itself


def test_a_running_steps_info_shows_while_it_runs(live: System, api: httpx.Client, project: str) -> None:
    job_id = submit(api, project, params={"how": "wait", "seconds": 60})
    info = wait_until(lambda: job(api, job_id)["steps"][0]["info"] or None, 15, "the step's info to be flushed")
    assert info == REPORTED
    discarded = api.post(f"/jobs/{job_id}/discard").json()
    assert discarded["status"] == "DISCARDED" and discarded["steps"][0]["info"] == REPORTED


# -------------------------------------------------------------------------------------------- waiting


def test_jobs_wait_for_their_projects_limit_then_for_the_workers(live: System, api: httpx.Client, project: str) -> None:
    assert api.patch(f"/projects/{project}", json={"max_running": 1}).status_code == 200
    first, second = (submit(api, project, params={"how": "wait", "seconds": 60}) for _ in range(2))
    live.wait_status(first, "RUNNING")
    assert job(api, second)["waiting_for"] == "project limit 1/1"

    other = live.project()
    try:
        third, fourth = (submit(api, other, params={"how": "wait", "seconds": 60}) for _ in range(2))
        live.wait_status(third, "RUNNING")  # the worker's second process: both are busy now
        assert job(api, fourth)["waiting_for"] == "worker capacity 2/2"
        listed = api.get("/jobs", params={"project": [project, other]}).json()["items"]
        reasons = {item["id"]: item["waiting_for"] for item in listed}
        full = "worker capacity 2/2"  # checked first, as a dispatch pass does: the project's limit holds too
        assert reasons == {first: None, second: full, third: None, fourth: full}
        api.post(f"/jobs/{first}/discard")  # a process is free: the project's next job starts
        live.wait_status(second, "RUNNING")
        assert job(api, second)["waiting_for"] is None
    finally:
        live.settle(other)


def test_a_job_waits_for_the_running_job_that_holds_its_target(live: System, api: httpx.Client, project: str) -> None:
    assert api.put(f"/projects/{project}/targets/record/orders", json={}).is_success
    target = {"kind": "record", "name": "orders"}
    holder = submit(api, project, params={"how": "wait", "seconds": 60}, target=target)
    live.wait_status(holder, "RUNNING")
    alone = submit(api, project, "diagnose_alone", params={"how": "finish"}, target=target)
    assert job(api, alone)["waiting_for"] == f"target held by job {holder}"
    api.post(f"/jobs/{holder}/discard")
    assert ended(live, api, alone, "FINISHED")["waiting_for"] is None


def test_a_restarted_job_waits_for_its_cleanup(live: System, api: httpx.Client, project: str, tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    job_id = submit(api, project, "tidy", params={"marker": str(marker), "cleanup_s": 3})
    live.wait_status(job_id, "RUNNING")
    restarted = api.post(f"/jobs/{job_id}/restart").json()
    assert restarted["status"] == "PENDING" and restarted["waiting_for"] == "restart cleanup"
    wait_until(marker.exists, 20, "the cleanup to run")
    live.wait_status(job_id, "RUNNING")
