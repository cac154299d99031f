"""The reads a dispatch pass chooses from (`scheduler.dispatcher`): each project's load, the PENDING jobs that
may start now in dispatch order (`may_start`: retry delays, exclusive targets), and the dispatch lock."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    exists,
    func,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import S, connection_of, utcnow
from jobctl.scheduler.store.prepared import Prepared

DISPATCH_LOCK_KEY = 74726  # PostgreSQL's advisory lock of dispatch passes


_DISPATCH_LOCK = Prepared(select(func.pg_advisory_xact_lock(DISPATCH_LOCK_KEY)))


def lock_dispatch(session: Session) -> None:
    """Serialise dispatch passes across schedulers (PostgreSQL advisory lock; SQLite's write lock)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        _DISPATCH_LOCK.run(conn, {})


_RUNNING = (
    select(models.Job.project_id, func.count().label("n"))
    .where(models.Job.status == S.RUNNING.value)
    .group_by(models.Job.project_id)
    .subquery()
)


_LOADS_SELECT = select(models.Project.id, models.Project.max_running, func.coalesce(_RUNNING.c.n, 0)).outerjoin(
    _RUNNING, _RUNNING.c.project_id == models.Project.id
)


_LOADS = Prepared(_LOADS_SELECT)


#: The order PENDING jobs of one project are dispatched in (`ix_jobs_dispatch` ends in these columns).
DISPATCH_ORDER = (models.Job.priority, models.Job.created_at, models.Job.id)


_HEAD = aliased(models.Job, name="head")


_HOLDER = aliased(models.Job, name="holder")


def may_start(job: Any) -> list[Any]:
    """The conditions under which the PENDING job `job` (the model or an alias) may be dispatched now: not
    waiting for a retry delay (parameter `now`), and not sharing its target with a RUNNING job where either of
    the two is exclusive. A pass starts no two such jobs on one target either (`loop.fair_order`)."""
    holder = (
        select(_HOLDER.id)
        .where(
            _HOLDER.status == S.RUNNING.value,
            _HOLDER.project_id == job.project_id,
            _HOLDER.target_kind == job.target_kind,
            _HOLDER.target_name == job.target_name,
            or_(job.exclusive.is_(True), _HOLDER.exclusive.is_(True)),
        )
        .correlate(job)
    )
    return [
        or_(job.retry_at.is_(None), job.retry_at <= bindparam("now", type_=models.UTCDateTime())),
        or_(job.target_kind.is_(None), ~exists(holder)),
    ]


def _first_pending(*columns: Any) -> Any:
    """The first PENDING job of the project in the enclosing statement, in dispatch order, that may start now."""
    return (
        select(*columns)
        .where(models.Job.status == S.PENDING.value, models.Job.project_id == models.Project.id, *may_start(models.Job))
        .order_by(*DISPATCH_ORDER)
        .limit(1)
        .correlate(models.Project)
    )


_LATERAL_HEAD = _first_pending(models.Job.id, models.Job.priority, models.Job.created_at).lateral("head")


#: `_LOADS`, and each project's first PENDING job in dispatch order, if it has one: by dialect. PostgreSQL reads
#: the head in a LATERAL subquery, an index range scan per project stopped at its first row. Joined by id to a
#: scalar subquery (what SQLite, which has no LATERAL, does: it looks the head up by its key), the planner may
#: hash the whole jobs table instead - and it did: a prepared statement's plan chosen while the table was small
#: went on reading every job on each finish as the table grew (0.9 ms a call at 3,000 jobs).
_LOADS_AND_HEADS = {
    "postgresql": Prepared(
        _LOADS_SELECT.add_columns(_LATERAL_HEAD.c.id, _LATERAL_HEAD.c.priority, _LATERAL_HEAD.c.created_at).outerjoin(
            _LATERAL_HEAD, true()
        )
    ),
    "sqlite": Prepared(
        _LOADS_SELECT.add_columns(_HEAD.id, _HEAD.priority, _HEAD.created_at).outerjoin(
            _HEAD, _HEAD.id == _first_pending(models.Job.id).scalar_subquery()
        )
    ),
}


def project_loads(session: Session | Connection) -> dict[int, tuple[int | None, int]]:
    """Every project's id: (its own limit of RUNNING jobs, or None; how many it has RUNNING), in one statement."""
    return {pid: (limit, n) for pid, limit, n in _LOADS.fetch(connection_of(session), {})}


def project_loads_and_heads(
    session: Session,
) -> tuple[dict[int, tuple[int | None, int]], dict[int, tuple[str, int, int, datetime, None]]]:
    """`project_loads`, and each project's first PENDING job in dispatch order as `pending_candidates` returns
    it (what a pass that starts one job chooses from), in one statement."""
    conn = session.connection()
    statement = _LOADS_AND_HEADS[conn.dialect.name]
    rows = statement.fetch(conn, {"now": utcnow()})
    created = statement.reader(conn.dialect, ["created_at"])
    loads = {r[0]: (r[1], r[2]) for r in rows}
    heads = {r[0]: (r[3], r[0], r[4], created(r)["created_at"], None) for r in rows if r[3] is not None}
    return loads, heads


def pending_candidates(
    session: Session, free: dict[int, int], limit: int | None = None
) -> list[tuple[str, int, int, datetime, tuple[str, str, bool] | None]]:
    """Up to free[p] (and at most `limit`) oldest highest-priority PENDING jobs of each project p that may start
    now (`may_start`): (id, project, priority, created, its target as (kind, name, exclusive) or None).

    One index range scan per project (`ix_jobs_dispatch` ends in priority, created_at, id), stopped after its
    first rows, so the cost does not grow with the backlog; joined with UNION ALL into one statement."""
    wanted = {pid: min(n, limit) if limit is not None else n for pid, n in free.items() if n > 0}
    wanted = {pid: n for pid, n in wanted.items() if n > 0}
    if not wanted:
        return []
    params: dict[str, Any] = {"now": utcnow()}
    for i, (pid, n) in enumerate(sorted(wanted.items())):
        params[f"p{i}"], params[f"n{i}"] = pid, n
    statement = _candidates(len(wanted))
    conn = session.connection()
    created = statement.reader(conn.dialect, ["created_at"])
    return [
        (r[0], r[1], r[2], created(r)["created_at"], (r[5], r[6], bool(r[4])) if r[5] is not None else None)
        for r in statement.fetch(conn, params)
    ]


@functools.cache
def _candidates(projects: int) -> Prepared:
    """`pending_candidates`' statement for this many projects: parameters p<i> (the project), n<i> (how many)."""
    job = models.Job
    parts = [
        select(job.id, job.project_id, job.priority, job.created_at, job.exclusive, job.target_kind, job.target_name)
        .where(job.status == S.PENDING.value, job.project_id == bindparam(f"p{i}"), *may_start(job))
        .order_by(*DISPATCH_ORDER)
        .limit(bindparam(f"n{i}"))
        .subquery()
        for i in range(projects)
    ]
    return Prepared(union_all(*(select(part) for part in parts)))


def job_target(session: Session, job_id: str) -> tuple[int, str, str, str | None] | None:
    """(project id, kind, name, version) of the job's target, or None if it has none."""
    row = session.execute(
        select(models.Job.project_id, models.Job.target_kind, models.Job.target_name, models.Job.target_version).where(
            models.Job.id == job_id
        )
    ).one_or_none()
    if row is None or row[1] is None:
        return None
    return row[0], row[1], row[2] or "", row[3]
