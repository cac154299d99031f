"""A submission's writes: the job, every step (in multi-row INSERTs of `STEPS_PER_INSERT`) and its event, read
back as written - on SQLite and on PostgreSQL, where the first of them go as one statement."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime

import pytest
from sqlalchemy import func, select

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.records import JobRecord, StepSpec
from jobctl.scheduler.store import accounts, dispatch, models, submission
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.scheduler.store.common import new_id, utcnow
from jobctl.states import JobStatus
from jobctl.workers.registry import JobType, Params
from jobctl.workers.services import Services


@pytest.mark.parametrize("count", [1, 5, submission.STEPS_PER_INSERT, 2 * submission.STEPS_PER_INSERT + 3])
def test_every_step_is_written_in_order(services: Services, project: str, count: int) -> None:
    specs = [StepSpec(f"s{i}", weight=1.0 + i % 3) for i in range(count)]
    with services.db.write() as s:
        proj = accounts.get_project(s, project)
        written = submission.insert_job(
            s,
            project_id=proj.id,
            job_type="sleep",
            steps=specs,
            params={"steps": count},
            priority=2,
            submitter="test",
            target=None,
            project=project,
        )
    with services.db.read() as s:
        read = jobs_store.get_job(s, written.id)
        events = s.scalar(select(func.count()).select_from(models.Event).where(models.Event.job_id == written.id))
    assert read.status is JobStatus.PENDING and read.priority == 2 and read.params == {"steps": count}
    assert [(st.index, st.name, st.weight, st.status) for st in read.steps] == [
        (i, spec.name, spec.weight, JobStatus.PENDING) for i, spec in enumerate(specs)
    ]
    assert [(st.index, st.name) for st in written.steps] == [(st.index, st.name) for st in read.steps]
    assert events == 1


def test_a_plan_without_steps_is_refused() -> None:
    empty = JobType("empty", params=Params, register=False)
    empty.plan(lambda params: [])
    with pytest.raises(Invalid, match="planned no steps"):
        empty.prepare({})


def test_heads_are_what_pending_candidates_picks_first(services: Services, new_project: Callable[[], str]) -> None:
    """The take's one-statement read gives each project's loads and its first PENDING job in dispatch order,
    exactly as `project_loads` and `pending_candidates(limit=1)` do."""
    projects = [new_project() for _ in range(3)]
    with services.db.write() as s:
        for n, name in enumerate(projects):
            pid = accounts.get_project(s, name).id
            for priority in (3, 1, 1, 4)[: n + 2]:
                submission.insert_job(
                    s,
                    project_id=pid,
                    job_type="sleep",
                    steps=[StepSpec("s0")],
                    params={},
                    priority=priority,
                    submitter="test",
                    target=None,
                )
    with services.db.read() as s:
        loads, heads = dispatch.project_loads_and_heads(s)
        assert loads == dispatch.project_loads(s)
        ids = [accounts.get_project(s, name).id for name in projects]
        expected = dispatch.pending_candidates(s, dict.fromkeys(ids, 1), 1)
    assert sorted(heads[pid][:4] for pid in ids) == sorted(c[:4] for c in expected)
    assert all(head[2] == 1 for head in (heads[pid] for pid in ids))  # the highest priority comes first


def _rows(services: Services, job_id: str) -> dict[str, object]:
    """What a submission wrote for `job_id`: the job, its steps and its events, as stored (ids and times aside)."""
    skip = {"id", "job_id", "created_at", "updated_at", "pending_since", "ready_at", "at"}
    with services.db.read() as s:
        job = s.execute(select(models.JOBS).where(models.JOBS.c.id == job_id)).mappings().one()
        steps = s.execute(select(models.STEPS).where(models.STEPS.c.job_id == job_id).order_by(models.STEPS.c.idx))
        events = s.execute(select(models.EVENTS).where(models.EVENTS.c.job_id == job_id))
        return {
            "job": {k: v for k, v in job.items() if k not in skip},
            "steps": [{k: v for k, v in r.items() if k not in skip} for r in steps.mappings()],
            "ready": [
                r.ready_at is not None
                for r in s.execute(
                    select(models.STEPS.c.ready_at).where(models.STEPS.c.job_id == job_id).order_by(models.STEPS.c.idx)
                )
            ],
            "events": [{k: v for k, v in r.items() if k not in skip} for r in events.mappings()],
        }


def _new(project: str, project_id: int, steps: int = 3) -> submission.NewJob:
    specs = [StepSpec(f"s{i}", weight=1.0 + i) for i in range(steps)]
    return submission.NewJob(project_id, project, "sleep", specs, {"steps": steps, "x": [1, "a"]}, priority=1)


def _at_once(services: Services, project: str, job_id: str, at: datetime, submitter: str) -> JobRecord | None:
    return services.db.once(lambda conn: submission.insert_job_at_once(conn, _new(project, 0), job_id, at, submitter))


def test_one_statement_writes_what_the_transaction_writes(services: Services, project: str) -> None:
    """`insert_job_at_once` (PostgreSQL's one-statement submission) writes the same rows as `insert_jobs`, and
    returns the same record."""
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL's one-statement submission")
    with services.db.write() as s:
        pid = accounts.get_project(s, project).id
        (general,) = submission.insert_jobs(s, [_new(project, pid)], "alice")
    job_id = new_id()
    fast = services.db.once(
        lambda conn: submission.insert_job_at_once(conn, _new(project, 0), job_id, utcnow(), "alice")
    )
    assert fast is not None and fast.id == job_id
    assert _rows(services, fast.id) == _rows(services, general.id)
    with services.db.read() as s:
        read = jobs_store.get_job(s, job_id)

    def same(r: JobRecord) -> tuple[object, ...]:  # a step's waiting time grows from its ready time as it is read
        steps = [dataclasses.replace(st, waiting_s=0.0) for st in r.steps]
        return (r.project, r.type, r.params, r.priority, r.status, r.submitter, r.attempt, steps)

    assert same(fast) == same(general) == same(read)
    assert fast.created_at == read.created_at


def test_one_statement_writes_nothing_for_a_missing_project_and_nothing_twice(services: Services, project: str) -> None:
    """No project of that name: None and nothing written. Run again with the same id (as after a lost answer):
    nothing more is written, and the job is returned as the first run wrote it."""
    if services.db.is_sqlite:
        pytest.skip("PostgreSQL's one-statement submission")
    missing = services.db.once(
        lambda conn: submission.insert_job_at_once(conn, _new("nope", 0), new_id(), utcnow(), "a")
    )
    assert missing is None
    job_id, at = new_id(), utcnow()
    for _ in range(2):
        again = _at_once(services, project, job_id, at, "a")
        assert again is not None and again.id == job_id and len(again.steps) == 3
        with services.db.read() as s:
            assert jobs_store.get_job(s, job_id).created_at == again.created_at == at
    assert len(_rows(services, job_id)["events"]) == 1 and len(_rows(services, job_id)["steps"]) == 3
    with services.db.read() as s:
        assert s.scalar(select(func.count()).select_from(models.JOBS).where(models.JOBS.c.id == job_id)) == 1
