"""The worker's path through the store (`store.handover`) writes what the general path (`store.transitions`)
writes, its one-statement PostgreSQL hand-over what its transaction writes, each announces what it wrote,
and none writes anything when it refuses. On SQLite and PostgreSQL.

Twin jobs are taken through both paths and their rows compared, ignoring what is unique (ids, tokens) and what
depends on the clock (times, durations)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, select, update

from jobctl.scheduler import keys
from jobctl.scheduler.operations import Finished
from jobctl.scheduler.store import handover, jobs, models, transitions
from jobctl.scheduler.store.leases import StepStart
from jobctl.states import Action, JobStatus
from jobctl.workers.services import Services

WORKER = "w1@test"
CLOCK = {"created_at", "updated_at", "pending_since", "running_since", "started_at", "finished_at", "ready_at"}
CLOCK |= {"lease_until", "waiting_s", "duration_s", "at"}
UNIQUE = {"id", "job_id", "fence", "task_id"}


def submit(client: TestClient, project: str, **body: Any) -> str:
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", **body})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def rows(services: Services, job_id: str) -> dict[str, Any]:
    """The job's own row, its steps and its events, as comparable dicts."""

    def plain(obj: Any, skip: set[str]) -> dict[str, Any]:
        columns = obj.__mapper__.column_attrs
        return {c.key: getattr(obj, c.key) for c in columns if c.key not in skip}

    with services.db.read() as s:
        job = s.get(models.Job, job_id)
        assert job is not None
        steps = s.scalars(select(models.Step).where(models.Step.job_id == job_id).order_by(models.Step.index))
        events = s.scalars(select(models.Event).where(models.Event.job_id == job_id).order_by(models.Event.id))
        return {
            "job": plain(job, CLOCK | UNIQUE),
            "steps": [plain(st, CLOCK | UNIQUE) for st in steps],
            "events": [plain(ev, CLOCK | UNIQUE) for ev in events],
            "leased": [
                st.lease_until is not None
                for st in s.scalars(select(models.Step).filter_by(job_id=job_id).order_by(models.Step.index))
            ],
        }


def _dispatch_and_start(services: Services, at_once: bool, job_id: str) -> handover.Dispatched | None:
    """`handover.dispatch_and_start`, or `dispatch_and_start_at_once` (PostgreSQL), in a transaction."""
    with services.db.write() as s:
        if at_once:
            return handover.dispatch_and_start_at_once(s.connection(), job_id, WORKER, "scheduler", lease_s=30)
        return handover.dispatch_and_start(
            s.connection(), job_id, WORKER, "scheduler", lease_s=30, check_target=services.targets.check
        )


@pytest.mark.parametrize("at_once", [False, True], ids=["read-then-write", "at-once"])
def test_dispatch_and_start_writes_what_dispatch_then_start_writes(
    client: TestClient, services: Services, project: str, at_once: bool
) -> None:
    if at_once and services.db.is_sqlite:
        pytest.skip("the one-statement dispatch is PostgreSQL's")
    core, orm = (submit(client, project, params={"steps": 3, "seconds": 0}) for _ in range(2))
    check = services.targets.check
    taken = _dispatch_and_start(services, at_once, core)
    with services.db.write() as s:
        dispatched = transitions.transition(s, orm, Action.DISPATCH, "scheduler")
    assert dispatched.dispatch is not None and taken is not None
    with services.db.write() as s:
        started = handover.start(
            s.connection(), orm, 0, dispatched.dispatch.fence, WORKER, lease_s=30, check_target=check
        )
    assert started is not None

    assert rows(services, core) == rows(services, orm)
    assert taken.transition.action is Action.DISPATCH and taken.transition.after is JobStatus.RUNNING
    assert taken.start.fence == taken.dispatch.fence and taken.start.attempt == started.start.attempt == 1
    with services.db.read() as s:  # what it announces is what it wrote
        stored = jobs.get_job(s, core)
    assert taken.job.status is stored.status is JobStatus.RUNNING
    assert [(st.status, st.attempt, st.fence, st.worker) for st in taken.job.steps] == [
        (st.status, st.attempt, st.fence, st.worker) for st in stored.steps
    ]
    # The clock's columns: the waiting time booked is the time the job waited, as announced and stored.
    assert taken.transition.waited_s is not None and taken.transition.waited_s > 0
    assert stored.waiting_s == taken.job.waiting_s == pytest.approx(taken.transition.waited_s, abs=1e-5)
    assert stored.started_at == taken.job.started_at is not None
    with services.db.read() as s:
        job_row = s.get(models.Job, core)
        first = s.get(models.Step, (core, 0))
        assert job_row is not None and first is not None
        assert job_row.pending_since is None and job_row.running_since == job_row.started_at
        assert first.ready_at is None and first.running_since == job_row.running_since and first.waiting_s > 0


