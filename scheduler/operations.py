"""The operations service: everything that changes jobs, for the API, the scheduler and the workers alike.

Each method runs one write transaction through the store (`store.transitions` and `store.handover` hold the
rules), then - only after it committed - hands the transitions to `Effects`: announce, revoke the stopped
attempt, queue the cleanup, send the next attempt, wake the schedulers.

The worker's path is two calls: `start` an attempt, then `record` its outcome (which also starts the next
step, or the next job, for the same process when it is to run it).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jobctl.scheduler import failures
from jobctl.scheduler.batch import MAX_BATCH, BatchItem, BatchPreview, BatchRefused, not_found
from jobctl.scheduler.dispatcher import AUTO_DISCARD_ACTOR, Dispatcher
from jobctl.scheduler.effects import Done, Effects
from jobctl.scheduler.errors import Conflict, Invalid, InvalidItems, JobctlError, NotFound, Unavailable
from jobctl.scheduler.executor import Bus, Executor
from jobctl.scheduler.failures import Failure
from jobctl.scheduler.records import Dispatch, JobRecord, ProjectRecord, StepSpec, TargetRecord
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts, edits, handover, jobs, leases, submission, targets, transitions
from jobctl.scheduler.store.common import new_id, utcnow
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.store.dispatch import job_target
from jobctl.scheduler.store.leases import StepStart
from jobctl.scheduler.store.transitions import Transition
from jobctl.scheduler.targets import TargetKinds, mismatch
from jobctl.states import OPERATIONS, Action, JobStatus, target_of

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

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
    the job staying RUNNING; later: the job waits PENDING until then, holding no worker slot). `error` is the
    failure's message, `code` and `hint` the rest of it (`scheduler.failures`)."""

    error: str
    retry: bool = False
    delay_s: float = 0.0
    code: str = failures.EXCEPTION
    hint: str | None = None

    @property
    def failure(self) -> Failure:
        return Failure(self.code, self.error, self.hint)


Outcome = Finished | Failed


@dataclass(frozen=True)
class Begun:
    """A started attempt and its job now RUNNING - or the reason its target discards the job (`job` is then
    that reason, and nothing was started)."""

    start: StepStart
    job: JobRecord | str
    announce: JobRecord | None = None  # the job as the starting transaction left it, if not announced yet


@dataclass(frozen=True)
class Recorded:
    """What `record` did: accepted, or stale (nothing changed); the job's next attempt, claimed (`follow`),
    and - if the caller is to run it - started (`begun`): the job's next step, or the next job's first step
    taken for the slot this one freed."""

    accepted: bool
    follow: Dispatch | None = None
    begun: Begun | None = None


