"""`GET /api/v1/stats`: counts, the slowest job types and the jobs finished and failed per day, over the jobs the
list would show for the same projects and window (docs/contract.md §4.12).

The projects and the window follow the list's own rules (`routes.jobs`): a project the caller cannot see is a
404; without `project`, every project the caller sees; `period` other than `all` with `since`/`until`, or `since`
after `until`, is a 422. What counts is `scheduler.store.stats`'s docstring.
"""

from __future__ import annotations

from datetime import date, datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from jobctl.api import scope
from jobctl.api.auth import Caller, current_user
from jobctl.api.deps import get_services
from jobctl.api.errors import responses
from jobctl.api.schemas import Period, ProjectKey, UTCTime
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import stats as stats_store

router = APIRouter(tags=["stats"], responses=responses(401, 404, 422))


class TypeStats(BaseModel):
    """One job type in the window. The times are over its FINISHED jobs only (null when none finished)."""

    type: str
    jobs: int = Field(description="its jobs in the window, in any state")
    finished: int = Field(description="of them FINISHED: the jobs the times below are taken over")
    duration_p50_s: float | None = Field(description="median time RUNNING of a finished job (`duration_s`), seconds")
    duration_p95_s: float | None = Field(description="95th percentile of that time, seconds")
    waiting_p50_s: float | None = Field(description="median time PENDING of a finished job (`waiting_s`), seconds")
    waiting_p95_s: float | None = Field(description="95th percentile of that time, seconds")


class DayStats(BaseModel):
    """One UTC day with at least one job that finished or failed on it."""

    day: date = Field(description="the UTC day, `YYYY-MM-DD`")
    finished: int = Field(description="FINISHED jobs whose `finished_at` falls on this day")
    failed: int = Field(description="jobs in ERROR whose failure (their last `fail` event) falls on this day")


class Stats(BaseModel):
    """Figures over the jobs the list shows for the same `project` and window: those created in [since, until)."""

    since: UTCTime | None = Field(description="the window's start (from `period` or `since`); null: no start")
    until: UTCTime | None = Field(description="the window's end, excluded; null: no end")
    total: int = Field(description="jobs in the window: what the list's `total` is for the same filters")
    by_status: dict[str, int] = Field(description="jobs per state: all six, in the states' order")
    by_type: dict[str, int] = Field(description="jobs per type, for the types that have any, by name")
    by_project: dict[str, int] = Field(description="jobs per project, for the projects that have any, by name")
    types: list[TypeStats] = Field(
        description="every type with jobs, slowest first: by the p95, then the p50, of the running time; "
        "types without a finished job last"
    )
    daily: list[DayStats] = Field(
        description="oldest first: per UTC day, the jobs that FINISHED on it and the jobs in ERROR that failed on "
        "it; days without either are left out"
    )


@router.get("/stats", response_model=Stats, summary="Counts, slowest job types and outcomes per day")
def job_stats(
    project: list[ProjectKey] | None = Query(None, max_length=100, description="repeatable; omitted: all visible"),
    period: Period | None = Query(
        None, description="created within this period (default: all); other than `all`, not with since/until (422)"
    ),
    since: datetime | None = Query(
        None, description="created at or after (ISO-8601; naive means UTC); not after until, not with period (422)"
    ),
    until: datetime | None = Query(
        None, description="created before (ISO-8601; naive means UTC); not with period (422)"
    ),
    caller: Caller = Depends(current_user),
    services: Services = Depends(get_services),
) -> Stats:
    """Statistics of the jobs the caller can see in the named projects (default: all they see), created in the
    window: counts by status, type and project; per type the median and 95th percentile of the running and
    waiting times of its FINISHED jobs; per UTC day, the jobs that finished and those in ERROR that failed.

    A `project` the caller cannot see is a 404, as in the list; `period` other than `all` together with
    `since`/`until`, or `since` after `until`, is a 422."""
    since, until = scope.window(period, since, until)
    with services.db.read() as s:
        project_ids = scope.project_ids(s, caller, project)
        found = stats_store.job_stats(s, stats_store.StatsQuery(project_ids, since, until))
    return Stats(
        since=since,
        until=until,
        total=found.total,
        by_status=found.by_status,
        by_type=found.by_type,
        by_project=found.by_project,
        types=[TypeStats(**t.__dict__) for t in found.types],
        daily=[DayStats(**d.__dict__) for d in found.daily],
    )
