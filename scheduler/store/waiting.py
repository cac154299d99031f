"""Why a PENDING job has not started yet: its `waiting_for` (docs/contract.md §4.3), for a whole page of jobs in a
fixed number of statements.

The reasons mirror what the dispatcher does (`scheduler/dispatcher.py`: the limits; `store/dispatch.py`:
`may_start`, `DISPATCH_ORDER`). The first of these that holds is the job's reason:

1. `restart cleanup` - the job was restarted and waits for the cleanup of its earlier run (its `retry_at` is in
   the future and its current step has no retry due: `Operations.release_restart_hold` ends the wait, at the
   latest `JOBCTL_STOP_GRACE_S` + 15 s after the restart);
2. `retry at T` - a failed attempt of its current step is retried at T (ISO-8601 UTC, to the second);
3. `target held by job X` - the RUNNING job X works on the same target (project, kind, name) and one of the two
   is exclusive (X: the smallest such id);
4. `worker capacity unknown` - Redis cannot tell the live workers' capacity (the dispatcher starts nothing then);
5. `no live worker` - no live worker consumes the queue;
6. `global limit R/N` - the R RUNNING jobs of every project have reached `JOBCTL_MAX_RUNNING` = N (which is not
   above the workers' capacity);
7. `worker capacity R/C` - the R RUNNING jobs fill the C processes of the live workers;
8. `project limit R/N` - the project's R RUNNING jobs have reached its limit N (its `max_running`, else
   `JOBCTL_PROJECT_MAX_RUNNING`);
9. `position N in the project's queue` - it may start now and is the project's Nth such job in dispatch order
   (priority, then age): each dispatch pass takes the first ones of every project in turn.

Cost: nothing for a page without a PENDING job; otherwise two statements, however many jobs the page holds -
every project's limit and RUNNING count (`store.dispatch.project_loads`, the dispatcher's own read; their sum is
the global count), and the page's PENDING jobs with their `retry_at`, the job holding their target and their
position (one `ROW_NUMBER()` over the queues of the page's projects) - plus the workers' capacity, which the
caller reads where the dispatcher does (`Dispatcher.capacity`, from Redis) and passes in `Limits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, or_, select
from sqlalchemy.orm import Session, aliased

from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import S, connection_of, utcnow
from jobctl.scheduler.store.dispatch import DISPATCH_ORDER, project_loads

__all__ = ["Facts", "Limits", "reason", "waiting_for"]


@dataclass(frozen=True)
class Limits:
    """What bounds the RUNNING jobs besides the database: the live workers' processes (None: Redis cannot tell),
    `JOBCTL_MAX_RUNNING` (None: no global limit) and the default project limit (`JOBCTL_PROJECT_MAX_RUNNING`)."""

    capacity: int | None
    max_running: int | None
    project_max_running: int


@dataclass(frozen=True)
class Facts:
    """What the rules need of one PENDING job (from `_FACTS`)."""

    project_id: int
    retry_at: datetime | None
    held_by: str | None
    position: int | None


_PAGE = aliased(models.Job, name="page")

#: The targets RUNNING jobs hold, each with its first holder of any type and its first exclusive holder: a few
#: rows (no more than the RUNNING jobs), read once for the whole page.
_HELD = (
    select(
        models.Job.project_id,
        models.Job.target_kind,
        models.Job.target_name,
        func.min(models.Job.id).label("any_holder"),
        func.min(case((models.Job.exclusive.is_(True), models.Job.id))).label("exclusive_holder"),
    )
    .where(models.Job.status == S.RUNNING.value, models.Job.target_kind.is_not(None))
    .group_by(models.Job.project_id, models.Job.target_kind, models.Job.target_name)
    .cte("held")
)


def _holder(job: Any) -> Any:
    """The RUNNING job that keeps `job` (the model or an alias, outer-joined to `_HELD` on its target) from
    starting, or NULL: `may_start`'s rule - a RUNNING job on its target where either of the two is exclusive."""
    return case((job.exclusive.is_(True), _HELD.c.any_holder), else_=_HELD.c.exclusive_holder)


def _on_target(job: Any) -> Any:
    return and_(
        _HELD.c.project_id == job.project_id,
        _HELD.c.target_kind == job.target_kind,
        _HELD.c.target_name == job.target_name,
    )


