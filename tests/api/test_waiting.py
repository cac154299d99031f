"""Why a PENDING job waits (`waiting_for`), on SQLite and PostgreSQL: each reason of `scheduler.store.waiting`, in
the job JSON, the list and the operations' answers, and what a page of them costs.

No worker consumes this module's queue, so over HTTP every job that may start waits for `no live worker`. The
reasons that depend on the live workers' capacity are read from the store with the capacity given
(`waiting.waiting_for` with `Limits`), on the real databases; on live workers they are tested in
tests/integration/test_diagnosis.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from jobctl.scheduler.operations import Failed
from jobctl.scheduler.records import JobRecord, StepSpec
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts, dispatch, waiting
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.scheduler.store.prepared import Prepared
from jobctl.scheduler.store.waiting import Limits
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.api.attempts import WORKER, run, submit

NO_WORKER = "no live worker"


@pytest.fixture(scope="module")
def services(settings: Settings) -> Iterator[Services]:
    """The services on a queue of this module's own, which no worker ever announces itself on (a test of another
    module may announce one on the session's queue): every job that may start waits for `no live worker`."""
    built = build(settings.model_copy(update={"queue": f"{settings.queue}-waiting"}))
    yield built
    built.close()


def shown(client: TestClient, job_id: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/jobs/{job_id}")
    assert answer.status_code == 200, answer.text
    job: dict[str, Any] = answer.json()
    return job


def listed(client: TestClient, project: str) -> dict[str, str | None]:
    """Each job of the project's first page: id -> its `waiting_for`."""
    answer = client.get("/api/v1/jobs", params={"project": project, "page_size": 200})
    assert answer.status_code == 200, answer.text
    return {job["id"]: job["waiting_for"] for job in answer.json()["items"]}


def records(services: Services, project: str) -> list[JobRecord]:
    with services.db.read() as s:
        proj = accounts.get_project(s, project)
        items, _ = jobs_store.list_jobs(s, jobs_store.JobQuery(project_ids=[proj.id], page_size=200))
    return items


def reasons(services: Services, project: str, limits: Limits) -> dict[str, str]:
    """The reasons the store gives the project's jobs under `limits`."""
    with services.db.read() as s:
        return waiting.waiting_for(s, records(services, project), limits)


def running_now(services: Services) -> int:
    """How many jobs are RUNNING in all (every test module shares the database)."""
    with services.db.read() as s:
        return sum(n for _, n in dispatch.project_loads(s).values())


def submit_exclusive(services: Services, project: str, target: str) -> str:
    """A job whose type is exclusive on its target (recorded with the job at submission)."""
    return services.ops.submit(
        project=project,
        job_type="sleep",
        steps=[StepSpec("sleep-1")],
        params={"steps": 1, "seconds": 0.0},
        priority=3,
        submitter="test",
        target=("record", target),
        exclusive=True,
    ).id


# ---------------------------------------------------------------------------------------- over HTTP


def test_a_job_that_may_start_waits_for_a_live_worker_in_the_json_the_list_and_the_answers(
    client: TestClient, project: str
) -> None:
    job = submit(client, project)
    assert job["waiting_for"] is None  # a submission's answer does not say: reading the job does
    assert shown(client, job["id"])["waiting_for"] == NO_WORKER
    assert listed(client, project) == {job["id"]: NO_WORKER}
    paused = client.post(f"/api/v1/jobs/{job['id']}/pause").json()
    assert paused["status"] == "PAUSED" and paused["waiting_for"] is None  # only a PENDING job waits
    assert listed(client, project) == {job["id"]: None}
    resumed = client.post(f"/api/v1/jobs/{job['id']}/resume").json()
    assert resumed["status"] == "PENDING" and resumed["waiting_for"] == NO_WORKER


def test_a_failed_step_waiting_for_its_retry_says_when(client: TestClient, project: str, services: Services) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    attempt = run(services, job_id)
    assert services.ops.record(attempt, Failed("flaky", retry=True, delay_s=90, code="flaky"), WORKER).accepted
    job = shown(client, job_id)
    due = datetime.fromisoformat(job["steps"][0]["retry_at"]).astimezone(UTC)
    assert job["status"] == "PENDING" and job["waiting_for"] == f"retry at {due:%Y-%m-%dT%H:%M:%SZ}"
    assert listed(client, project)[job_id] == job["waiting_for"]


def test_a_restarted_job_waits_for_the_cleanup_of_its_earlier_run(
    client: TestClient, project: str, services: Services
) -> None:
    job_id = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    run(services, job_id)
    restarted = client.post(f"/api/v1/jobs/{job_id}/restart").json()
    assert restarted["status"] == "PENDING" and restarted["waiting_for"] == "restart cleanup"
    services.ops.release_restart_hold(job_id, restarted["attempt"])  # what the cleanup does once it ran
    assert shown(client, job_id)["waiting_for"] == NO_WORKER


def test_a_target_is_held_by_a_running_job_when_either_of_the_two_is_exclusive(
    client: TestClient, project: str, services: Services
) -> None:
    for name in ("orders", "customers"):
        assert client.put(f"/api/v1/projects/{project}/targets/record/{name}", json={}).is_success
    orders = {"kind": "record", "name": "orders"}
    shared = submit(client, project, params={"steps": 1, "seconds": 0}, target=orders)["id"]
    run(services, shared)  # RUNNING, not exclusive
    alone = submit_exclusive(services, project, "orders")
    alongside = submit(client, project, target=orders)["id"]  # two jobs that are not exclusive may run together
    elsewhere = submit_exclusive(services, project, "customers")
    assert shown(client, alone)["waiting_for"] == f"target held by job {shared}"
    assert listed(client, project) == {
        shared: None,
        alone: f"target held by job {shared}",
        alongside: NO_WORKER,
        elsewhere: NO_WORKER,
    }

    holder = submit_exclusive(services, project, "customers")
    assert client.post(f"/api/v1/jobs/{elsewhere}/discard").status_code == 200
    run(services, holder)  # an exclusive job RUNNING holds its target against any job
    blocked = submit(client, project, target={"kind": "record", "name": "customers"})["id"]
    assert shown(client, blocked)["waiting_for"] == f"target held by job {holder}"


# --------------------------------------------------------------------------- with the workers' capacity


def test_the_reasons_of_the_limits_follow_the_dispatchers_order(
    client: TestClient, new_project: Callable[[], str], services: Services
) -> None:
    project = new_project()
    busy = submit(client, project, params={"steps": 1, "seconds": 0})["id"]
    run(services, busy)
    waiting_id = submit(client, project)["id"]
    running = running_now(services)
    assert running >= 1

    def reason(limits: Limits) -> str:
        return reasons(services, project, limits)[waiting_id]

    assert reason(Limits(None, None, 20)) == "worker capacity unknown"
    assert reason(Limits(0, None, 20)) == NO_WORKER
    assert reason(Limits(running, None, 20)) == f"worker capacity {running}/{running}"
    assert reason(Limits(running + 5, running, 20)) == f"global limit {running}/{running}"
    assert reason(Limits(running, running, 20)) == f"global limit {running}/{running}"  # equal: the limit says it
    assert reason(Limits(running + 5, running + 5, 1)) == "project limit 1/1"  # JOBCTL_PROJECT_MAX_RUNNING
    assert reason(Limits(running + 5, None, 20)) == "position 1 in the project's queue"

    assert client.patch(f"/api/v1/projects/{project}", json={"max_running": 1}).status_code == 200
    assert reason(Limits(running + 5, None, 20)) == "project limit 1/1"  # the project's own limit wins
    assert reasons(services, project, Limits(running + 5, None, 20)) == {waiting_id: "project limit 1/1"}


def test_positions_are_the_dispatch_order_of_the_jobs_that_may_start(
    client: TestClient, new_project: Callable[[], str], services: Services
) -> None:
    project = new_project()
    assert client.put(f"/api/v1/projects/{project}/targets/record/t", json={}).is_success
    first = submit(client, project, priority=3)["id"]
    urgent = submit(client, project, priority=1)["id"]
    holder = submit(client, project, params={"steps": 1, "seconds": 0}, target={"kind": "record", "name": "t"})["id"]
    run(services, holder)
    held = submit_exclusive(services, project, "t")  # not in the queue: held
    last = submit(client, project, priority=3)["id"]
    lowest = submit(client, project, priority=4)["id"]
    got = reasons(services, project, Limits(100, None, 20))
    assert got == {
        urgent: "position 1 in the project's queue",
        first: "position 2 in the project's queue",
        last: "position 3 in the project's queue",
        lowest: "position 4 in the project's queue",
        held: f"target held by job {holder}",
    }
    with services.db.read() as s:  # the dispatcher's own read of the queue, in its order
        proj = accounts.get_project(s, project)
        queue = [c[0] for c in dispatch.pending_candidates(s, {proj.id: 100})]
    assert queue == [urgent, first, last, lowest]


# ----------------------------------------------------------------------------------------------- cost


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    """Every statement sent to the database meanwhile: those of `Connection.execute` and the prepared ones."""
    sent: list[str] = []

    def executed(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        sent.append(statement)

    original = Prepared._execute

    def prepared(conn: Any, compiled: Any, args: Any) -> Any:
        sent.append(compiled.sql)
        return original(conn, compiled, args)

    engines = (services.db.engine, services.db._hot)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", executed)
    Prepared._execute = staticmethod(prepared)  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        Prepared._execute = staticmethod(original)  # type: ignore[method-assign]
        for engine in engines:
            event.remove(engine, "before_cursor_execute", executed)


def test_a_page_costs_two_statements_however_many_jobs_and_projects_it_holds(
    client: TestClient, new_project: Callable[[], str], services: Services
) -> None:
    projects = [new_project() for _ in range(3)]
    one = submit(client, projects[0])
    many = [submit(client, projects[i % 3], priority=i % 5) for i in range(60)]
    limits = Limits(4, None, 20)
    for page in ([one], many):
        ids = [job["id"] for job in page]
        with services.db.read() as s:
            jobs = jobs_store.load_jobs(s, ids)
            with statements(services) as sent:
                found = waiting.waiting_for(s, jobs, limits)
        assert len(sent) == 2, sent
        assert set(found) == set(ids)
    assert client.post(f"/api/v1/jobs/{one['id']}/discard").status_code == 200
    with services.db.read() as s:
        gone = jobs_store.load_jobs(s, [one["id"]])
        with statements(services) as sent:
            assert waiting.waiting_for(s, gone, limits) == {}  # no PENDING job: nothing is read
    assert sent == []
