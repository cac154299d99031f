"""The worker's path through the store, on SQLAlchemy Core: a few prepared statements, not the ORM.

Every step of every job goes through these functions, so they read and write plain rows instead of the ORM's
load-modify-flush. They apply the same rules as `transitions.transition`, from the same functions
(`claim_attempt`, `start_attempt`, `finish_step`, `account_time` in `store.transitions`):

- `start` starts a claimed attempt (its message arrived);
- `dispatch_and_start` dispatches a PENDING job and starts its step for the worker process that takes it;
- `hand_over` finishes a step and claims the job's next one - started, for the same process to run, or only
  claimed, to be sent to any worker;
- `finish_job` finishes a job's last step and the job;
- `hand_over_at_once` and `dispatch_and_start_at_once` are `hand_over` and `dispatch_and_start` again, for
  PostgreSQL and jobs without a target, as one statement each (their SQL is the second implementation of those
  rules; tests/scheduler/store/test_handover.py runs the same checks on both).

Each one:
1. locks the job row and reads it with its project's name (`FOR UPDATE OF jobs`; SQLite's write transaction
   already holds the database);
2. reads and locks all its steps;
3. decides in Python whether the attempt is current (otherwise nothing is written);
4. writes with the attempt's token in the WHERE clause again; a step whose job's target no longer matches is
   not started (the caller discards the job);
5. returns the started attempt and the job as the transaction left it, built from what was read and written,
   without reading it again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, case, exists, func, insert, literal, or_, select, union_all, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import BindParameter, ColumnElement

from jobctl.scheduler.records import Dispatch, JobRecord, StepRow
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import INSERT_EVENT, fenced, new_id, utcnow
from jobctl.scheduler.store.dispatch import DISPATCH_LOCK_KEY
from jobctl.scheduler.store.leases import StepStart
from jobctl.scheduler.store.prepared import Prepared, Writes
from jobctl.scheduler.store.rows import STEP_PROPS, job_and_steps, jobs_with_steps, labelled
from jobctl.scheduler.store.transitions import (
    Transition,
    account_time,
    claim_attempt,
    dispatch_of,
    finish_step,
    start_attempt,
)
from jobctl.states import Action, JobStatus

S = JobStatus
_jobs, _steps, _events = models.JOBS, models.STEPS, models.EVENTS


class TargetCheck(Protocol):
    def __call__(self, session: Session, project_id: int, kind: str, name: str, version: str | None) -> str | None:
        """None if the target is still the one the job was pinned to, else why it is not."""


#: The job with its project's name and its steps, in one round trip: a row per step, the job's columns on each.
_READ = Prepared(jobs_with_steps().where(models.Job.id == bindparam("job_id")).with_for_update(of=[_jobs, _steps]))
#: What a step whose attempt finished is written with (parameters `now`, `output`, `duration_s`).
_FINISH_VALUES: dict[str, Any] = {
    "status": S.FINISHED.value,
    "progress": 100.0,
    "finished_at": bindparam("now"),
    "output": bindparam("output"),
    "duration_s": bindparam("duration_s"),
    "running_since": None,
    "fence": None,
    "lease_until": None,
}
_FINISH = Prepared(
    update(_steps).where(*fenced(bindparam("j"), bindparam("i"), bindparam("f"), S.RUNNING)).values(**_FINISH_VALUES)
)
_RUN_VALUES: dict[str, Any] = {
    "status": bindparam("status"),
    "attempt": bindparam("attempt"),
    "error": bindparam("error"),
    "started_at": bindparam("started_at"),
    "running_since": bindparam("running_since"),
    "waiting_s": bindparam("waiting_s"),
    "ready_at": bindparam("ready_at"),
    "worker": bindparam("worker"),
    "lease_until": bindparam("lease_until"),
}
_FINISH_JOB = Prepared(
    update(_jobs)
    .where(_jobs.c.id == bindparam("j"), _jobs.c.status == S.RUNNING.value)
    .values(
        status=S.FINISHED.value,
        result=bindparam("result"),
        duration_s=bindparam("job_duration_s"),
        running_since=None,
        finished_at=bindparam("now"),
        updated_at=bindparam("now"),
    )
)
#: What claiming a step writes besides its token (`transitions.claim_attempt`).
_CLAIM_VALUES: dict[str, Any] = {"task_id": bindparam("task_id"), "dispatches": bindparam("dispatches")}
#: Start a claimed attempt (the token is the claim's).
_RUN = Prepared(
    update(_steps).where(*fenced(bindparam("j"), bindparam("i"), bindparam("f"), S.PENDING)).values(**_RUN_VALUES)
)
_DISPATCH_JOB = Prepared(
    update(_jobs)
    .where(_jobs.c.id == bindparam("j"), _jobs.c.status == S.PENDING.value)
    .values(
        status=S.RUNNING.value,
        waiting_s=bindparam("job_waiting_s"),
        pending_since=None,
        running_since=bindparam("now"),
        started_at=bindparam("job_started_at"),
        updated_at=bindparam("now"),
    )
)
#: Claim and start a PENDING step under a new token (the hand-over, a dispatch to the process that runs it).
_CLAIM_AND_RUN = Prepared(
    update(_steps)
    .where(_steps.c.job_id == bindparam("j"), _steps.c.idx == bindparam("i"), _steps.c.status == S.PENDING.value)
    .values(fence=bindparam("f"), **_CLAIM_VALUES, **_RUN_VALUES)
)

#: `finish_job`'s writes (the step, the job, the event) and `dispatch_and_start`'s (the job, the step, the
#: event): one round trip each on PostgreSQL.
_FINISH_ALL = Writes(_FINISH, _FINISH_JOB, INSERT_EVENT)
#: ... and the dispatch lock with them (`store.lock_dispatch`), for a finish followed by a take.
_FINISH_ALL_LOCKING = Writes(_FINISH, _FINISH_JOB, INSERT_EVENT, also=func.pg_advisory_xact_lock(DISPATCH_LOCK_KEY))
_DISPATCH_ALL = Writes(_DISPATCH_JOB, _CLAIM_AND_RUN, INSERT_EVENT)


def _per_row(finished: dict[str, Any], claimed: dict[str, Any]) -> dict[str, Any]:
    """SET clauses writing `finished` to step `i` and `claimed` to step `n` of one job, in one UPDATE: each
    column as CASE on the step's index (a column one side leaves alone keeps its value on that side)."""

    def typed(value: Any, column: Any) -> Any:  # CASE does not give its values the column's type
        if isinstance(value, BindParameter):
            return bindparam(value.key, type_=column.type)
        return value if isinstance(value, ColumnElement) else literal(value, column.type)

    values = {}
    for name in sorted(finished.keys() | claimed.keys()):
        column = _steps.c[name]
        on_finished, on_claimed = (typed(side.get(name, column), column) for side in (finished, claimed))
        values[name] = case((_steps.c.idx == bindparam("i"), on_finished), else_=on_claimed)
    return values