@pytest.mark.parametrize("at_once", [False, True], ids=["read-then-write", "at-once"])
def test_dispatch_and_start_writes_nothing_for_a_job_it_must_not_start(
    client: TestClient, services: Services, project: str, at_once: bool
) -> None:
    if at_once and services.db.is_sqlite:
        pytest.skip("the one-statement dispatch is PostgreSQL's")
    paused = submit(client, project, params={"steps": 2, "seconds": 0})
    assert client.post(f"/api/v1/jobs/{paused}/pause").status_code == 200
    record = client.put(f"/api/v1/projects/{project}/targets/record/r1", json={"attributes": {"v": 1}})
    assert record.status_code in (200, 201), record.text
    moved = submit(client, project, params={"steps": 2, "seconds": 0}, target={"kind": "record", "name": "r1"})
    changed = client.put(f"/api/v1/projects/{project}/targets/record/r1", json={"attributes": {"v": 2}})
    assert changed.status_code == 200, changed.text

    for job_id in (paused, moved, "no-such-job"):
        before = rows(services, job_id) if job_id != "no-such-job" else None
        assert _dispatch_and_start(services, at_once, job_id) is None
        if before is not None:
            assert rows(services, job_id) == before


def _hand_over(
    services: Services, at_once: bool, job_id: str, fence: str, output: dict[str, Any], run_next: bool = True
) -> Any:
    """`handover.hand_over` in a transaction, or `hand_over_at_once` (PostgreSQL) outside one."""
    if at_once:
        with services.db.autocommit_core() as conn:
            return handover.hand_over_at_once(conn, job_id, 0, fence, output, WORKER, lease_s=30)
    with services.db.write() as s:
        return handover.hand_over(
            s.connection(),
            job_id,
            0,
            fence,
            output,
            WORKER,
            lease_s=30,
            queue_lease_s=60,
            check_target=services.targets.check,
            run_next=run_next,
        )


@pytest.mark.parametrize("at_once", [False, True], ids=["transaction", "at-once"])
def test_hand_over_and_finish_job_write_what_the_general_path_writes(
    client: TestClient, services: Services, project: str, at_once: bool
) -> None:
    if at_once and services.db.is_sqlite:
        pytest.skip("the one-statement hand-over is PostgreSQL's")
    core, orm = (submit(client, project, params={"steps": 2, "seconds": 0}) for _ in range(2))
    check = services.targets.check
    fences = {}
    for job_id in (core, orm):
        with services.db.write() as s:
            taken = handover.dispatch_and_start(
                s.connection(), job_id, WORKER, "scheduler", lease_s=30, check_target=check
            )
        assert taken is not None
        fences[job_id] = taken.dispatch.fence

    over = _hand_over(services, at_once, core, fences[core], {"n": 0})  # core: finish step 0, start step 1
    assert over is not None and over.reason is None
    handed_over = rows(services, core)
    assert [st.status for st in over.job.steps] == [JobStatus.FINISHED, JobStatus.RUNNING]  # announced as written
    assert over.start.step_index == 1 and over.start.attempt == 1 and over.start.fence == over.dispatch.fence
    assert over.start.outputs == {over.job.steps[0].name: {"n": 0}}
    with services.db.write() as s:
        assert handover.finish_job(s.connection(), core, 1, "stale-token", {"n": 1}) is None  # a stale attempt: nothing
        assert handover.finish_job(s.connection(), core, 1, over.dispatch.fence, {"n": 1}) is not None

    # the twin: finish step 0 and only claim step 1 (as for any worker), then start it as its message would
    claimed = _hand_over(services, False, orm, fences[orm], {"n": 0}, run_next=False)
    assert claimed is not None and claimed.job.steps[1].status is JobStatus.PENDING
    with services.db.write() as s:
        start = handover.start(s.connection(), orm, 1, claimed.dispatch.fence, WORKER, lease_s=30, check_target=check)
    assert start is not None
    assert handed_over == rows(services, orm)  # step 0 FINISHED, step 1 RUNNING (leased) on both paths
    assert handed_over["leased"] == [False, True]
    with services.db.write() as s:
        finished = handover.finish_job(s.connection(), orm, 1, claimed.dispatch.fence, {"n": 1})
    assert finished is not None and finished.after is JobStatus.FINISHED

    core_rows, orm_rows = rows(services, core), rows(services, orm)
    assert core_rows == orm_rows
    assert core_rows["job"]["status"] == "FINISHED" and core_rows["job"]["result"] == {"n": 1}