#: The queues of the page's projects: every PENDING job that may start now (`may_start`: no retry delay due
#: later, no holder), numbered in dispatch order. Numbered once, then joined (never once per job of the page).
_QUEUE = (
    select(
        models.Job.id,
        func.row_number().over(partition_by=models.Job.project_id, order_by=DISPATCH_ORDER).label("position"),
    )
    .outerjoin(_HELD, _on_target(models.Job))
    .where(
        models.Job.status == S.PENDING.value,
        models.Job.project_id.in_(
            select(models.Project.id).where(models.Project.name.in_(bindparam("projects", expanding=True)))
        ),
        or_(models.Job.retry_at.is_(None), models.Job.retry_at <= bindparam("now", type_=models.UTCDateTime())),
        _holder(models.Job).is_(None),
    )
    .cte("queue")
    .prefix_with("MATERIALIZED", dialect="postgresql")
)

#: The positions of the page's jobs in their queues.
_POSITIONS = (
    select(_QUEUE.c.id, _QUEUE.c.position)
    .where(_QUEUE.c.id.in_(bindparam("ids", expanding=True)))
    .cte("positions")
    .prefix_with("MATERIALIZED", dialect="postgresql")  # a page's rows, joined once
)

#: The page's jobs that are PENDING (parameter `ids`, their projects' names `projects`), with their facts
#: (parameter `now`).
_FACTS = (
    select(_PAGE.id, _PAGE.project_id, _PAGE.retry_at, _holder(_PAGE).label("held_by"), _POSITIONS.c.position)
    .outerjoin(_HELD, _on_target(_PAGE))
    .outerjoin(_POSITIONS, _POSITIONS.c.id == _PAGE.id)
    .where(_PAGE.id.in_(bindparam("ids", expanding=True)), _PAGE.status == S.PENDING.value)
)


def waiting_for(
    reader: Session | Connection, jobs: Sequence[JobRecord], limits: Limits, now: datetime | None = None
) -> dict[str, str]:
    """The `waiting_for` of each PENDING job of `jobs`, by id (other jobs are left out, and so is a job that left
    PENDING since it was read), as of `now`. Two statements, or none when no job is PENDING (see the module)."""
    pending = {job.id: job for job in jobs if job.status is S.PENDING}
    if not pending:
        return {}
    now = now or utcnow()
    conn = connection_of(reader)
    loads = project_loads(conn)
    running = sum(n for _, n in loads.values())
    projects = sorted({job.project for job in pending.values()})
    rows = conn.execute(_FACTS, {"ids": sorted(pending), "projects": projects, "now": now})
    found = {}
    for job_id, project_id, retry_at, held_by, position in rows:
        facts = Facts(project_id, _aware(retry_at), held_by, position)
        found[job_id] = reason(pending[job_id], facts, loads.get(project_id, (None, 0)), running, limits, now)
    return found


def reason(
    job: JobRecord, facts: Facts, load: tuple[int | None, int], running: int, limits: Limits, now: datetime
) -> str:
    """The rules of the module, in their order, for one PENDING job: `load` is its project's (own limit or None,
    RUNNING jobs), `running` the RUNNING jobs of every project."""
    if facts.retry_at is not None and facts.retry_at > now:
        step = job.current_step
        if step is None or step.retry_at is None:
            return "restart cleanup"
        return f"retry at {facts.retry_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"
    if facts.held_by is not None:
        return f"target held by job {facts.held_by}"
    if limits.capacity is None:
        return "worker capacity unknown"
    if limits.capacity <= 0:
        return "no live worker"
    if limits.max_running is not None and limits.max_running <= limits.capacity and running >= limits.max_running:
        return f"global limit {running}/{limits.max_running}"
    if running >= limits.capacity:
        return f"worker capacity {running}/{limits.capacity}"
    own, in_project = load
    limit = own or limits.project_max_running
    if in_project >= limit:
        return f"project limit {in_project}/{limit}"
    if facts.position is None:  # not in the queue, yet held by nothing: cannot be, both are read in one statement
        return "position unknown in the project's queue"
    return f"position {facts.position} in the project's queue"


def _aware(value: datetime | None) -> datetime | None:
    """A time read from a raw statement as aware UTC (the column type does it; this keeps a naive one safe)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