#: The hand-over's writes in one statement (one round trip): step `i`, attempt `f` RUNNING, FINISHED as by
#: `_FINISH`; step `n`, PENDING, claimed under token `nf` as by `_CLAIM_AND_RUN`. Two rows, or the locks failed.
_HAND_OVER = Prepared(
    update(_steps)
    .where(
        _steps.c.job_id == bindparam("j"),
        or_(
            and_(_steps.c.idx == bindparam("i"), _steps.c.fence == bindparam("f"), _steps.c.status == S.RUNNING.value),
            and_(_steps.c.idx == bindparam("n"), _steps.c.status == S.PENDING.value),
        ),
    )
    .values(
        _per_row(
            _FINISH_VALUES,
            {"fence": bindparam("nf"), **_CLAIM_VALUES, **_RUN_VALUES},
        )
    )
)


def _seconds_since(now: Any, column: Any) -> Any:
    """In SQL: the seconds from `column` to `now`, 0 if `column` is NULL - the time the Python rules book."""
    return func.coalesce(func.extract("epoch", now - column), 0.0)


def _step_columns(merged: Any) -> list[Any]:
    """The step columns of the rows `_READ` returns (`step_` + each attribute's name), from `merged`: a job's
    steps as a statement left them."""
    return [merged.c[prop.columns[0].name].label("step_" + prop.key) for prop in STEP_PROPS]


