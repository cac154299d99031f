"""Jobs with known states, times and failures for the statistics' tests (API, command line, browser).

Each job is inserted through the store and brought to its state by real transitions (no worker runs it); then
its creation time, running and waiting times, `finished_at` and the times of its `fail` events are set by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobctl.scheduler.records import StepSpec
from jobctl.scheduler.store import accounts, models, submission, transitions
from jobctl.scheduler.store.db import Database
from jobctl.states import Action, JobStatus

S = JobStatus


@dataclass(frozen=True)
class Seeded:
    """One job to make: its type, final state and times. `finished_at` replaces the time a FINISHED job was
    finished (else it is now, for FINISHED and DISCARDED jobs). `failures` are the times of its `fail` events,
    oldest first; each but (for a job left in ERROR) the last is followed by a resume."""

    type: str
    status: JobStatus
    created_at: datetime
    duration_s: float = 0.0
    waiting_s: float = 0.0
    finished_at: datetime | None = None
    failures: tuple[datetime, ...] = ()


def midnight(days_ago: int) -> datetime:
    """UTC midnight `days_ago` days before today."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def seed(db: Database, project: str, jobs: Sequence[Seeded]) -> list[str]:
    """Make `jobs` in `project`, in one transaction; their ids, in order."""
    ids: list[str] = []
    with db.write() as s:
        project_id = accounts.project_ids(s, [project])[project]
        for job in jobs:
            job_id = submission.insert_job(
                s,
                project_id=project_id,
                job_type=job.type,
                steps=[StepSpec("only")],
                params={},
                priority=3,
                submitter="stats-seed",
                target=None,
            ).id
            ids.append(job_id)
            _bring(s, job_id, job)
            values: dict[str, object] = {
                "created_at": job.created_at,
                "duration_s": job.duration_s,
                "waiting_s": job.waiting_s,
            }
            if job.finished_at is not None:
                values["finished_at"] = job.finished_at
            if job.failures and job.status is S.ERROR:
                values["updated_at"] = job.failures[-1]
            s.execute(update(models.Job).where(models.Job.id == job_id).values(**values))
            fails = s.scalars(
                select(models.Event.id)
                .where(models.Event.job_id == job_id, models.Event.action == Action.FAIL.value)
                .order_by(models.Event.id)
            ).all()
            assert len(fails) == len(job.failures)
            for event_id, at in zip(fails, job.failures, strict=True):
                s.execute(update(models.Event).where(models.Event.id == event_id).values(at=at))
    return ids


def _bring(s: Session, job_id: str, job: Seeded) -> None:
    """Take the job from PENDING to `job.status` through its failures, by the transitions a worker would cause."""
    go = transitions.transition
    for index, _ in enumerate(job.failures):
        go(s, job_id, Action.DISPATCH, "stats-seed")
        go(s, job_id, Action.FAIL, "worker", "boom")
        if index < len(job.failures) - 1 or job.status is not S.ERROR:
            go(s, job_id, Action.RESUME, "stats-seed")
    if job.status is S.FINISHED:
        go(s, job_id, Action.DISPATCH, "stats-seed")
        go(s, job_id, Action.FINISH, "worker")
    elif job.status is S.RUNNING:
        go(s, job_id, Action.DISPATCH, "stats-seed")
    elif job.status is S.PAUSED:
        go(s, job_id, Action.PAUSE, "stats-seed")
    elif job.status is S.DISCARDED:
        go(s, job_id, Action.DISCARD, "stats-seed")
    elif job.status is S.ERROR:
        assert job.failures, "a job in ERROR needs a failure"