class Operations:
    """Everything that changes jobs, for the API, the scheduler and the workers alike."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        bus: Bus,
        targets: TargetKinds,
        settings: Settings,
    ) -> None:
        self.db = db
        self.executor = executor
        self.bus = bus
        self.targets = targets
        self.settings = settings
        self.effects = Effects(bus, executor)
        self.dispatcher = Dispatcher(db, self.effects, bus, targets, settings)

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

        def create(conn: Connection) -> list[JobRecord]:
            with Database.session_on(conn) as s:
                return self._create(s, submissions, submitter, refused)

        created = self._create_at_once(submissions, submitter) if not refused else None
        if created is None:
            created = self.db.transact(create)
        self.effects.submitted(created)
        return created

    def _create_at_once(self, submissions: Sequence[Submission | None], submitter: str) -> list[JobRecord] | None:
        """PostgreSQL, one job without a target: `_create` as one statement that commits by itself
        (`submission.insert_job_at_once`). None, with nothing written, where it does not apply or the project
        does not exist: `_create` then decides, and says why it refuses."""
        if self.db.is_sqlite or len(submissions) != 1:
            return None
        sub = submissions[0]
        if sub is None or sub.target is not None or not 0 <= sub.priority <= 4:
            return None
        new = submission.NewJob(0, sub.project, sub.job_type, sub.steps, sub.params, sub.priority)
        job_id, at = new_id(), utcnow()  # fixed before the first try: a second one finds what the first wrote
        created = self.db.once(lambda conn: submission.insert_job_at_once(conn, new, job_id, at, submitter))
        return None if created is None else [created]

    def _create(
        self,
        s: Session,
        submissions: Sequence[Submission | None],
        submitter: str,
        refused: Sequence[tuple[int, JobctlError]],
    ) -> list[JobRecord]:
        """`submit_many`'s transaction: check every submission, then write them all (or raise `InvalidItems`)."""
        problems = list(refused)
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
            submission.NewJob(
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
        return submission.insert_jobs(s, new, submitter)

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
            proj = projects[sub.project] = accounts.get_project(s, sub.project)
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
        self.effects.after([(done, done.job)])
        return done.job

    def edit_params(self, job_id: str, params: dict[str, Any], steps: Sequence[StepSpec], actor: str) -> JobRecord:
        """Replace a PAUSED or ERROR job's params (validated, with the steps they plan: `JobType.prepare`), as
        `store.edits.edit_params` does; the job as it is now. The job's unfinished steps run with them once it is
        resumed. `Conflict` in any other state, `Invalid` if they plan other steps; nothing changes then."""
        with self.db.write() as s:
            job, changed = edits.edit_params(s, job_id, params, steps, actor)
        if changed:
            self.effects.after([(None, job)])
        return job

    def auto_discard(self, job_id: str, reason: str) -> bool:
        """Discard a non-final job because of its target. False if it was already final or gone."""
        try:
            with self.db.write() as s:
                done = self._transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason)
        except (Conflict, NotFound):
            return False
        self.effects.after([(done, done.job)])
        return True

    # ------------------------------------------------------------------------------------------ targets

    def put_target(self, project: str, kind: str, name: str, attributes: dict[str, Any]) -> TargetRecord:
        """Create or change a `record` target; a change discards the jobs pinned to the old version."""
        if kind != "record":
            raise Invalid(f"only 'record' targets are registered through the API, not {kind!r}")
        self.targets.get(kind).validate(name)
        with self.db.write() as s:
            proj = accounts.get_project(s, project)
            target, changed = targets.put_record_target(s, proj.id, project, kind, name, attributes)
            done = self._discard_stale(s, proj.id, kind, name) if changed else []
        self.effects.after(done)
        return target

    def delete_target(self, project: str, kind: str, name: str) -> list[str]:
        """Delete a `record` target and auto-discard its non-final jobs, atomically. Returns their ids."""
        if kind != "record":
            raise NotFound(f"target {kind}/{name} not found")
        with self.db.write() as s:
            proj = accounts.get_project(s, project)
            targets.delete_target(s, proj.id, kind, name)
            done = self._discard_stale(s, proj.id, kind, name)
        self.effects.after(done)
        return [t.job_id for t, _ in done]

    def check_targets(self) -> int:
        """Auto-discard every non-final job whose target is gone or changed. Returns how many."""
        with self.db.read() as s:
            rows = jobs.targeted_jobs(s)
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
    ) -> list[tuple[Transition, JobRecord | None]]:
        done = []
        job_ids = sorted(jobs.jobs_of_target(s, project_id, kind, name))
        transitions.lock_jobs(s, job_ids)
        for job_id in job_ids:
            target = job_target(s, job_id)
            assert target is not None
            reason = self.targets.check(s, *target)
            if reason:
                done.append(self._transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason))
        return [(t, t.job) for t in done]

    # -------------------------------------------------------------------------------- scheduler and workers

    def worker_lost(self, lease: leases.ExpiredLease, retry: bool, actor: str = "scheduler") -> None:
        """The attempt's lease ran out: re-send a never-started attempt, else retry or fail the step."""
        done: list[Done] = []
        dispatch: Dispatch | None = None
        with self.db.write() as s:
            if not leases.lock_attempt(s, lease.job_id, lease.step_index, lease.fence, expired=True):
                return
            if not lease.started:
                dispatch = transitions.resend_attempt(
                    s, lease.job_id, lease.step_index, lease.fence, self.settings.queue_lease_s
                )
                if dispatch is not None:
                    log.warning("step %s of job %s was never picked up; sent again", lease.step_index, lease.job_id)
            else:
                where = f"worker {lease.worker or '?'} lost during step {lease.step_index} (attempt {lease.attempt})"
                if retry:
                    t = self._transition(s, lease.job_id, Action.RETRY, actor, f"{where}; retrying")
                else:
                    lost = failures.exhausted(f"worker lost: {where}", lease.attempt)
                    error = Failure.of(failures.WORKER_LOST, lost)
                    t = self._transition(s, lease.job_id, Action.FAIL, actor, where, error=error)
                done.append((t, t.job))
        if dispatch is not None:
            self.effects.send(dispatch)
        self.effects.after(done)

    # ------------------------------------------------------------------------------------ the worker's path

    def start(self, job_id: str, index: int, fence: str, worker: str) -> Begun | None:
        """Start the claimed attempt `fence` of step `index` on `worker` (its message arrived): RUNNING, leased,
        target-checked. None, with nothing written, if it is no longer current; a `Begun` whose `job` is a
        reason if the job's target moved (nothing written: the caller discards the job). The job is not
        announced yet (`Begun.announce`: the caller does it with the step's first notification)."""
        with self.db.write_core() as conn:
            started = handover.start(
                conn, job_id, index, fence, worker, lease_s=self.settings.lease_s, check_target=self.targets.check
            )
        if started is None:
            return None
        if started.reason is not None:
            return Begun(started.start, started.reason)
        return Begun(started.start, started.job, announce=started.job)

    def record(self, start: StepStart, outcome: Outcome, worker: str, *, chain: bool = False) -> Recorded:
        """Record how the attempt `start` ended. A stale attempt (stopped, lost, timed out) changes nothing.

        - A finished step hands over to the job's next one, claimed - and, with `chain`, started for `worker`
          to run next, in the same transaction.
        - A finished last step finishes the job - and, with `chain`, the slot it frees takes the next PENDING
          job by the dispatch rules (`Dispatcher.take`) and starts its step for `worker`, in the same
          transaction.
        - A failed step is retried now, retried later, or fails the job (the job type's `Retry` decided).

        The caller runs `begun` itself, or sends `follow` (`send`); if it does neither (it died), the attempt's
        lease runs out and the scheduler recovers it."""
        if isinstance(outcome, Failed):
            return self._failed(start, outcome)
        if start.step_index + 1 < start.step_count:
            return self._hand_over(start, outcome.result, worker, chain)
        if chain:
            return self._finish_and_take(start, outcome.result, worker)
        with self.db.write_core() as conn:
            finished = handover.finish_job(conn, start.job_id, start.step_index, start.fence, outcome.result)
        if finished is None:
            return Recorded(False)
        self.effects.after([(finished, finished.job)])
        return Recorded(True)

    def heartbeat(
        self, start: StepStart, progress: float | None, lines: Sequence[str], *, info: dict[str, Any] | None = None
    ) -> bool:
        """While the attempt runs: renew its lease, store its progress (unless None), its info (unless None: the
        whole of it, as `ctx.info` merged it) and its new log lines. False, with nothing written, if it is no
        longer current (it was stopped: the caller stops the step)."""
        job_id, index, fence = start.job_id, start.step_index, start.fence
        with self.db.write() as s:
            current = leases.heartbeat(s, job_id, index, fence, progress, self.settings.lease_s, info=info)
            if current and lines:
                leases.append_log(s, job_id, index, fence, lines)
        return current

    def save_checkpoint(self, start: StepStart, checkpoint: dict[str, Any]) -> bool:
        """Store the attempt's checkpoint (where a resume goes on from); False if it is no longer current."""
        with self.db.write() as s:
            return leases.save_checkpoint(s, start.job_id, start.step_index, start.fence, checkpoint)

    def target_attributes(self, project: str, kind: str, name: str) -> dict[str, Any]:
        """What the target's kind tells a step or a cleanup about it (empty if it is gone)."""
        with self.db.read() as s:
            try:
                project_id = accounts.get_project(s, project).id
            except NotFound:
                return {}
            return self.targets.attributes(s, project_id, kind, name)

    def send(self, dispatch: Dispatch) -> None:
        """Queue an attempt claimed by `record` for any worker (never raises: the lease is the fallback), once
        the announcements flushed so far are out (the worker that takes it announces what follows)."""
        self.bus.settle()
        self.effects.send(dispatch)

    def _hand_over(self, start: StepStart, output: dict[str, Any] | None, worker: str, run_next: bool) -> Recorded:
        """Finish the step and claim the next - started for `worker` if `run_next` (announced by the caller with
        the started step's first notification), else announced here and left for the caller to send. On
        PostgreSQL a started hand-over of a job without a target is one statement that commits by itself."""
        job_id, index, fence = start.job_id, start.step_index, start.fence
        done: handover.HandedOver | None = None
        if run_next and start.target is None and not self.db.is_sqlite:
            with self.db.autocommit_core() as conn:
                done = handover.hand_over_at_once(
                    conn, job_id, index, fence, output, worker, lease_s=self.settings.lease_s
                )
        if done is None:
            with self.db.write_core() as conn:
                done = handover.hand_over(
                    conn,
                    job_id,
                    index,
                    fence,
                    output,
                    worker,
                    lease_s=self.settings.lease_s,
                    queue_lease_s=self.settings.queue_lease_s,
                    check_target=self.targets.check,
                    run_next=run_next,
                )
        if done is None:
            return Recorded(False)
        if not run_next:
            self.effects.after([(None, done.job)])
            return Recorded(True, done.dispatch)
        return Recorded(True, done.dispatch, Begun(done.start, done.reason or done.job, announce=done.job))

    def _finish_and_take(self, start: StepStart, output: dict[str, Any] | None, worker: str) -> Recorded:
        """Finish the job's last step and the job, then take the next job for the freed slot (`Dispatcher.take`)
        - in one transaction; the finish takes the dispatch lock in its own round trip. Should the take fail,
        the transaction is rolled back and the finish alone committed in another (no savepoint: two round
        trips per job saved for a rare failure); the schedulers are then woken to dispatch to the slot."""
        job_id, index, fence = start.job_id, start.step_index, start.fence
        actor = f"worker {worker}"
        try:  # read before the transaction (a Redis round trip does not hold the database's locks)
            capacity = self.dispatcher.capacity(max_age=1.0)  # the caller is a live slot: a second-old figure does
        except Unavailable as exc:
            log.warning("%s; not taking the next job", exc)
            capacity = 0
        finished: Transition | None = None
        try:
            with self.db.write_core() as conn, self.db.session_on(conn) as s:  # the take's general path needs a session
                finished = handover.finish_job(conn, job_id, index, fence, output, lock_dispatch=True)
                if finished is None:
                    return Recorded(False)
                taken, done = self.dispatcher.take(s, worker, actor, capacity, locked=True)
        except Exception as exc:
            if finished is None:  # the finish failed, not the take: the caller decides (retry, give up)
                raise
            log.warning("could not take the next job (%s); the scheduler will dispatch it", exc)
            with self.db.write_core() as conn:
                finished = handover.finish_job(conn, job_id, index, fence, output)
            if finished is None:
                return Recorded(False)
            self.effects.after([(finished, finished.job)])
            return Recorded(True)
        self.effects.after([(finished, finished.job), *done], wake_for_finished=False)
        if taken is None:
            return Recorded(True)
        return Recorded(True, taken.dispatch, Begun(taken.start, taken.job))

    def _failed(self, start: StepStart, outcome: Failed) -> Recorded:
        job_id, index, fence = start.job_id, start.step_index, start.fence
        with self.db.write() as s:
            if not leases.lock_attempt(s, job_id, index, fence):
                return Recorded(False)
            if outcome.retry and outcome.delay_s > 0:
                reason = f"step {index} failed: {outcome.failure.describe()}; retrying in {outcome.delay_s:.3g}s"
                t = transitions.transition(
                    s, job_id, Action.RETRY_LATER, "worker", reason, retry_in=outcome.delay_s, failure=True
                )
            elif outcome.retry:
                reason = f"step {index} failed: {outcome.failure.describe()}; retrying"
                t = self._transition(s, job_id, Action.RETRY, "worker", reason, failure=True)
            else:  # the last failure's code and hint; its message says when retries ran out (docs/contract.md §2.8)
                attempts = start.failures + 1
                error = dataclasses.replace(outcome.failure, message=failures.exhausted(outcome.error, attempts))
                reason = f"step {index} failed" if attempts <= 1 else f"step {index} failed {attempts} times"
                t = self._transition(s, job_id, Action.FAIL, "worker", reason, error=error, failure=True)
        # The attempt reporting is the one the transition stopped: it must not revoke itself.
        self.effects.after([(dataclasses.replace(t, stopped_fence=None), t.job)])
        return Recorded(True)

    # ----------------------------------------------------------------------------------------- internals

    def _transition(
        self,
        s: Session,
        job_id: str,
        action: Action,
        actor: str,
        reason: str | None = None,
        error: Failure | None = None,
        failure: bool = False,
    ) -> Transition:
        # A restarted job waits (PENDING) for the cleanup of its earlier run, which ends the hold
        # (`release_restart_hold`); should the cleanup be lost, the hold runs out by itself.
        hold = self.settings.stop_grace_s + RESTART_HOLD_S if action is Action.RESTART else 0.0
        return transitions.transition(
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
            released = transitions.release_restart_hold(s, job_id, attempt)
        if released:
            self.bus.wake_scheduler()

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
        ids = _batch_ids(job_ids, action)
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
        done: dict[str, Transition] = {}
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
        self.effects.after([(done[i], done[i].job) for i in ids])
        return [BatchItem(i, True, job.status if (job := done[i].job) else None) for i in ids]

    def preview_batch(
        self, job_ids: Sequence[str], action: Action, *, atomic: bool = False, hidden: Sequence[str] = ()
    ) -> BatchPreview:
        """What `batch` with these arguments would answer now, without changing anything (a dry run): each job's
        outcome - ok with the state it would be left in, or refused with the reason `batch` would give, decided
        by the same check (`transitions.check_allowed`) - and the projects of the jobs that would change. An
        atomic batch that would be refused raises `BatchRefused`, as `batch` would. Nothing is locked: by the
        time the batch runs, a job may have moved on, and it is judged again then."""
        ids = _batch_ids(job_ids, action)
        invisible = set(hidden)
        with self.db.read() as s:
            found = jobs.states_of_jobs(s, [i for i in ids if i not in invisible])
        items: list[BatchItem] = []
        projects: set[str] = set()
        for job_id in ids:
            if job_id not in found:
                items.append(not_found(job_id))
                continue
            status, project = found[job_id]
            try:
                transitions.check_allowed(action, status)
            except Conflict as exc:
                items.append(BatchItem(job_id, False, status, exc.message))
                continue
            items.append(BatchItem(job_id, True, target_of(action)))
            projects.add(project)
        refused = [item for item in items if not item.ok]
        if atomic and refused:
            raise BatchRefused(
                f"{len(refused)} of {len(ids)} jobs refuse to {action.value}; nothing was changed", refused
            )
        return BatchPreview(items, sorted(projects))


def _batch_ids(job_ids: Sequence[str], action: Action) -> list[str]:
    """A batch's ids, each once, in order; `Invalid` for an action that is no user operation, or more than
    `MAX_BATCH` jobs."""
    if action not in OPERATIONS:
        raise Invalid(f"unknown operation {action.value!r}")
    ids = list(dict.fromkeys(job_ids))
    if len(ids) > MAX_BATCH:
        raise Invalid(f"a batch may hold at most {MAX_BATCH} jobs, not {len(ids)}")
    return ids