def _claimed_and_started(now: Any) -> dict[str, Any]:
    """What `claim_attempt` and then `start_attempt` write to a PENDING step at `now`, in SQL (parameters `nf`:
    the new token, `worker`, `lease_until`): RUNNING under the new token, one more attempt and dispatch, the time
    it waited since it was ready booked (none if it had no ready time: it is ready from `now`)."""
    c = _steps.c
    return {
        "status": S.RUNNING.value,
        "attempt": c.attempt + 1,
        "error": None,
        "started_at": func.coalesce(c.started_at, now),
        "running_since": now,
        "waiting_s": c.waiting_s + _seconds_since(now, c.ready_at),
        "ready_at": None,
        "worker": bindparam("worker"),
        "lease_until": bindparam("lease_until"),
        "fence": bindparam("nf"),
        "task_id": bindparam("nf"),
        "dispatches": c.dispatches + 1,
    }


#: PostgreSQL: the whole hand-over of a job without a target - lock, checks, both writes and the read-back - in
#: one statement, run in autocommit mode: one round trip and one commit, not four round trips. The job's row is
#: locked first (`locked`), as every transaction that changes a job's steps does, so it serialises with them
#: exactly as `hand_over` does; `finished` writes step `i` only if attempt `f` is current and step `n` waits,
#: `claimed` claims and starts step `n` only if `finished` wrote, and the SELECT returns the job and its steps
#: as the statement left them (the rows `_READ` returns), or nothing if it wrote nothing.
#: What it writes is `_FINISH_VALUES` and what `finish_step`, `claim_attempt` and `start_attempt` do for a
#: hand-over (the next step is ready from the hand-over, so it books no waiting time), in SQL: the
#: second implementation of those rules, held to the same rows by tests/scheduler/store/test_handover.py.
def _at_once() -> Prepared:
    c = _steps.c
    now = bindparam("now", type_=c.finished_at.type)
    locked = (
        select(_jobs.c.id)
        .where(_jobs.c.id == bindparam("j"), _jobs.c.status == S.RUNNING.value, _jobs.c.target_kind.is_(None))
        .with_for_update()
        .cte("locked")
    )
    waiting = select(c.idx).where(c.job_id == bindparam("j"), c.idx == bindparam("n"), c.status == S.PENDING.value)
    finished = (
        update(_steps)
        .where(
            c.job_id == select(locked.c.id).scalar_subquery(),
            c.idx == bindparam("i"),
            c.fence == bindparam("f"),
            c.status == S.RUNNING.value,
            exists(waiting),
        )
        .values({**_FINISH_VALUES, "duration_s": c.duration_s + _seconds_since(now, c.running_since)})
        .returning(*c)
        .cte("finished")
    )
    claimed = (
        update(_steps)
        .where(
            c.job_id == bindparam("j"),
            c.idx == bindparam("n"),
            c.status == S.PENDING.value,
            exists(select(finished.c.idx)),
        )
        .values(_claimed_and_started(now))
        .returning(*c)
        .cte("claimed")
    )
    others = select(*c).where(c.job_id == bindparam("j"), c.idx != bindparam("i"), c.idx != bindparam("n"))
    merged = union_all(others, select(*finished.c), select(*claimed.c)).subquery("merged")
    return Prepared(
        select(*labelled(models.Job), models.Project.name.label("project_name"), *_step_columns(merged))
        .join(models.Project, models.Project.id == models.Job.project_id)
        .join(merged, merged.c.job_id == models.Job.id)
        .where(models.Job.id == bindparam("j"), exists(select(claimed.c.idx)))
        .order_by(merged.c.idx)
    )


