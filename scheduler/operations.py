"""The operations service: submit, the five user operations, auto-discard, targets and step outcomes.

Each method runs one write transaction through the store, then - only after it committed - carries out
the side effects the transition asks for: revoke the stopped attempt, run the cleanup, send the next
attempt, publish the change and wake the schedulers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from jobctl.scheduler import handover, store
from jobctl.scheduler.batch import MAX_BATCH, BatchItem, BatchRefused, not_found
from jobctl.scheduler.db import Database
from jobctl.scheduler.errors import Conflict, Invalid, InvalidItems, JobctlError, NotFound
from jobctl.scheduler.executor import Bus, Executor
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.records import Dispatch, JobRecord, ProjectRecord, StepSpec, TargetRecord
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.targets import TargetKinds, mismatch
from jobctl.states import OPERATIONS, Action, JobStatus

log = logging.getLogger(__name__)

AUTO_DISCARD_ACTOR = "auto-discard"
#: How long, beyond the stop's grace, a restarted job waits at most for the cleanup of its earlier run.
RESTART_HOLD_S = 15.0


@dataclass(frozen=True)
class Submission:
    """A job to create: its type's name, the steps it planned and its validated params (`JobType.prepare`)."""

    project: str
    job_type: str
    steps: Sequence[StepSpec]
    params: dict[str, Any]
    priority: int = 3
    target: tuple[str, str] | None = None
    exclusive: bool = False


@dataclass(frozen=True)
class Finished:
    """The step returned normally; `result` becomes the job's result if this was the last step."""

    result: dict[str, Any] | None = None


@dataclass(frozen=True)
class Failed:
    """The step raised. `retry` is the job type's retry decision; `delay_s`, when it runs again (0: at once,
    the job staying RUNNING; later: the job waits PENDING until then, holding no worker slot)."""

    error: str
    retry: bool = False
    delay_s: float = 0.0


Outcome = Finished | Failed


@dataclass(frozen=True)
class Recorded:
    """What `record_outcome` or `hand_over` did: accepted or stale; the job's next attempt, claimed and not
    sent; if `hand_over` started it, its start and the reason its target discards the job (or None); the job as
    the transaction left it."""

    accepted: bool
    follow: Dispatch | None = None
    started: tuple[store.StepStart, str | None] | None = None
    job: JobRecord | None = None


#: A committed transition (None: a change that is not a status change) and the job as it left it.
Done = tuple[store.Transition | None, JobRecord | None]


