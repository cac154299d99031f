"""The one writer of a job's status: every change of a job's or a step's status, attempt or times is written
by the rules here.

- `transition` takes an action on a job: it locks the row, checks the transition table (`jobctl.states`),
  applies the action's effects on the job and its steps and writes the event, in the caller's transaction,
  through the ORM.
- The rules - `claim_attempt`, `start_attempt`, `finish_step`, `stop_attempt`, `reset_step`, `clear_error`,
  `account_time` - are each written once and change a row in memory; `transition` applies them to ORM objects,
  and the worker's path (`store.handover`, on plain rows and prepared statements) applies the same functions.

docs/architecture.md says where to change a rule; docs/contract.md §2 gives the states and the table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    delete,
    exists,
    select,
    update,
)
from sqlalchemy.orm import Session

from jobctl.scheduler import failures
from jobctl.scheduler.errors import Conflict, NotFound
from jobctl.scheduler.failures import Failure
from jobctl.scheduler.records import (
    Dispatch,
    JobRecord,
    JobRow,
    StepRow,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import S, fenced, new_id, utcnow
from jobctl.states import Action, JobStatus, allowed_from, allowed_operations, target_of


@dataclass(frozen=True)
class Transition:
    """What `transition` did: the job's status before and after, and the attempt it stopped."""

    job_id: str
    job_type: str
    project: str
    action: Action
    before: JobStatus
    after: JobStatus | None
    stopped_fence: str | None
    dispatch: Dispatch | None = None
    waited_s: float | None = None  # dispatch: how long the job had been PENDING
    job: JobRecord | None = None  # the job as the transition left it (None once deleted)
    stopped_running: bool = False  # the stopped attempt had started (its code may still be unwinding)