_AT_ONCE = _at_once()


#: PostgreSQL: `dispatch_and_start` of a PENDING job without a target, as one statement in the caller's
#: transaction (one round trip instead of the locked read and the writes). The job's row is locked first
#: (`locked`); `claimed` claims and starts its current step - the first one not FINISHED - only if it waits
#: (PENDING); `job` moves the job to RUNNING only if `claimed` wrote, with its waiting time booked; `event` is
#: the `dispatch` event. The SELECT returns the job and its steps as the statement left them (the rows `_READ`
#: returns) and when the job had been PENDING since (`pending_before`), or nothing if it wrote nothing.
#: What it writes is what `account_time`, `claim_attempt` and `start_attempt` do for a dispatch, in SQL: the
#: second implementation of those rules, held to the same rows by tests/scheduler/store/test_handover.py.
def _dispatch_at_once() -> Prepared:
    c, jc = _steps.c, _jobs.c
    now = bindparam("now", type_=c.finished_at.type)
    locked = (
        select(jc.id, jc.pending_since)
        .where(jc.id == bindparam("j"), jc.status == S.PENDING.value, jc.target_kind.is_(None))
        .with_for_update()
        .cte("locked")
    )
    current = select(func.min(c.idx)).where(c.job_id == bindparam("j"), c.status != S.FINISHED.value)
    claimed = (
        update(_steps)
        .where(
            c.job_id == select(locked.c.id).scalar_subquery(),
            c.idx == current.scalar_subquery(),
            c.status == S.PENDING.value,
        )
        .values(_claimed_and_started(now))
        .returning(*c)
        .cte("claimed")
    )
    job = (
        update(_jobs)
        .where(jc.id == bindparam("j"), jc.status == S.PENDING.value, exists(select(claimed.c.idx)))
        .values(
            status=S.RUNNING.value,
            waiting_s=jc.waiting_s + _seconds_since(now, jc.pending_since),
            pending_since=None,
            running_since=now,
            started_at=func.coalesce(jc.started_at, now),
            updated_at=now,
        )
        .returning(*jc)
        .cte("job")
    )
    e = _events.c
    event = (
        insert(_events)
        .from_select(
            [e.job_id, e.at, e.actor, e.action, e.from_status, e.to_status],
            select(
                job.c.id,
                now,
                bindparam("actor", type_=e.actor.type),
                literal(Action.DISPATCH.value),
                literal(S.PENDING.value),
                literal(S.RUNNING.value),
            ),
        )
        .returning(e.id)
        .cte("event")
    )
    others = select(*c).where(c.job_id == bindparam("j"), c.idx != select(claimed.c.idx).scalar_subquery())
    merged = union_all(others, select(*claimed.c)).subquery("merged")
    job_columns = [job.c[prop.columns[0].name].label(prop.key) for prop in models.Job.__mapper__.column_attrs]
    return Prepared(
        select(
            *job_columns,
            models.Project.name.label("project_name"),
            *_step_columns(merged),
            locked.c.pending_since.label("pending_before"),
        )
        .select_from(job)
        .join(models.Project, models.Project.id == job.c.project_id)
        .join(merged, merged.c.job_id == job.c.id)
        .join(locked, locked.c.id == job.c.id)
        .where(exists(select(event.c.id)))
        .order_by(merged.c.idx)
    )


_DISPATCH_AT_ONCE = _dispatch_at_once()


@dataclass(frozen=True)
class Started:
    """An attempt started (RUNNING, leased to this worker) - or, if `reason` says why its job's target discards
    the job, not started; the job as the transaction left it."""

    start: StepStart
    reason: str | None
    job: JobRecord


@dataclass(frozen=True)
class HandedOver(Started):
    """`hand_over`: the next attempt as claimed (what a message for it would carry), and as started."""

    dispatch: Dispatch


