"""The one writer of a job's params after its submission: `edit_params` (docs/contract.md §2.2, "edit").

A PAUSED or ERROR job's params may be replaced. The change keeps the job's status and its steps - finished
steps keep their outputs, unfinished ones run with the new params when the job is resumed - and is recorded
as an `edit` event whose `details` hold the old and the new params, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import Invalid, NotFound
from jobctl.scheduler.records import JobRecord, StepSpec
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import utcnow
from jobctl.scheduler.store.transitions import check_allowed
from jobctl.states import Action, JobStatus

__all__ = ["edit_params", "require_editable"]


def require_editable(status: JobStatus) -> None:
    """`Conflict` (409, with `status` and `allowed`) unless a job in `status` may have its params edited."""
    check_allowed(Action.EDIT, status)


def edit_params(
    session: Session, job_id: str, params: dict[str, Any], steps: Sequence[StepSpec], actor: str
) -> tuple[JobRecord, bool]:
    """Replace the job's params with `params` (validated by its type already: `JobType.prepare`, which also
    planned `steps` from them), in the caller's transaction. Returns the job as it is now, and whether it
    changed (params equal to the current ones change nothing and record nothing).

    Locks the job's row first. `NotFound` for no such job; `Conflict` unless it is PAUSED or ERROR; `Invalid`
    if the new params plan other steps than the job has (a job keeps its steps: submit a new job instead).
    Nothing is written when it raises."""
    job = session.scalar(select(models.Job).where(models.Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    status = JobStatus(job.status)
    require_editable(status)
    rows = list(session.scalars(select(models.Step).where(models.Step.job_id == job_id).order_by(models.Step.index)))
    have = [(row.name, row.weight) for row in rows]
    planned = [(spec.name, spec.weight) for spec in steps]
    if planned != have:
        raise Invalid(
            f"these params plan other steps ({', '.join(n for n, _ in planned)}) than the job has"
            f" ({', '.join(n for n, _ in have)}); a job keeps its steps: submit a new job to run others"
        )
    project = session.scalar(select(models.Project.name).where(models.Project.id == job.project_id)) or ""
    now = utcnow()
    old = dict(job.params or {})
    changed = old != params
    if changed:
        job.params = dict(params)
        job.updated_at = now
        keys = sorted(k for k in old.keys() | params.keys() if old.get(k) != params.get(k))
        session.add(
            models.Event(
                job_id=job_id,
                at=now,
                actor=actor,
                action=Action.EDIT.value,
                from_status=status.value,
                to_status=status.value,
                reason=f"params edited: {', '.join(keys)}",
                details={"old": old, "new": dict(params)},
            )
        )
        session.flush()
    return JobRecord.from_row(job, project, rows, now), changed
