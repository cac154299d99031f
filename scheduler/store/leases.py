"""A running attempt's own writes, each fenced by its token: heartbeats (lease, progress and info), log lines,
checkpoints; and the leases that ran out, which the scheduler recovers (`Operations.worker_lost`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import S, fenced, utcnow


@dataclass(frozen=True)
class ExpiredLease:
    job_id: str
    job_type: str
    step_index: int
    fence: str
    started: bool  # False: the message was never picked up; True: the worker died mid-step
    attempt: int
    worker: str | None


def expired_leases(session: Session, now: datetime) -> list[ExpiredLease]:
    """Current attempts of RUNNING jobs whose lease ran out."""
    rows = session.execute(
        select(models.Step, models.Job.type)
        .join(models.Job, models.Job.id == models.Step.job_id)
        .where(
            models.Job.status == S.RUNNING.value,
            models.Step.fence.is_not(None),
            models.Step.lease_until < now,
        )
    ).all()
    return [
        ExpiredLease(s.job_id, t, s.index, s.fence or "", s.status == S.RUNNING.value, s.attempt, s.worker)
        for s, t in rows
    ]


@dataclass(frozen=True)
class StepStart:
    """Everything a worker needs to run the step it was just granted."""

    job_id: str
    project_id: int
    job_type: str
    params: dict[str, Any]
    target: tuple[str, str, str | None] | None
    step_index: int
    step_name: str
    step_count: int
    attempt: int
    checkpoint: dict[str, Any]
    outputs: dict[str, Any]
    fence: str
    failures: int = 0  # attempts of this step that failed before (since the job was submitted, resumed, restarted)
    info: dict[str, Any] | None = None  # what earlier attempts of the step reported with `ctx.info`


def lock_attempt(session: Session, job_id: str, index: int, fence: str, *, expired: bool = False) -> bool:
    """Lock the job row (always before its steps: one lock order everywhere), then tell whether `fence` is
    still the step's current attempt - and, with `expired`, whether its lease has run out."""
    session.execute(select(models.Job.id).where(models.Job.id == job_id).with_for_update())
    query = select(models.Step.index).where(*fenced(job_id, index, fence))
    if expired:
        query = query.where(models.Step.lease_until < utcnow())
    return session.scalar(query) is not None


def heartbeat(
    session: Session,
    job_id: str,
    index: int,
    fence: str,
    progress: float | None,
    lease_s: float,
    *,
    info: dict[str, Any] | None = None,
) -> bool:
    """Renew the attempt's lease and store its progress and its info (each unless None; the info whole, as
    merged by the step), in one statement. False if the attempt is no longer current."""
    values: dict[str, Any] = {"lease_until": utcnow() + timedelta(seconds=lease_s)}
    if progress is not None:
        values["progress"] = max(0.0, min(100.0, progress))
    if info is not None:
        values["info"] = info
    result = session.execute(update(models.Step).where(*fenced(job_id, index, fence, S.RUNNING)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def is_current(session: Session, job_id: str, index: int, fence: str) -> bool:
    return session.scalar(select(models.Step.index).where(*fenced(job_id, index, fence))) is not None


def append_log(session: Session, job_id: str, index: int, fence: str, lines: Sequence[str]) -> bool:
    """Store log lines for the attempt if it is still current."""
    if not lines or not is_current(session, job_id, index, fence):
        return False
    now = utcnow()
    session.execute(
        insert(models.StepLog),
        [{"job_id": job_id, "step_index": index, "at": now, "line": line} for line in lines],
    )
    return True


def save_checkpoint(session: Session, job_id: str, index: int, fence: str, checkpoint: dict[str, Any]) -> bool:
    result = session.execute(update(models.Step).where(*fenced(job_id, index, fence)).values(checkpoint=checkpoint))
    return bool(result.rowcount)  # type: ignore[attr-defined]