@dataclass(frozen=True)
class Dispatched(HandedOver):
    """`dispatch_and_start`: the job's dispatch, as `store.transition(DISPATCH)` describes one."""

    transition: Transition


def start(
    conn: Connection, job_id: str, index: int, fence: str, worker: str, *, lease_s: float, check_target: TargetCheck
) -> Started | None:
    """Start the claimed attempt `fence` of step `index` for `worker`, in the caller's transaction. None, with
    nothing written, if it is no longer current (stale or redelivered: already started, or the job moved on)."""
    read = _read(conn, job_id)
    if read is None:
        return None
    job, steps = read
    if index >= len(steps) or steps[index].fence != fence or steps[index].status != S.PENDING.value:
        return None
    step = steps[index]
    reason = _target_reason(conn, job, check_target)
    now = utcnow()
    if reason is None:
        start_attempt(step, now, worker, lease_s)
        if _RUN.run(conn, {"j": job_id, "i": index, "f": fence, **_run_params(step)}) != 1:
            raise RuntimeError(f"step {index} of job {job_id} changed under its lock")
    return Started(
        _step_start(job, steps, index, reason), reason, JobRecord.from_row(job, job.project_name, steps, now)
    )


def dispatch_and_start(
    conn: Connection, job_id: str, worker: str, actor: str, *, lease_s: float, check_target: TargetCheck
) -> Dispatched | None:
    """Dispatch the PENDING job `job_id` and start its current step for `worker`, in the caller's transaction
    (the scheduler's dispatch pass, which chose the job): the job RUNNING with its waiting time booked, the
    step claimed under a new token and RUNNING, the `dispatch` event by `actor` - what `store.transition
    (DISPATCH)` and `start` write. None, with nothing written, if the job is not PENDING, has no PENDING step to
    run, or its target no longer matches (the general path, `Operations.dispatch`, then decides)."""
    read = _read(conn, job_id, S.PENDING)
    if read is None:
        return None
    job, steps = read
    step = next((st for st in steps if st.status != S.FINISHED.value), None)
    if step is None or step.status != S.PENDING.value or _target_reason(conn, job, check_target) is not None:
        return None

    now = utcnow()
    waited = (now - job.pending_since).total_seconds() if job.pending_since else None
    account_time(job, S.PENDING, S.RUNNING, now)
    job.status, job.updated_at = S.RUNNING.value, now
    claim_attempt(step, now, lease_s)
    start_attempt(step, now, worker, lease_s)
    params = {
        "j": job_id,
        "now": now,
        "job_waiting_s": job.waiting_s,
        "job_started_at": job.started_at,
        "i": step.index,
        "f": step.fence,
        **_claim_params(step),
        **_run_params(step),
        "actor": actor,
        "action": Action.DISPATCH.value,
        "reason": None,
        "before": S.PENDING.value,
        "after": S.RUNNING.value,
    }
    if _DISPATCH_ALL.run(conn, params) != (1, 1, 1):
        raise RuntimeError(f"job {job_id} changed under its lock")

    dispatch = dispatch_of(job, step)
    record = JobRecord.from_row(job, job.project_name, steps, now)
    transition = Transition(
        job_id, job.type, job.project_name, Action.DISPATCH, S.PENDING, S.RUNNING, None, None, waited, record
    )
    return Dispatched(_step_start(job, steps, step.index, None), None, record, dispatch, transition)