def transition(
    session: Session,
    job_id: str,
    action: Action,
    actor: str,
    reason: str | None = None,
    *,
    queue_lease_s: float = 60.0,
    error: Failure | None = None,
    retry_in: float = 0.0,
    failure: bool = False,
) -> Transition:
    """Take `action` on the job, or raise `Conflict` (409) and change nothing.

    Locks the job row, checks the transition table, applies the action's effects on the job and its steps
    and writes the event, in the caller's transaction. The result carries the job as it left it. A FAIL
    records `error` (its message, code and hint; without one, `reason` with the code `exception`) as the
    current step's error, at this time, and its message and code as the job's.
    """
    job = session.scalar(select(models.Job).where(models.Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    before = JobStatus(job.status)
    check_allowed(action, before)
    after = target_of(action)
    project = session.scalar(select(models.Project.name).where(models.Project.id == job.project_id)) or ""
    now = utcnow()
    steps = list(
        session.scalars(
            select(models.Step).where(models.Step.job_id == job_id).order_by(models.Step.index).with_for_update()
        )
    )
    current = next((s for s in steps if s.status != S.FINISHED.value), None)
    running = current is not None and current.status == S.RUNNING.value  # its attempt had started
    stopped = stop_attempt(current, now) if action in _STOPPING else None
    dispatch: Dispatch | None = None
    job.retry_at = None  # a retry delay ends with any change of state but the one that starts it
    if current is not None:
        current.retry_at = None
        if failure:  # an attempt of the step failed: what the job type's Retry counts
            current.failures += 1

    if action is Action.DELETE:
        session.execute(delete(models.Job).where(models.Job.id == job_id))
        return Transition(job_id, job.type, project, action, before, None, stopped, stopped_running=running)

    assert after is not None
    waited = (now - job.pending_since).total_seconds() if before is S.PENDING and job.pending_since else None
    account_time(job, before, after, now)
    if action is Action.PAUSE:
        if current is not None and current.status == S.RUNNING.value:
            current.status = S.PAUSED.value
        if current is not None:
            current.ready_at = None
    elif action is Action.RESUME:
        job.error = job.error_code = None
        if current is not None:
            current.failures = 0  # a person asked for it again: the retry policy starts afresh
            current.status = S.PENDING.value
            clear_error(current)
            current.ready_at = now
    elif action is Action.RESTART:
        job.attempt += 1
        job.error = job.error_code = job.result = job.started_at = job.finished_at = None
        job.duration_s = job.waiting_s = 0.0
        job.pending_since = now
        session.execute(delete(models.StepLog).where(models.StepLog.job_id == job_id))
        for step in steps:
            reset_step(step, ready=step.index == 0, now=now)
        if retry_in > 0:  # held until the cleanup of the earlier run is done (`release_restart_hold`)
            job.retry_at = now + timedelta(seconds=retry_in)
    elif action in (Action.DISCARD, Action.AUTO_DISCARD):
        job.discard_reason = reason if action is Action.AUTO_DISCARD else (reason or f"discarded by {actor}")
        for step in steps:
            if step.status != S.FINISHED.value:
                step.status = S.DISCARDED.value
                step.ready_at = None
    elif action is Action.DISPATCH:
        if current is None:  # nothing left to run: cannot happen through the API, but stay consistent
            after = S.FINISHED
            account_time(job, S.RUNNING, S.FINISHED, now)
        else:
            claim_attempt(current, now, queue_lease_s)
            dispatch = dispatch_of(job, current)
    elif action is Action.RETRY:
        assert current is not None
        stopped = stop_attempt(current, now)  # the lost attempt, in case it still runs somewhere
        current.status = S.PENDING.value
        current.ready_at = now
        claim_attempt(current, now, queue_lease_s)
        dispatch = dispatch_of(job, current)
    elif action is Action.RETRY_LATER:
        assert current is not None
        stop_attempt(current, now)
        current.status = S.PENDING.value
        current.ready_at = now
        job.retry_at = current.retry_at = now + timedelta(seconds=retry_in)
    elif action is Action.FAIL:
        failed = error or Failure(failures.EXCEPTION, reason or "failed")
        job.error, job.error_code = failed.message, failed.code
        if current is not None:
            stop_attempt(current, now)
            current.status = S.ERROR.value
            current.error, current.error_code, current.error_hint = failed.message, failed.code, failed.hint
            current.error_at = now
    job.status = after.value
    job.updated_at = now
    _event(session, job_id, now, actor, action, before, after, reason)
    session.flush()
    record = JobRecord.from_row(job, project, steps, now)  # what was just written: no need to read it again
    return Transition(
        job_id, job.type, project, action, before, after, stopped, dispatch, waited, record, stopped_running=running
    )


_STOPPING = frozenset({Action.PAUSE, Action.RESTART, Action.DISCARD, Action.AUTO_DISCARD, Action.DELETE})


def check_allowed(action: Action, status: JobStatus) -> None:
    """`Conflict` (409, with the job's `status` and the operations `allowed` in it) unless the transition table
    (`jobctl.states`) allows `action` from `status`. The one check of every change of a job: `transition`, a
    params edit (`store.edits`) and a batch's dry run (`Operations.preview_batch`) all ask it."""
    if status not in allowed_from(action):
        raise Conflict(
            f"cannot {action.value} a job that is {status.value}",
            status=status.value,
            allowed=allowed_operations(status),
        )


def release_restart_hold(session: Session, job_id: str, attempt: int) -> bool:
    """End the hold a restart put on the job (run `attempt`) once its cleanup ran - unless the job moved on
    since (no step of this run has started). Whether it did."""
    started = select(models.Step.index).where(models.Step.job_id == job_id, models.Step.attempt > 0)
    result = session.execute(
        update(models.Job)
        .where(
            models.Job.id == job_id,
            models.Job.attempt == attempt,
            models.Job.status == S.PENDING.value,
            models.Job.retry_at.is_not(None),
            ~exists(started),
        )
        .values(retry_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


# ------------------------------------------------------------------------------------------------ the rules
# Each fact about a job's or a step's status, attempt and times, written once. They change a row in memory -
# the ORM object `transition` loaded, or the plain row `handover` read - and the caller writes it, in the
# transaction that locked it.


def stop_attempt(step: StepRow | None, now: datetime) -> str | None:
    """Forget the step's current attempt: its token no longer fences in, its running time is booked, its lease
    ends. Returns the token it had (None if it had none)."""
    if step is None or step.fence is None:
        return None
    fence = step.fence
    if step.running_since is not None:
        step.duration_s += (now - step.running_since).total_seconds()
        step.running_since = None
    step.fence = None
    step.lease_until = None
    return fence


def finish_step(step: StepRow, now: datetime, output: dict[str, Any] | None) -> None:
    """The step's attempt returned `output`: the step is FINISHED, at 100 %, its running time booked."""
    stop_attempt(step, now)
    step.status = S.FINISHED.value
    step.progress = 100.0
    step.finished_at = now
    step.output = output


def claim_attempt(step: StepRow, now: datetime, lease_s: float) -> str:
    """Give the step a new attempt: a new token (also its Celery task id), leased for `lease_s` (how long its
    message may wait for a worker), one more dispatch; the step counts as ready from `now` if it was not.
    Returns the token."""
    step.fence = step.task_id = new_id()
    step.lease_until = now + timedelta(seconds=lease_s)
    step.dispatches += 1
    if step.ready_at is None:
        step.ready_at = now
    return step.fence


def start_attempt(step: StepRow, now: datetime, worker: str, lease_s: float) -> None:
    """The claimed attempt starts on `worker`: RUNNING, attempt + 1, its waiting time booked, leased for
    `lease_s` (renewed by its heartbeats)."""
    step.status = S.RUNNING.value
    step.attempt += 1
    step.error = None
    step.started_at = step.started_at or now
    step.running_since = now
    if step.ready_at is not None:
        step.waiting_s += (now - step.ready_at).total_seconds()
        step.ready_at = None
    step.worker = worker
    step.lease_until = now + timedelta(seconds=lease_s)


def clear_error(step: StepRow) -> None:
    """The step has no error any more: its message, code, hint and time go together."""
    step.error = step.error_code = step.error_hint = step.error_at = None


def reset_step(step: StepRow, *, ready: bool, now: datetime) -> None:
    """A restart: the step as it was submitted (PENDING, no attempt, no times, no error, no info), ready from
    `now` if `ready`."""
    step.status = S.PENDING.value
    step.progress = 0.0
    step.attempt = 0
    clear_error(step)
    step.info = None
    step.checkpoint = {}
    step.output = None
    step.started_at = step.finished_at = step.running_since = step.lease_until = None
    step.fence = step.worker = step.task_id = None
    step.duration_s = step.waiting_s = 0.0
    step.dispatches = 0
    step.retry_at = None
    step.failures = 0
    step.ready_at = now if ready else None


def account_time(job: JobRow, before: JobStatus, after: JobStatus, now: datetime) -> None:
    """Book the time the job spent in `before` (waiting or running) as it moves to `after` at `now`."""
    if before is S.PENDING and after is not S.PENDING and job.pending_since is not None:
        job.waiting_s += (now - job.pending_since).total_seconds()
        job.pending_since = None
    if before is S.RUNNING and after is not S.RUNNING and job.running_since is not None:
        job.duration_s += (now - job.running_since).total_seconds()
        job.running_since = None
    if after is S.PENDING and before is not S.PENDING:
        job.pending_since = now
    if after is S.RUNNING and before is not S.RUNNING:
        job.running_since = now
        job.started_at = job.started_at or now
    if after.final:
        job.finished_at = now


def dispatch_of(job: JobRow, step: StepRow) -> Dispatch:
    """The message that runs the step's current attempt."""
    assert step.fence is not None
    return Dispatch(job_id=job.id, job_type=job.type, step_index=step.index, step_name=step.name, fence=step.fence)


# -------------------------------------------------------------------------------------------- helpers


def _event(
    session: Session,
    job_id: str,
    at: datetime,
    actor: str,
    action: Action,
    before: JobStatus | None,
    after: JobStatus | None,
    reason: str | None,
) -> None:
    session.add(
        models.Event(
            job_id=job_id,
            at=at,
            actor=actor,
            action=action.value,
            from_status=before.value if before else None,
            to_status=after.value if after else None,
            reason=reason,
        )
    )


def lock_jobs(session: Session, job_ids: Sequence[str]) -> None:
    """Lock these jobs' rows in id order. Every transaction that changes several jobs calls this first, so
    two of them (a scheduler pass, an atomic batch, a target's auto-discard) can never deadlock."""
    if job_ids:
        session.execute(
            select(models.Job.id).where(models.Job.id.in_(list(job_ids))).order_by(models.Job.id).with_for_update()
        )


def resend_attempt(session: Session, job_id: str, index: int, fence: str, queue_lease_s: float) -> Dispatch | None:
    """Claim a never-started attempt anew - a fresh token and lease - because its message was lost. None, with
    nothing written, if it moved on."""
    step = session.scalar(select(models.Step).where(*fenced(job_id, index, fence, S.PENDING)).with_for_update())
    job = session.scalar(select(models.Job).where(models.Job.id == job_id, models.Job.status == S.RUNNING.value))
    if step is None or job is None:
        return None
    claim_attempt(step, utcnow(), queue_lease_s)
    return dispatch_of(job, step)
