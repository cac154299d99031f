"""Statistics over the jobs of a window (docs/contract.md §4.12): counts by status, type and project; per type the
median and 95th percentile of the running and waiting times; per UTC day the jobs that finished and failed.

Which jobs count: those the job list would show with the same projects and window - created at or after `since`
and before `until`. Then:

- the counts take every one of them, whatever its state;
- a type's percentiles take its FINISHED jobs only: their `duration_s` (the time they ran, over every attempt of
  the run) and `waiting_s` (the time they waited PENDING). A job that is still going, or ended in ERROR or
  DISCARDED, has run part of its work only and would make a type look faster than it is;
- `daily` counts each FINISHED job on the UTC day of its `finished_at`, and each job in ERROR on the UTC day of
  the failure that put it there (its last `fail` event).

Everything is computed by the database, in four statements that each read the window's jobs once: the counts
(GROUP BY project, type and status), the percentiles (PostgreSQL's `percentile_cont` grouped by type; elsewhere
window functions that rank each type's finished jobs and answer only the rows next to each percentile, at most
eight a type: `_ranked`, which gives the same figures), and the days (GROUP BY `date()`; a job in ERROR finds its
last failure through `ix_events_job_id`). Nothing the size of the window reaches Python: the answer grows with
the number of types, projects and days, the time as n log n in the window's jobs (sorting each type's finished
ones). Measured on 100,000 jobs in 5 projects (80,000 finished, 12 types, 60 days) on a busy 2-core machine: all
of them in 0.16 s on PostgreSQL and 0.8 s on SQLite; one project's 20,000 in 0.04 s and 0.17 s; the last
week's 12,000 in 0.03 s and 0.12 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from jobctl.scheduler.store import models
from jobctl.states import Action, JobStatus

#: the percentiles of each type's times, as (name, hundredths): p50 is the median
PERCENTILES = (("p50", 50), ("p95", 95))


@dataclass(frozen=True)
class StatsQuery:
    """Which jobs count: those of these projects (None: every project) created in [since, until)."""

    project_ids: Sequence[int] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class TypeStats:
    """One job type: how many jobs, how many FINISHED, and the percentiles of those finished jobs' times (None
    when none finished)."""

    type: str
    jobs: int
    finished: int
    duration_p50_s: float | None = None
    duration_p95_s: float | None = None
    waiting_p50_s: float | None = None
    waiting_p95_s: float | None = None


@dataclass(frozen=True)
class DayStats:
    """One UTC day: the jobs that finished on it, and the jobs in ERROR that failed on it."""

    day: date
    finished: int
    failed: int


@dataclass(frozen=True)
class Stats:
    """Every figure of one window. `by_status` names all six states, in docs/contract.md §2's order; `by_type`
    and `by_project` only those with jobs, by name; `types` slowest first (p95, then p50 of the running time;
    types without a finished job last, by name); `daily` oldest first, only days with a job."""

    total: int
    by_status: dict[str, int]
    by_type: dict[str, int]
    by_project: dict[str, int]
    types: list[TypeStats]
    daily: list[DayStats]


def job_stats(session: Session, query: StatsQuery) -> Stats:
    """The statistics of the jobs `query` selects (see the module's docstring for what counts)."""
    where = _window(query)
    by_status = {s.value: 0 for s in JobStatus}
    by_type: dict[str, int] = {}
    by_project: dict[str, int] = {}
    counted = session.execute(
        select(models.Project.name, models.Job.type, models.Job.status, func.count())
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(*where)
        .group_by(models.Project.name, models.Job.type, models.Job.status)
    )
    finished: dict[str, int] = {}
    for project, job_type, status, n in counted:
        by_status[status] += n
        by_type[job_type] = by_type.get(job_type, 0) + n
        by_project[project] = by_project.get(project, 0) + n
        if status == JobStatus.FINISHED.value:
            finished[job_type] = finished.get(job_type, 0) + n
    times = _percentiles(session, where)
    types = [TypeStats(t, n, finished.get(t, 0), **times.get(t, {})) for t, n in by_type.items()]
    types.sort(key=_slowest_first)
    return Stats(
        total=sum(by_status.values()),
        by_status=by_status,
        by_type=dict(sorted(by_type.items())),
        by_project=dict(sorted(by_project.items())),
        types=types,
        daily=_daily(session, where),
    )


def percentile(values: Sequence[float], hundredths: int) -> float:
    """The `hundredths` percentile of sorted `values`, by linear interpolation between the two closest ranks:
    PostgreSQL's `percentile_cont` (and Python's `statistics.quantiles(method="inclusive")`). What `job_stats`
    computes in SQL, written out for one list (the tests compare the two)."""
    return _interpolated(values, len(values), hundredths)


# ------------------------------------------------------------------------------------------------ internals


def _window(query: StatsQuery) -> list[Any]:
    """The list's own conditions for projects and creation time (`store.jobs.list_jobs`)."""
    where: list[Any] = []
    if query.project_ids is not None:
        where.append(models.Job.project_id.in_(list(query.project_ids)))
    if query.since is not None:
        where.append(models.Job.created_at >= query.since)
    if query.until is not None:
        where.append(models.Job.created_at < query.until)
    return where


def _percentiles(session: Session, where: list[Any]) -> dict[str, dict[str, float]]:
    """type -> {duration_p50_s: ..., waiting_p95_s: ...} over each type's FINISHED jobs: PostgreSQL's own
    `percentile_cont`, else `_ranked` (the same figures: tests/api/test_stats.py holds the two to each other)."""
    if session.connection().dialect.name == "postgresql":
        return _percentile_cont(session, where)
    return _ranked(session, where)


def _percentile_cont(session: Session, where: list[Any]) -> dict[str, dict[str, float]]:
    """`_percentiles` on PostgreSQL: one aggregate per time, grouped by type."""
    job = models.Job
    fractions = [hundredths / 100 for _, hundredths in PERCENTILES]
    columns = [
        func.percentile_cont(fractions).within_group(column).label(name)
        for name, column in (("duration", job.duration_s), ("waiting", job.waiting_s))
    ]
    rows = session.execute(
        select(job.type, *columns).where(*where, job.status == JobStatus.FINISHED.value).group_by(job.type)
    )
    found: dict[str, dict[str, float]] = {}
    for job_type, durations, waits in rows:
        figures: dict[str, float] = {}
        for (name, _), duration, waiting in zip(PERCENTILES, durations, waits, strict=True):
            figures[f"duration_{name}_s"] = duration
            figures[f"waiting_{name}_s"] = waiting
        found[job_type] = figures
    return found


def _ranked(session: Session, where: list[Any]) -> dict[str, dict[str, float]]:
    """`_percentiles` in portable SQL (window functions: SQLite and PostgreSQL alike). Each finished job is ranked
    within its type twice (by duration, by waiting time; ranks from 0), and only the rows whose rank is next to
    a percentile's position come back - for p% of n values, the ranks floor(p(n-1)/100) and the one after -
    to be interpolated as `percentile` does."""
    job = models.Job
    ranked = (
        select(
            job.type.label("type"),
            job.duration_s.label("duration"),
            job.waiting_s.label("waiting"),
            (func.row_number().over(partition_by=job.type, order_by=job.duration_s) - 1).label("duration_rank"),
            (func.row_number().over(partition_by=job.type, order_by=job.waiting_s) - 1).label("waiting_rank"),
            func.count().over(partition_by=job.type).label("n"),
        )
        .where(*where, job.status == JobStatus.FINISHED.value)
        .subquery()
    )
    near: list[Any] = []
    for _, hundredths in PERCENTILES:
        low = (hundredths * (ranked.c.n - 1)) // 100  # integer division on both backends
        near += [low, low + 1]
    rows = session.execute(
        select(
            ranked.c.type,
            ranked.c.n,
            ranked.c.duration_rank,
            ranked.c.duration,
            ranked.c.waiting_rank,
            ranked.c.waiting,
        ).where(ranked.c.duration_rank.in_(near) | ranked.c.waiting_rank.in_(near))
    )
    ranks: dict[str, tuple[int, dict[int, float], dict[int, float]]] = {}
    for job_type, n, duration_rank, duration, waiting_rank, waiting in rows:
        _, durations, waits = ranks.setdefault(job_type, (n, {}, {}))
        durations[duration_rank] = duration
        waits[waiting_rank] = waiting
    found: dict[str, dict[str, float]] = {}
    for job_type, (n, durations, waits) in ranks.items():
        figures: dict[str, float] = {}
        for name, hundredths in PERCENTILES:
            figures[f"duration_{name}_s"] = _interpolated(durations, n, hundredths)
            figures[f"waiting_{name}_s"] = _interpolated(waits, n, hundredths)
        found[job_type] = figures
    return found


def _interpolated(ranked: Sequence[float] | Mapping[int, float], n: int, hundredths: int) -> float:
    """The `hundredths` percentile of n sorted values, of which `ranked` holds (by rank, from 0) at least the two
    next to its position, p(n-1)/100: exact in integers, so the rank is never off by a rounding."""
    lo, frac = divmod(hundredths * (n - 1), 100)
    if frac == 0:
        return ranked[lo]
    return ranked[lo] + (ranked[lo + 1] - ranked[lo]) * (frac / 100)


def _slowest_first(t: TypeStats) -> tuple[bool, float, float, str]:
    return (t.duration_p95_s is None, -(t.duration_p95_s or 0.0), -(t.duration_p50_s or 0.0), t.type)


def _daily(session: Session, where: list[Any]) -> list[DayStats]:
    """Per UTC day: FINISHED jobs by the day they finished, jobs in ERROR by the day of their last failure."""
    job = models.Job
    finished = session.execute(
        select(func.date(job.finished_at), func.count())
        .where(*where, job.status == JobStatus.FINISHED.value, job.finished_at.is_not(None))
        .group_by(func.date(job.finished_at))
    )
    last_failure = (
        select(func.max(models.Event.at))
        .where(models.Event.job_id == job.id, models.Event.action == Action.FAIL.value)
        .scalar_subquery()
    )
    failures = (
        select(func.date(func.coalesce(last_failure, job.updated_at)).label("day"))
        .where(*where, job.status == JobStatus.ERROR.value)
        .subquery()
    )
    failed = session.execute(select(failures.c.day, func.count()).group_by(failures.c.day))
    days: dict[date, list[int]] = {}
    for day, n in finished:
        days.setdefault(_day(day), [0, 0])[0] += n
    for day, n in failed:
        days.setdefault(_day(day), [0, 0])[1] += n
    return [DayStats(day, f, e) for day, (f, e) in sorted(days.items())]


def _day(value: date | str) -> date:
    """A `date()` of the database as a date (PostgreSQL answers one, SQLite its ISO text)."""
    return value if isinstance(value, date) else date.fromisoformat(value)