def dispatch_and_start_at_once(
    conn: Connection, job_id: str, worker: str, actor: str, *, lease_s: float
) -> Dispatched | None:
    """`dispatch_and_start` for a job without a target, on PostgreSQL, as one statement (`_DISPATCH_AT_ONCE`) in
    the caller's transaction. None, with nothing written, if it does not apply - the job is not PENDING, has no
    PENDING step to run, or has a target - and the caller then runs `dispatch_and_start`, which decides."""
    now = utcnow()
    params = {
        "j": job_id,
        "nf": new_id(),
        "now": now,
        "worker": worker,
        "lease_until": now + timedelta(seconds=lease_s),
        "actor": actor,
    }
    rows = _DISPATCH_AT_ONCE.fetch(conn, params)
    if not rows:
        return None
    job, steps = job_and_steps(_DISPATCH_AT_ONCE, conn, rows)
    pending_before = _DISPATCH_AT_ONCE.reader(conn.dialect, ["pending_before"])(rows[0])["pending_before"]
    index = next(st.index for st in steps if st.fence == params["nf"])
    waited = (now - pending_before).total_seconds() if pending_before else None
    record = JobRecord.from_row(job, job.project_name, steps, now)
    transition = Transition(
        job_id, job.type, job.project_name, Action.DISPATCH, S.PENDING, S.RUNNING, None, None, waited, record
    )
    return Dispatched(_step_start(job, steps, index, None), None, record, dispatch_of(job, steps[index]), transition)


def hand_over(
    conn: Connection,
    job_id: str,
    index: int,
    fence: str,
    output: dict[str, Any] | None,
    worker: str,
    *,
    lease_s: float,
    queue_lease_s: float,
    check_target: TargetCheck,
    run_next: bool = True,
) -> HandedOver | None:
    """Finish attempt `fence` of step `index` with `output` and claim step `index + 1` - and, with `run_next`,
    start it for `worker` - in the caller's transaction. None, with nothing written, if the attempt is no longer
    current or the step has no PENDING successor (the last step finishes with `finish_job`)."""
    read = _read(conn, job_id)
    if read is None:
        return None
    job, steps = read
    if index + 1 >= len(steps):
        return None
    done, nxt = steps[index], steps[index + 1]
    if done.fence != fence or done.status != S.RUNNING.value or nxt.status != S.PENDING.value:
        return None

    now = utcnow()
    reason = _target_reason(conn, job, check_target) if run_next else None
    params = {"j": job_id, "i": index, "f": fence, "n": index + 1, **_finished(done, now, output)}
    claim_attempt(nxt, now, queue_lease_s)  # claimed only, for any worker - or, if its target moved, to discard
    if run_next and reason is None:
        start_attempt(nxt, now, worker, lease_s)
    if _HAND_OVER.run(conn, {**params, "nf": nxt.fence, **_claim_params(nxt), **_run_params(nxt)}) != 2:
        raise RuntimeError(f"steps {index} and {index + 1} of job {job_id} changed under their locks")
    return _handed_over(job, steps, index + 1, reason, now)


def hand_over_at_once(
    conn: Connection,
    job_id: str,
    index: int,
    fence: str,
    output: dict[str, Any] | None,
    worker: str,
    *,
    lease_s: float,
) -> HandedOver | None:
    """`hand_over` for a job without a target, on PostgreSQL, as one statement (`_AT_ONCE`) on a connection in
    autocommit mode (`Database.autocommit_core`): it commits by itself, in one round trip. None, with nothing
    written, if it does not apply - the attempt is no longer current, the step has no PENDING successor, or the
    job has a target - and the caller then runs `hand_over`, which decides."""
    now = utcnow()
    params = {
        "j": job_id,
        "i": index,
        "n": index + 1,
        "f": fence,
        "nf": new_id(),
        "now": now,
        "output": output,
        "worker": worker,
        "lease_until": now + timedelta(seconds=lease_s),
    }
    rows = _AT_ONCE.fetch(conn, params)
    if not rows:
        return None
    job, steps = job_and_steps(_AT_ONCE, conn, rows)
    return _handed_over(job, steps, index + 1, None, now)


