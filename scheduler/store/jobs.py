"""Reading jobs: one job, a page of the list with its filters and sort keys (`SORTS`, the one definition of the
list's sort orders), counts, events, step logs, the jobs of a target; and purging old final jobs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import Invalid, NotFound
from jobctl.scheduler.records import (
    EventRecord,
    JobRecord,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import S, connection_of, utcnow
from jobctl.scheduler.store.prepared import Prepared
from jobctl.scheduler.store.rows import JOB_KEYS, STEP_KEYS, job_and_steps, jobs_with_steps, labelled, plain
from jobctl.states import NON_FINAL, JobStatus


def get_job(session: Session | Connection, job_id: str) -> JobRecord:
    """The job with its steps; `NotFound` otherwise. One statement, so it may run outside a transaction
    (`Database.query`)."""
    conn = connection_of(session)
    rows = _ONE_JOB.fetch(conn, {"job_id": job_id})
    if not rows:
        raise NotFound(f"job {job_id!r} not found")
    job, steps = job_and_steps(_ONE_JOB, conn, rows)
    return JobRecord.from_row(job, job.project_name, steps, utcnow())


_ONE_JOB = Prepared(jobs_with_steps().where(models.Job.id == bindparam("job_id")))


def load_jobs(session: Session, job_ids: Sequence[str]) -> list[JobRecord]:
    """The jobs with these ids, with their steps, in the order given (missing ids are skipped). Two statements:
    the jobs, then their steps (a job's columns, its JSON params among them, are read once, not once a step)."""
    if not job_ids:
        return []
    now = utcnow()
    conn = session.connection()
    ids = {"ids": list(job_ids)}
    steps: dict[str, list[Any]] = {}
    for row in conn.execute(_STEPS_OF, ids):
        step = plain(row, STEP_KEYS)
        steps.setdefault(step.job_id, []).append(step)
    by_id = {}
    for row in conn.execute(_JOBS, ids):
        job = plain(row, JOB_KEYS)
        by_id[job.id] = JobRecord.from_row(job, job.project_name, steps.get(job.id, []), now)
    return [by_id[i] for i in job_ids if i in by_id]


_JOBS = (
    select(*labelled(models.Job), models.Project.name.label("project_name"))
    .join(models.Project, models.Project.id == models.Job.project_id)
    .where(models.Job.id.in_(bindparam("ids", expanding=True)))
)
_STEPS_OF = (
    select(*labelled(models.Step))
    .where(models.Step.job_id.in_(bindparam("ids", expanding=True)))
    .order_by(models.Step.job_id, models.Step.index)
)


@dataclass(frozen=True)
class JobQuery:
    """The list API's query (docs/contract.md §4), already validated."""

    project_ids: Sequence[int] | None = None  # None: no project restriction
    statuses: Sequence[JobStatus] = ()
    type: str | None = None
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    error_codes: Sequence[str] = ()  # only jobs whose error has one of these codes (`jobs.error_code`)
    ids: Sequence[str] = ()  # only these jobs
    sort: str = "-created_at"
    page: int = 1
    page_size: int = 50


SORTS = {
    "created_at": (models.Job.created_at,),
    "duration": (models.Job.duration_s,),
    "status": (models.Job.status,),
    "project": (models.Project.name,),
    "type": (models.Job.type,),
}


def list_jobs(session: Session, query: JobQuery) -> tuple[list[JobRecord], int]:
    """One page of the jobs matching `query`, and how many match in all."""
    where = _job_filter(query)
    total = (
        session.scalar(
            select(func.count())
            .select_from(models.Job)
            .join(models.Project, models.Project.id == models.Job.project_id)
            .where(*where)
        )
        or 0
    )
    key = query.sort.lstrip("-")
    if key not in SORTS:
        raise Invalid(f"unknown sort {query.sort!r}; use one of {', '.join(sorted(SORTS))} (with - to reverse)")
    descending = query.sort.startswith("-")
    order: list[Any] = [c.desc() if descending else c.asc() for c in SORTS[key]]
    order.append(models.Job.created_at.desc() if descending or key != "created_at" else models.Job.created_at.asc())
    order.append(models.Job.id.desc() if descending else models.Job.id.asc())
    ids_query = (
        select(models.Job.id)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(*where)
        .order_by(*order)
        .limit(query.page_size)
        .offset((query.page - 1) * query.page_size)
    )
    ids = list(session.scalars(ids_query))
    return load_jobs(session, ids), total


def _job_filter(query: JobQuery) -> list[Any]:
    where: list[Any] = []
    if query.project_ids is not None:
        where.append(models.Job.project_id.in_(list(query.project_ids)))
    if query.statuses:
        where.append(models.Job.status.in_([s.value for s in query.statuses]))
    if query.type:
        where.append(models.Job.type == query.type)
    if query.error_codes:
        where.append(models.Job.error_code.in_(list(query.error_codes)))
    if query.ids:
        where.append(models.Job.id.in_(list(query.ids)))
    if query.q:
        # Case-insensitive on both backends (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
        escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(
            or_(
                models.Job.id.like(f"{escaped}%", escape="\\"),
                func.lower(models.Job.target_name).like(f"%{escaped}%", escape="\\"),
            )
        )
    if query.since:
        where.append(models.Job.created_at >= query.since)
    if query.until:
        where.append(models.Job.created_at < query.until)
    return where


def count_jobs_by_project_status(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs each (project, status) pair has."""
    rows = session.execute(
        select(models.Project.name, models.Job.status, func.count())
        .join(models.Job, models.Job.project_id == models.Project.id)
        .group_by(models.Project.name, models.Job.status)
    )
    return {(project, status): n for project, status, n in rows}


def project_of_job(session: Session, job_id: str) -> str:
    """The name of the job's project; `NotFound` if there is no such job."""
    name = session.scalar(
        select(models.Project.name)
        .join(models.Job, models.Job.project_id == models.Project.id)
        .where(models.Job.id == job_id)
    )
    if name is None:
        raise NotFound(f"job {job_id!r} not found")
    return name


def projects_of_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, str]:
    """job id -> project name, for those of `job_ids` that exist."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(models.Job.id, models.Project.name)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(models.Job.id.in_(list(job_ids)))
    )
    return {job_id: project for job_id, project in rows}


def states_of_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, tuple[JobStatus, str]]:
    """job id -> (its status, its project's name), for those of `job_ids` that exist."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(models.Job.id, models.Job.status, models.Project.name)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(models.Job.id.in_(list(job_ids)))
    )
    return {job_id: (JobStatus(status), project) for job_id, status, project in rows}


def matching_job_ids(session: Session, query: JobQuery, limit: int) -> list[str]:
    """Ids of up to `limit` jobs matching `query`'s filters (its sort and paging are ignored), oldest first."""
    rows = session.scalars(
        select(models.Job.id)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(*_job_filter(query))
        .order_by(models.Job.created_at, models.Job.id)
        .limit(limit)
    )
    return list(rows)


def job_events(session: Session, job_id: str) -> list[EventRecord]:
    rows = session.scalars(select(models.Event).where(models.Event.job_id == job_id).order_by(models.Event.id))
    return [
        EventRecord(
            id=r.id,
            job_id=r.job_id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            from_status=r.from_status,
            to_status=r.to_status,
            reason=r.reason,
            details=r.details,
        )
        for r in rows
    ]


def step_log(session: Session, job_id: str, index: int, tail: int | None) -> list[str]:
    """The step's log lines, oldest first; the last `tail` of them if given."""
    if (
        session.scalar(select(models.Step.index).where(models.Step.job_id == job_id, models.Step.index == index))
        is None
    ):
        raise NotFound(f"job {job_id!r} has no step {index}")
    query = select(models.StepLog.line).where(models.StepLog.job_id == job_id, models.StepLog.step_index == index)
    if tail is not None:
        lines = list(session.scalars(query.order_by(models.StepLog.id.desc()).limit(tail)))
        return lines[::-1]
    return list(session.scalars(query.order_by(models.StepLog.id)))


def jobs_of_target(session: Session, project_id: int, kind: str, name: str) -> list[str]:
    """Ids of the non-final jobs working on this target."""
    return list(
        session.scalars(
            select(models.Job.id).where(
                models.Job.project_id == project_id,
                models.Job.target_kind == kind,
                models.Job.target_name == name,
                models.Job.status.in_([s.value for s in NON_FINAL]),
            )
        )
    )


def targeted_jobs(session: Session) -> list[tuple[str, int, str, str, str | None]]:
    """(job id, project id, kind, name, version) of every non-final job that has a target."""
    rows = session.execute(
        select(
            models.Job.id,
            models.Job.project_id,
            models.Job.target_kind,
            models.Job.target_name,
            models.Job.target_version,
        ).where(models.Job.status.in_([s.value for s in NON_FINAL]), models.Job.target_kind.is_not(None))
    )
    return [(r[0], r[1], r[2] or "", r[3] or "", r[4]) for r in rows]


def purge_final_jobs(session: Session, before: datetime, limit: int = 500) -> int:
    """Delete up to `limit` final jobs that finished before `before`. Returns how many."""
    ids = list(
        session.scalars(
            select(models.Job.id)
            .where(models.Job.status.in_([S.FINISHED.value, S.DISCARDED.value]), models.Job.finished_at < before)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(models.Job).where(models.Job.id.in_(ids)))
    return len(ids)