class Operations:
    """Everything that changes jobs, for the API, the scheduler and the workers alike."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        bus: Bus,
        targets: TargetKinds,
        settings: Settings,
        metrics: Metrics | None = None,
    ) -> None:
        self.metrics = metrics
        self.db = db
        self.executor = executor
        self.bus = bus
        self.targets = targets
        self.settings = settings

    # ----------------------------------------------------------------------------------- submit / operate

    def submit(
        self,
        *,
        project: str,
        job_type: str,
        steps: Sequence[StepSpec],
        params: dict[str, Any],
        priority: int,
        submitter: str,
        target: tuple[str, str] | None,
        exclusive: bool = False,
    ) -> JobRecord:
        """Create a PENDING job with its steps (`submit_many` of one). `NotFound` for a missing project,
        `Invalid` if the target does not exist or is not allowed. `exclusive`: the job does not start while
        another job on its target is RUNNING."""
        one = Submission(project, job_type, steps, params, priority, target, exclusive)
        try:
            return self.submit_many([one], submitter)[0]
        except InvalidItems as exc:
            raise exc.causes[0][1] from None

    def submit_many(
        self,
        submissions: Sequence[Submission | None],
        submitter: str,
        refused: Sequence[tuple[int, JobctlError]] = (),
    ) -> list[JobRecord]:
        """Create every job in one transaction, or none: each is checked first (its project exists, its
        target exists and is valid, its priority), and if any is refused - or the caller `refused` some already
        (their places in `submissions` are None) - `InvalidItems` names each refused one by its index and
        nothing is written. Each distinct project and target is read once. After the commit, the jobs are
        announced and the schedulers woken in one round trip."""
        problems = list(refused)
        with self.db.write() as s:
            projects: dict[str, ProjectRecord] = {}
            versions: dict[tuple[int, str, str], str | None] = {}
            planned: list[tuple[Submission, ProjectRecord, tuple[str, str, str] | None]] = []
            for index, sub in enumerate(submissions):
                if sub is None:
                    continue
                try:
                    planned.append(self._check(s, sub, projects, versions))
                except (Invalid, NotFound) as exc:
                    problems.append((index, exc))
            if problems:
                problems.sort(key=lambda p: p[0])
                listed = "; ".join(f"jobs[{i}]: {exc.message}" for i, exc in problems[:20])
                if len(problems) > 20:  # `items` names every one; the message stays readable
                    listed += f"; and {len(problems) - 20} more"
                raise InvalidItems(
                    f"{len(problems)} of {len(submissions)} jobs refused, none submitted: {listed}", problems
                )
            new = [
                store.NewJob(
                    project_id=proj.id,
                    project=proj.name,
                    job_type=sub.job_type,
                    steps=sub.steps,
                    params=sub.params,
                    priority=sub.priority,
                    target=pinned,
                    exclusive=sub.exclusive and pinned is not None,
                )
                for sub, proj, pinned in planned
            ]
            jobs = store.insert_jobs(s, new, submitter)
        batch = self.bus.batch()
        for job in jobs:
            self.bus.job_changed(job, batch)
        self.bus.wake_scheduler(batch)
        if self.metrics is not None:
            self.metrics.count("transitions", Action.SUBMIT.value, len(jobs), pipe=batch)
        self.bus.flush(batch)
        return jobs

    def _check(
        self,
        s: Session,
        sub: Submission,
        projects: dict[str, ProjectRecord],
        versions: dict[tuple[int, str, str], str | None],
    ) -> tuple[Submission, ProjectRecord, tuple[str, str, str] | None]:
        """A submission's project and pinned target (kind, name, version), read through the caches given."""
        if not 0 <= sub.priority <= 4:
            raise Invalid("priority must be between 0 (highest) and 4 (lowest)")
        proj = projects.get(sub.project)
        if proj is None:
            proj = projects[sub.project] = store.get_project(s, sub.project)
        if sub.target is None:
            return sub, proj, None
        kind, name = sub.target
        key = (proj.id, kind, name)
        if key not in versions:
            resolver = self.targets.get(kind)
            resolver.validate(name)
            versions[key] = resolver.version(s, proj.id, name)
        version = versions[key]
        if version is None:
            raise Invalid(f"target {kind} {name!r} does not exist")
        return sub, proj, (kind, name, version)

    def operate(self, job_id: str, action: Action, actor: str, reason: str | None = None) -> JobRecord | None:
        """Take a user operation on a job; `Conflict` if its state refuses it. None after a delete."""
        if action not in OPERATIONS:
            raise Invalid(f"unknown operation {action.value!r}")
        with self.db.write() as s:
            done = self._transition(s, job_id, action, actor, reason)
        self._after([(done, done.job)])
        return done.job

    def auto_discard(self, job_id: str, reason: str) -> bool:
        """Discard a non-final job because of its target. False if it was already final or gone."""
        try:
            with self.db.write() as s:
                done = self._transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason)
        except (Conflict, NotFound):
            return False
        self._after([(done, done.job)])
        return True

    # ------------------------------------------------------------------------------------------ targets

    def put_target(self, project: str, kind: str, name: str, attributes: dict[str, Any]) -> TargetRecord:
        """Create or change a `record` target; a change discards the jobs pinned to the old version."""
        if kind != "record":
            raise Invalid(f"only 'record' targets are registered through the API, not {kind!r}")
        self.targets.get(kind).validate(name)
        with self.db.write() as s:
            proj = store.get_project(s, project)
            target, changed = store.put_record_target(s, proj.id, project, kind, name, attributes)
            done = self._discard_stale(s, proj.id, kind, name) if changed else []
        self._after(done)
        return target

    def delete_target(self, project: str, kind: str, name: str) -> list[str]:
        """Delete a `record` target and auto-discard its non-final jobs, atomically. Returns their ids."""
        if kind != "record":
            raise NotFound(f"target {kind}/{name} not found")
        with self.db.write() as s:
            proj = store.get_project(s, project)
            store.delete_target(s, proj.id, kind, name)
            done = self._discard_stale(s, proj.id, kind, name)
        self._after(done)
        return [t.job_id for t, _ in done]

    def check_targets(self) -> int:
        """Auto-discard every non-final job whose target is gone or changed. Returns how many."""
        with self.db.read() as s:
            rows = store.targeted_jobs(s)
            current: dict[tuple[int, str, str], str | None] = {}
            stale: list[tuple[str, str]] = []
            for job_id, project_id, kind, name, version in rows:
                key = (project_id, kind, name)
                if key not in current:
                    try:
                        current[key] = self.targets.get(kind).version(s, project_id, name)
                    except Invalid:
                        current[key] = None
                reason = mismatch(kind, name, version, current[key])
                if reason:
                    stale.append((job_id, reason))
        return sum(self.auto_discard(job_id, reason) for job_id, reason in stale)

    def _discard_stale(
        self, s: Session, project_id: int, kind: str, name: str
    ) -> list[tuple[store.Transition, JobRecord | None]]:
        done = []
        job_ids = sorted(store.jobs_of_target(s, project_id, kind, name))
        store.lock_jobs(s, job_ids)
        for job_id in job_ids:
            target = store.job_target(s, job_id)
            assert target is not None
            reason = self.targets.check(s, *target)
            if reason:
                done.append(self._transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason))
        return [(t, t.job) for t in done]

    # -------------------------------------------------------------------------------- scheduler and workers

    def dispatch(self, job_ids: Sequence[str], s: Session, actor: str = "scheduler") -> list[Done]:
        """Within the scheduler's transaction: dispatch each job, or auto-discard it if its target moved.
        `actor` (the scheduler's name) is recorded in the dispatch events: it tells which scheduler took a job.

        Returns the transitions with the jobs as they are in this transaction, for `announce`."""
        store.lock_jobs(s, job_ids)
        done = []
        for job_id in job_ids:
            target = store.job_target(s, job_id)
            reason = self.targets.check(s, *target) if target else None
            if reason:
                done.append(self._transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason))
            else:
                done.append(self._transition(s, job_id, Action.DISPATCH, actor))
        return [(t, t.job) for t in done]

    def announce(self, done: Sequence[Done], *, wake_for_finished: bool = True) -> None:
        """After the caller's transaction committed: carry out the side effects of these transitions (without
        `wake_for_finished`, a job that finished does not wake the schedulers: the caller took its slot)."""
        self._after(done, wake_for_finished=wake_for_finished)

    def worker_lost(self, lease: store.ExpiredLease, retry: bool, actor: str = "scheduler") -> None:
        """The attempt's lease ran out: re-send a never-started attempt, else retry or fail the step."""
        done: list[Done] = []
        dispatch: Dispatch | None = None
        with self.db.write() as s:
            if not store.lock_attempt(s, lease.job_id, lease.step_index, lease.fence, expired=True):
                return
            if not lease.started:
                dispatch = store.resend_attempt(
                    s, lease.job_id, lease.step_index, lease.fence, self.settings.queue_lease_s
                )
                if dispatch is not None:
                    log.warning("step %s of job %s was never picked up; sent again", lease.step_index, lease.job_id)
            else:
                where = f"worker {lease.worker or '?'} lost during step {lease.step_index} (attempt {lease.attempt})"
                if retry:
                    t = self._transition(s, lease.job_id, Action.RETRY, actor, f"{where}; retrying")
                else:
                    t = self._transition(s, lease.job_id, Action.FAIL, actor, where, error=f"worker lost: {where}")
                done.append((t, t.job))
        if dispatch is not None:
            self._send(dispatch)
        self._after(done)

    def persist_outcome(self, job_id: str, index: int, fence: str, outcome: Outcome) -> bool:
        """Record how a step attempt ended and send the job's next step. A stale attempt (paused, discarded,
        lost) changes nothing."""
        recorded = self.record_outcome(job_id, index, fence, outcome)
        if recorded.follow is not None:
            self._send(recorded.follow)
        return recorded.accepted

    def record_outcome(
        self,
        job_id: str,
        index: int,
        fence: str,
        outcome: Outcome,
        *,
        takes_next_job: bool = False,
    ) -> Recorded:
        """Record how a step attempt ended; returns whether it was accepted, the job's next attempt (claimed,
        NOT sent) and the job as the transaction left it.

        The caller runs the returned attempt itself or sends it (`send`); if it does neither (it died), the
        attempt's lease runs out and the scheduler recovers it. With `takes_next_job`, a job that finished does
        not wake the schedulers: the caller dispatches the next job to the slot itself (`Scheduler.take`; their
        tick covers a miss).
        A stale attempt changes nothing."""
        next_dispatch: Dispatch | None = None
        with self.db.write() as s:
            # The job's last step finishing is the common case: one read and three writes (scheduler.handover).
            t = (
                handover.finish_job(s.connection(), job_id, index, fence, outcome.result)
                if isinstance(outcome, Finished)
                else None
            )
            if t is None:  # not the last step, a failure, or a stale attempt: the general path
                if not store.lock_attempt(s, job_id, index, fence):
                    return Recorded(False)
                if isinstance(outcome, Finished):
                    accepted, follows = store.complete_step(
                        s, job_id, index, fence, outcome.result, self.settings.queue_lease_s
                    )
                    if not accepted:
                        return Recorded(False)
                    if isinstance(follows, store.Transition):
                        t = follows
                    else:
                        next_dispatch = follows
                elif outcome.retry and outcome.delay_s > 0:
                    reason = f"step {index} failed: {outcome.error}; retrying in {outcome.delay_s:.3g}s"
                    t = store.transition(
                        s, job_id, Action.RETRY_LATER, "worker", reason, retry_in=outcome.delay_s, failure=True
                    )
                elif outcome.retry:
                    reason = f"step {index} failed: {outcome.error}; retrying"
                    t = self._transition(s, job_id, Action.RETRY, "worker", reason, failure=True)
                else:
                    error = outcome.error
                    t = self._transition(
                        s, job_id, Action.FAIL, "worker", f"step {index} failed", error=error, failure=True
                    )
            job = t.job if t is not None else store.get_job(s, job_id)
        # The attempt reporting is the one the transition stopped: it must not revoke itself.
        self._after(
            [(None if t is None else dataclasses.replace(t, stopped_fence=None), job)],
            wake_for_finished=not takes_next_job,
        )
        return Recorded(True, next_dispatch, None, job)

    def hand_over(
        self, job_id: str, index: int, fence: str, outcome: Finished, worker: str, targeted: bool = True
    ) -> Recorded | None:
        """Finish step `index` (attempt `fence`) and start the job's next step for `worker` to run itself, in one
        transaction (`scheduler.handover`); the started attempt is in `started`, with the reason its target
        discards the job if it does. None, with nothing written, where the hand-over does not apply (the
        attempt is stale, or this was the last step): `record_outcome` then decides. On PostgreSQL, a job
        without a target (`targeted` False) is handed over by one statement that commits by itself.

        The caller announces the job (`bus.job_changed`; with the started step's first Redis round trip)."""
        if not targeted and not self.db.is_sqlite:
            with self.db.autocommit_core() as conn:
                at_once = handover.hand_over_at_once(
                    conn, job_id, index, fence, outcome.result, worker, lease_s=self.settings.lease_s
                )
            if at_once is not None:
                return Recorded(True, at_once.dispatch, (at_once.start, None), at_once.job)
        with self.db.write_core() as conn:
            done = handover.hand_over(
                conn,
                job_id,
                index,
                fence,
                outcome.result,
                worker,
                lease_s=self.settings.lease_s,
                queue_lease_s=self.settings.queue_lease_s,
                check_target=self.targets.check,
            )
        if done is None:
            return None
        return Recorded(True, done.dispatch, (done.start, done.reason), done.job)

    def send(self, dispatch: Dispatch) -> None:
        """Queue an attempt claimed by `record_outcome` for any worker (never raises: the lease is the fallback),
        once the announcements flushed so far are out (the worker that takes it announces what follows)."""
        self.bus.settle()
        self._send(dispatch)

    # ----------------------------------------------------------------------------------------- internals

    def _transition(
        self,
        s: Session,
        job_id: str,
        action: Action,
        actor: str,
        reason: str | None = None,
        error: str | None = None,
        failure: bool = False,
    ) -> store.Transition:
        # A restarted job waits (PENDING) for the cleanup of its earlier run, which ends the hold
        # (`release_restart_hold`); should the cleanup be lost, the hold runs out by itself.
        hold = self.settings.stop_grace_s + RESTART_HOLD_S if action is Action.RESTART else 0.0
        return store.transition(
            s,
            job_id,
            action,
            actor,
            reason,
            queue_lease_s=self.settings.queue_lease_s,
            error=error,
            retry_in=hold,
            failure=failure,
        )

    def release_restart_hold(self, job_id: str, attempt: int) -> None:
        """The cleanup after a restart ran: the job (run `attempt`) may start now."""
        with self.db.write() as s:
            released = store.release_restart_hold(s, job_id, attempt)
        if released:
            self.bus.wake_scheduler()

    def _after(self, done: Sequence[Done], *, wake_for_finished: bool = True) -> None:
        """Carry out what committed transitions ask for: announce each job as the transaction left it, count
        the transitions and wake the schedulers where a job or a slot became free - in one Redis round trip,
        before anything else, so announcements keep the order of the changes - then revoke, clean up and send.

        Never raises: the change is already durable, and each effect has a fallback - a missed stop is
        noticed by the attempt's own fence check, a missed send by the lease, a missed wake-up by the
        scheduler's tick. Without `wake_for_finished` (the caller takes the next job itself), a job that
        finished does not wake the schedulers."""
        batch = self.bus.batch()  # the announcements, metrics and wake-up: one round trip, before the effects
        for t, job in done:
            if job is not None:
                self.bus.job_changed(job, batch)
            elif t is not None and t.after is None:
                self.bus.job_deleted(t.job_id, t.project, batch)
        wake = False
        for t, _ in done:
            if t is None:
                continue
            if self.metrics is not None:
                self.metrics.count("transitions", t.action.value, pipe=batch)
                if t.action is Action.DISPATCH and t.waited_s is not None:
                    self.metrics.observe("dispatch_latency_seconds", t.waited_s, batch)
            if t.after is JobStatus.FINISHED and not wake_for_finished:
                continue
            wake = wake or t.after is JobStatus.PENDING or t.before is JobStatus.RUNNING
        if wake:
            self.bus.wake_scheduler(batch)
        self.bus.flush(batch)
        effects = [t for t, _ in done if t is not None and (t.stopped_fence or t.action in _CLEANS_UP or t.dispatch)]
        if effects:  # what they start elsewhere is announced from there: after these announcements
            self.bus.settle()
        for t in effects:
            if t.stopped_fence:
                self._effect("revoke the stopped attempt", self.executor.stop, t.stopped_fence)
            if t.action in _CLEANS_UP and t.job is not None:
                unwinding = t.stopped_fence if t.stopped_running else None
                self._effect("queue the cleanup", self.executor.cleanup, t.job, t.action.value, unwinding)
            if t.dispatch is not None:
                self._send(t.dispatch)

    def _send(self, dispatch: Dispatch) -> None:
        self._effect("send the attempt", self.executor.send, dispatch)

    @staticmethod
    def _effect(what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.warning("could not %s (%s); the fallback will take over", what, exc)

    # ------------------------------------------------------------------------------------------------ batch

    def batch(
        self, job_ids: Sequence[str], action: Action, actor: str, *, atomic: bool = False, hidden: Sequence[str] = ()
    ) -> list[BatchItem]:
        """Take a user operation on each job and report each one's outcome, in the order of `job_ids` (an id
        given twice counts once). At most `MAX_BATCH` (1000) jobs: `Invalid` above that, and nothing changes.

        Ids in `hidden` - jobs the caller may not see - are reported as not found, exactly like missing jobs,
        without being looked at. Not atomic: each job is operated in its own transaction, as by `operate`, and
        succeeds or is refused on its own. Atomic: every job is operated in ONE transaction; if any of them
        refuses the action or is not found, the transaction is rolled back and `BatchRefused` (a `Conflict`)
        lists the refused ones: nothing changed. The side effects run only after the commit, as for `operate`.
        """
        if action not in OPERATIONS:
            raise Invalid(f"unknown operation {action.value!r}")
        ids = list(dict.fromkeys(job_ids))
        if len(ids) > MAX_BATCH:
            raise Invalid(f"a batch may hold at most {MAX_BATCH} jobs, not {len(ids)}")
        invisible = set(hidden)
        if not atomic:
            items: list[BatchItem] = []
            for job_id in ids:
                if job_id in invisible:
                    items.append(not_found(job_id))
                    continue
                try:
                    job = self.operate(job_id, action, actor)
                except NotFound:
                    items.append(not_found(job_id))
                except Conflict as exc:
                    items.append(BatchItem(job_id, False, JobStatus(exc.status) if exc.status else None, exc.message))
                else:
                    items.append(BatchItem(job_id, True, job.status if job else None))
            return items

        refused: dict[str, BatchItem] = {i: not_found(i) for i in ids if i in invisible}
        done: dict[str, store.Transition] = {}
        with self.db.write() as s:
            # One lock order for every batch, so two batches over the same jobs cannot deadlock. `transition`
            # raises before it writes anything, so a refusal leaves this transaction clean to go on with.
            for job_id in sorted(set(ids) - invisible):
                try:
                    done[job_id] = self._transition(s, job_id, action, actor)
                except NotFound:
                    refused[job_id] = not_found(job_id)
                except Conflict as exc:
                    status = JobStatus(exc.status) if exc.status else None
                    refused[job_id] = BatchItem(job_id, False, status, exc.message)
            if refused:  # rolls the whole transaction back
                raise BatchRefused(
                    f"{len(refused)} of {len(ids)} jobs refuse to {action.value}; nothing was changed",
                    [refused[i] for i in ids if i in refused],
                )
        self._after([(done[i], done[i].job) for i in ids])
        return [BatchItem(i, True, job.status if (job := done[i].job) else None) for i in ids]


#: actions after which the job type's cleanup hook runs: their intermediate results are thrown away
_CLEANS_UP = frozenset({Action.DISCARD, Action.AUTO_DISCARD, Action.RESTART})