def finish_job(
    conn: Connection,
    job_id: str,
    index: int,
    fence: str,
    output: dict[str, Any] | None,
    actor: str = "worker",
    *,
    lock_dispatch: bool = False,
) -> Transition | None:
    """Finish attempt `fence` of the job's last step `index` with `output`, and with it the job: FINISHED, its
    result what the step returned, its running time booked, its `finish` event written - what
    `store.complete_step` and `store.transition(FINISH)` write, in the caller's transaction. None, with nothing
    written, if the attempt is no longer current or the step is not the last (the general path decides).
    With `lock_dispatch`, the dispatch lock is taken too if the job was finished (`store.lock_dispatch`; in the
    same statement on PostgreSQL)."""
    read = _read(conn, job_id)
    if read is None:
        return None
    job, steps = read
    if index != len(steps) - 1:
        return None
    done = steps[index]
    if done.fence != fence or done.status != S.RUNNING.value:
        return None

    now = utcnow()
    finished = _finished(done, now, output)
    account_time(job, S.RUNNING, S.FINISHED, now)
    job.status, job.updated_at = S.FINISHED.value, now
    if output is not None:
        job.result = output
    params = {
        "j": job_id,
        "i": index,
        "f": fence,
        **finished,
        "result": job.result,
        "job_duration_s": job.duration_s,
        "actor": actor,
        "action": Action.FINISH.value,
        "reason": None,
        "before": S.RUNNING.value,
        "after": S.FINISHED.value,
    }
    writes = _FINISH_ALL_LOCKING if lock_dispatch else _FINISH_ALL
    if writes.run(conn, params) != (1, 1, 1):  # cannot happen under the locks taken by _read
        raise RuntimeError(f"job {job_id} changed under its lock")
    record = JobRecord.from_row(job, job.project_name, steps, now)
    return Transition(job_id, job.type, job.project_name, Action.FINISH, S.RUNNING, S.FINISHED, None, job=record)


# ------------------------------------------------------------------------------------------------ internals


def _handed_over(job: Any, steps: list[Any], index: int, reason: str | None, now: datetime) -> HandedOver:
    """A hand-over's result from the job and its steps as it left them: step `index` as claimed and started."""
    record = JobRecord.from_row(job, job.project_name, steps, now)
    return HandedOver(_step_start(job, steps, index, reason), reason, record, dispatch_of(job, steps[index]))


def _finished(step: StepRow, now: datetime, output: dict[str, Any] | None) -> dict[str, Any]:
    """Finish `step` (`transitions.finish_step`); the parameters of `_FINISH_VALUES`."""
    finish_step(step, now, output)
    return {"now": now, "output": output, "duration_s": step.duration_s}


def _read(conn: Connection, job_id: str, status: JobStatus = S.RUNNING) -> tuple[Any, list[Any]] | None:
    """The job (locked; with `project_name`) and its steps in order (locked), if the job is in `status`."""
    rows = _READ.fetch(conn, {"job_id": job_id})
    if not rows or rows[0][_READ.position(conn.dialect, "status")] != status.value:
        return None
    return job_and_steps(_READ, conn, rows)


def _target_reason(conn: Connection, job: Any, check_target: TargetCheck) -> str | None:
    if not job.target_kind:
        return None
    with Session(bind=conn) as session:  # joins the caller's transaction; closing it leaves that alone
        return check_target(session, job.project_id, job.target_kind, job.target_name or "", job.target_version)


def _run_params(step: StepRow) -> dict[str, Any]:
    return {name: getattr(step, name) for name in _RUN_VALUES}


def _claim_params(step: StepRow) -> dict[str, Any]:
    return {name: getattr(step, name) for name in _CLAIM_VALUES}


def _step_start(job: Any, steps: list[Any], index: int, reason: str | None) -> StepStart:
    """What a worker needs to run step `index` (its attempt number as the one starting)."""
    step = steps[index]
    target = (job.target_kind, job.target_name or "", job.target_version) if job.target_kind else None
    return StepStart(
        job_id=job.id,
        project_id=job.project_id,
        job_type=job.type,
        params=dict(job.params or {}),
        target=target,
        step_index=index,
        step_name=step.name,
        step_count=len(steps),
        attempt=step.attempt if reason is None else step.attempt + 1,
        checkpoint=dict(step.checkpoint or {}),
        outputs={s.name: s.output for s in steps[:index]},
        fence=step.fence,
        failures=step.failures,
        info=step.info,
    )
