"""`store.jobs`' reads of whole jobs (`get_job`, `load_jobs`: plain Core rows, no ORM objects) give exactly the
record that the ORM's objects give, for jobs in every shape: a target, steps finished with output, a step's
error, a running stretch. On SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.workers.services import Services

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def _orm(services: Services, job_id: str) -> JobRecord:
    """The job as the ORM loads it (the reference)."""
    with services.db.read() as s:
        job = s.get(models.Job, job_id)
        assert job is not None
        project = s.scalar(select(models.Project.name).where(models.Project.id == job.project_id))
        steps = list(s.scalars(select(models.Step).where(models.Step.job_id == job_id)))
        return JobRecord.from_row(job, project or "", steps, NOW)


def _at_now(record: JobRecord) -> JobRecord:
    """`record` without the times that depend on when it was read."""
    steps = tuple(dataclasses.replace(st, duration_s=0.0, waiting_s=0.0) for st in record.steps)
    return dataclasses.replace(record, duration_s=0.0, waiting_s=0.0, steps=steps)


def _shaped(client: TestClient, services: Services, project: str) -> list[str]:
    """Three jobs: one plain, one with a target and steps finished with output, one RUNNING with a failed step."""
    client.put(f"/api/v1/projects/{project}/targets/record/r1", json={"attributes": {"a": 1}}).raise_for_status()
    ids = []
    for body in (
        {"type": "sleep", "params": {"steps": 2}},
        {"type": "sleep", "params": {"steps": 3}, "target": {"kind": "record", "name": "r1"}},
        {"type": "sleep", "params": {"steps": 4}},
    ):
        answer = client.post("/api/v1/jobs", json={"project": project, **body})
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    earlier = datetime.now(UTC) - timedelta(seconds=5)
    with services.db.write() as s:
        for step in s.scalars(select(models.Step).where(models.Step.job_id == ids[1], models.Step.index < 2)):
            step.status, step.progress, step.output = "FINISHED", 100.0, {"rows": step.index, "nested": [1, "x"]}
            step.started_at, step.finished_at, step.duration_s = earlier, earlier, 1.5
        running = s.get(models.Job, ids[2])
        assert running is not None
        running.status, running.started_at, running.running_since = "RUNNING", earlier, earlier
        first = s.get(models.Step, (ids[2], 0))
        assert first is not None
        first.status, first.error, first.attempt, first.fence = "RUNNING", "boom: it failed once", 2, "f-1"
        first.running_since, first.worker, first.progress = earlier, "w@host", 42.5
    return ids


def test_a_job_reads_as_the_orm_reads_it(client: TestClient, services: Services, project: str) -> None:
    for job_id in _shaped(client, services, project):
        expected = _at_now(_orm(services, job_id))
        with services.db.read() as s:
            in_transaction = jobs_store.get_job(s, job_id)
        alone = services.db.query(lambda conn, job_id=job_id: jobs_store.get_job(conn, job_id))
        assert _at_now(in_transaction) == expected
        assert _at_now(alone) == expected
        assert alone.created_at.tzinfo is UTC and [st.index for st in alone.steps] == list(range(len(alone.steps)))


def test_jobs_load_in_the_order_asked_and_missing_ones_are_skipped(
    client: TestClient, services: Services, project: str
) -> None:
    ids = _shaped(client, services, project)
    asked = [ids[2], "no-such-job", ids[0], ids[1]]
    with services.db.read() as s:
        loaded = jobs_store.load_jobs(s, asked)
        assert jobs_store.load_jobs(s, []) == []
    assert [job.id for job in loaded] == [ids[2], ids[0], ids[1]]
    assert [_at_now(job) for job in loaded] == [_at_now(_orm(services, i)) for i in (ids[2], ids[0], ids[1])]


def test_project_ids_name_the_projects_that_exist(services: Services, project: str) -> None:
    with services.db.read() as s:
        made = accounts.get_project(s, project)
        assert accounts.project_ids(s, [project, "no-such-project"]) == {project: made.id}
        assert accounts.project_ids(s, []) == {}