@contextmanager
def _live_worker(services: Services) -> Iterator[None]:
    """A worker registration with one process, as a live worker announces itself, for the duration."""
    key = keys.worker(services.settings.queue, WORKER)
    services.redis.set(key, 1, ex=60)
    try:
        yield
    finally:
        services.redis.delete(key)


def _started(services: Services, job_id: str) -> StepStart:
    """Dispatch and start `job_id` through the Core path; the started attempt."""
    with services.db.write() as s:
        taken = handover.dispatch_and_start(
            s.connection(), job_id, WORKER, "scheduler", lease_s=30, check_target=services.targets.check
        )
    assert taken is not None
    return taken.start


def _running(services: Services, job_id: str) -> str:
    """Dispatch and start `job_id` through the Core path; the started attempt's token."""
    return _started(services, job_id).fence


def test_finish_and_take_finishes_the_job_and_starts_the_next_in_one_transaction(
    client: TestClient, services: Services, project: str
) -> None:
    first = submit(client, project, params={"steps": 1, "seconds": 0})
    second = submit(client, project, params={"steps": 2, "seconds": 0}, priority=0)  # first in line
    start = _started(services, first)
    with _live_worker(services):
        stale = dataclasses.replace(start, fence="stale-token")
        assert not services.ops.record(stale, Finished({"n": 1}), WORKER, chain=True).accepted  # stale: nothing
        assert rows(services, second)["job"]["status"] == "PENDING"
        done = services.ops.record(start, Finished({"n": 1}), WORKER, chain=True)
    assert done.accepted and done.begun is not None and done.follow is not None
    taken = done.begun
    assert not isinstance(taken.job, str) and taken.job.id == second and taken.start.job_id == second
    assert rows(services, first)["job"]["status"] == "FINISHED"
    assert rows(services, first)["job"]["result"] == {"n": 1}
    started = rows(services, second)
    assert started["job"]["status"] == "RUNNING" and started["steps"][0]["status"] == "RUNNING"
    assert [e["action"] for e in started["events"]] == ["submit", "dispatch"]


def test_a_failed_take_leaves_the_finish_standing(
    client: TestClient, services: Services, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = submit(client, project, params={"steps": 1, "seconds": 0})
    second = submit(client, project, params={"steps": 1, "seconds": 0}, priority=0)  # first in line
    start = _started(services, first)
    before = rows(services, second)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("injected: the take fails after it wrote")

    def half_take(conn: Connection, job_id: str, *args: Any, **kwargs: Any) -> None:
        conn.execute(update(models.Job).where(models.Job.id == job_id).values(priority=4))  # undone with the take
        broken()

    monkeypatch.setattr(handover, "dispatch_and_start", half_take)
    monkeypatch.setattr(handover, "dispatch_and_start_at_once", half_take)
    with _live_worker(services):
        done = services.ops.record(start, Finished(None), WORKER, chain=True)
    assert done.accepted and done.begun is None and done.follow is None
    assert rows(services, first)["job"]["status"] == "FINISHED"
    assert rows(services, second) == before


def test_the_one_statement_hand_over_writes_nothing_where_it_does_not_apply(
    client: TestClient, services: Services, project: str
) -> None:
    if services.db.is_sqlite:
        pytest.skip("the one-statement hand-over is PostgreSQL's")
    record = client.put(f"/api/v1/projects/{project}/targets/record/r2", json={"attributes": {"v": 1}})
    assert record.status_code in (200, 201), record.text
    plain = submit(client, project, params={"steps": 2, "seconds": 0})
    targeted = submit(client, project, params={"steps": 2, "seconds": 0}, target={"kind": "record", "name": "r2"})
    last = submit(client, project, params={"steps": 1, "seconds": 0})
    fences = {job_id: _running(services, job_id) for job_id in (plain, targeted, last)}
    paused = submit(client, project, params={"steps": 2, "seconds": 0})
    paused_fence = _running(services, paused)
    assert client.post(f"/api/v1/jobs/{paused}/pause").status_code == 200

    for job_id, fence in (
        (plain, "stale-token"),
        (targeted, fences[targeted]),
        (last, fences[last]),
        (paused, paused_fence),
    ):
        before = rows(services, job_id)
        assert _hand_over(services, True, job_id, fence, {"n": 0}) is None
        assert rows(services, job_id) == before
    assert _hand_over(services, True, plain, fences[plain], {"n": 0}) is not None  # and applies where it does
