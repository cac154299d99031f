"""A submission's writes: the job, every step (in multi-row INSERTs of `STEPS_PER_INSERT`) and its event, read
back as written - on SQLite and on PostgreSQL, where the first of them go as one statement."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from jobctl.scheduler.errors import Invalid
from jobctl.scheduler.records import StepSpec
from jobctl.scheduler.store import accounts, dispatch, models, submission
from jobctl.scheduler.store import jobs as jobs_store
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
