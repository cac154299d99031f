"""The step runtime, inside a prefork pool process: start an attempt, run it, stop it, persist its outcome.

Stopping has three layers, so a stop always lands:
1. the stop command (`workers.control`) sends SIGUSR2 to this process; the handler raises `StepStopped` in
   the step's code (this interrupts `time.sleep`, blocking waits and pure-Python loops);
2. the flusher thread notices within `progress_flush_s` that the attempt's token no longer matches the
   database (the stop message was missed) and does the same;
3. if the step has not unwound after `stop_grace_s`, the worker's main process SIGKILLs this process and the
   process groups the step started (a C call that never returns to Python).
Whatever a stopped attempt reports afterwards is fenced out by the store.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import redis
from sqlalchemy.exc import OperationalError

from jobctl.logs import set_work
from jobctl.scheduler import failures, keys
from jobctl.scheduler.executor import Notices
from jobctl.scheduler.failures import Failure
from jobctl.scheduler.operations import Begun, Failed, Finished, Outcome
from jobctl.scheduler.records import Dispatch, JobRecord
from jobctl.scheduler.store.leases import StepStart
from jobctl.states import JobStatus
from jobctl.workers import procs, runners, selffence
from jobctl.workers.context import JobInfo, StepContext, StepFailed, StepStopped, Target
from jobctl.workers.flusher import Flusher
from jobctl.workers.middleware import Middleware, default_middleware
from jobctl.workers.names import step_task_name
from jobctl.workers.registry import JobType, StepsChanged, to_output
from jobctl.workers.services import Services

log = logging.getLogger(__name__)

STOP_SIGNAL = signal.SIGUSR2
STOPPED = "stopped"
T = TypeVar("T")

_services: Services | None = None
_registration: runners.Registration | None = None  # which attempt this process runs (`workers.runners`)
_current: Attempt | None = None
_flusher: Flusher | None = None  # created on first use, in the pool process that runs attempts
_hooks: list[Middleware] = []  # metrics, Flower events (`workers.middleware`)


def flusher(svc: Services) -> Flusher:
    """This process's flusher (`workers.flusher`)."""
    global _flusher
    if _flusher is None:
        _flusher = Flusher(svc.settings.progress_flush_s)
    return _flusher


def release(svc: Services, worker: str) -> None:
    """This process runs no attempt any more (its task ended, or its attempt was stopped): unregister it and
    let the hooks send what they hold. Never raises."""
    registration().clear()
    notices = Notices()
    for hook in _hooks:
        hook.task_ended(worker, notices)
    svc.bus.notify(notices)


def init_process(services: Services) -> None:
    """Called once in each pool process after fork: own services, its record of the attempt it runs and the
    stop-signal handler."""
    global _services, _registration, _hooks
    _services = services
    _registration = runners.Registration()
    _hooks = default_middleware(services.settings, services.metrics, services.redis)
    signal.signal(STOP_SIGNAL, _on_stop_signal)


def close_process() -> None:
    """Called when the pool process exits: send the notifications still queued (a few seconds at most)."""
    if _services is not None:
        _services.bus.settle()


def registration() -> runners.Registration:
    if _registration is None:
        raise RuntimeError("the step runtime was not initialised in this process")
    return _registration


def services() -> Services:
    if _services is None:
        raise RuntimeError("the step runtime was not initialised in this process")
    return _services


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    attempt = _current
    if attempt is not None and attempt.stop_was_requested():
        attempt.stop()


class Attempt:
    """One attempt of one step, while it runs in this process."""

    def __init__(
        self,
        svc: Services,
        start: StepStart,
        worker: str,
        project: str,
        weights: list[float],
        job_type: JobType,
        leased_at: float | None = None,
    ) -> None:
        """`leased_at`: the monotonic time the transaction that leased the attempt (its start, or the record of
        the step before) was sent; its lease ends `lease_s` after a clock reading taken no earlier."""
        self.svc = svc
        self.start = start
        self.worker = worker
        self.project = project
        self.weights = weights
        self.job_type = job_type
        self.interruptible = False
        self.ctx: StepContext[Any] = StepContext(
            job_id=start.job_id,
            project=project,
            step_index=start.step_index,
            step_name=start.step_name,
            step_count=start.step_count,
            attempt=start.attempt,
            fence=start.fence,
            params=None,  # validated in `run`, where a failure fails the attempt
            target=target_of(svc, project, start.target),
            checkpoint=start.checkpoint,
            outputs=start.outputs,
            redis_client=svc.redis,
            save_checkpoint=self._save_checkpoint,
            info=start.info,
        )
        self._sent_progress: float | None = None
        self._renewed = time.monotonic()
        self._deadline: float | None = None  # monotonic time the step's `timeout_s` runs out
        self._timeout_s: float | None = None
        self.timed_out = False
        # Self-fencing (`workers.selffence`, docs/reliability.md "Several hosts"): when its lease was renewed.
        self.lease = selffence.LeaseClock(
            registration(), svc.settings.self_fence_deadline_s, time.monotonic() if leased_at is None else leased_at
        )

    # -- stop ---------------------------------------------------------------------------------------------

    def stop_was_requested(self) -> bool:
        """Whether this attempt, not one that just ended in this process, was told to stop.

        The stop command signals the pool process it found running the attempt; if that attempt ended and this
        one began in between, the signal is not ours. The executor records every stop in Redis before it
        broadcasts, so ask there, on a connection of our own (this runs in a signal handler: the shared pool's
        lock may be held by the code we interrupted). On a Redis error, fail closed: the flusher's fence check
        still stops a real stop within `progress_flush_s`."""
        if self.ctx.stopped:  # the flusher found the attempt fenced out and signalled us itself
            return True
        if self.lease.overdue():  # self-fenced: its lease went unrenewed too long (`workers.selffence`)
            return True
        try:
            client = redis.Redis.from_url(self.svc.settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
            try:
                return bool(client.exists(keys.stop_requested(self.start.fence)))
            finally:
                client.close()
        except redis.RedisError as exc:
            log.warning("stop signal for step %s not confirmed (%s); the fence check decides", self.start.fence, exc)
            return False

    def stop(self) -> None:
        """Mark the attempt stopped; interrupt the step's code if it is running (main thread only)."""
        self.ctx.request_stop()
        if self.interruptible and threading.current_thread() is threading.main_thread():
            self.interruptible = False
            raise StepStopped()

    # -- run -----------------------------------------------------------------------------------------------

    def run(self, waiting_s: float, announce: JobRecord | None = None) -> Outcome | None:
        """Run the step's code; return its outcome, or None if the attempt was stopped. Registers the attempt
        as this process's (for stops) before the code runs, and observes how long it waited and ran; announces
        `announce` (the job as the transaction that started the attempt left it) before the code runs.

        No round trip on the way: the registration is a local write (`workers.runners`) that replaces the
        previous attempt's, the announcement goes to the outbox (`scheduler.outbox`) without waiting, and the
        hooks' notifications go with the announcement (`workers.middleware`). A stopped attempt is released at
        once, so the stop's escalation finds it gone."""
        finished = stopped = False
        ended: float | None = None
        ticks = flusher(self.svc)
        ticks.attach(self)
        began = time.monotonic()
        registration().set(self.start.fence)
        if self.lease.arm():  # leased too long ago (its answer was held up): its code must not start at all
            self.ctx.request_stop()
        notices = Notices([announce] if announce is not None else [])  # with the hooks' notices due, together
        for hook in _hooks:
            hook.attempt_started(self.start, waiting_s, notices)
        self.svc.bus.notify(notices)
        stage = failures.INVALID_PARAMS  # what a failure is, by where it happens (`failure_of`)
        try:
            try:
                self.interruptible = True
                self.ctx.check_stop()
                self.ctx.params = self.job_type.parse(self.start.params)
                stage = failures.TYPE_CHANGED
                step = self.job_type.step_at(self.ctx.params, self.start.step_index, self.start.step_name)
                if step.timeout_s is not None:
                    self._timeout_s, self._deadline = step.timeout_s, began + step.timeout_s
                stage = failures.EXCEPTION
                returned = step.run(self.ctx)
                stage = failures.INVALID_OUTPUT
                output = to_output(step, returned)
            finally:
                self.interruptible = False
                self.ctx.resources.close()
                self.ctx.kill_children()
                procs.kill_descendants(os.getpid())  # children started without ctx.spawn never outlive the step
                self.lease.disarm()
            finished = True
            ended = time.monotonic()
            return Finished(output)
        except StepStopped:
            log.info(
                "step %s of job %s %s",
                self.start.step_index,
                self.start.job_id,
                "timed out" if self.timed_out else "stopped",
            )
            stopped = True
            self._stopped()
            return None
        except Exception as exc:
            if self.ctx.stopped:  # stopped (or self-fenced) in a driver's call, which turned it into this error
                log.info("step %s of job %s raised %r as it was stopped", self.start.step_index, self.start.job_id, exc)
                stopped = True
                self._stopped()
                return None
            ended = time.monotonic()
            log.warning("step %s of job %s failed: %r", self.start.step_index, self.start.job_id, exc)
            failure = failure_of(exc, stage, self.svc.settings.file_root)
            self.ctx.log(f"failed: {failure.describe()}")
            return self.failure(failure)
        finally:
            self.lease.disarm()  # already, unless cleaning up after the code failed
            if ended is not None:
                for hook in _hooks:
                    hook.attempt_ended(self.start, ended - began)
            if stopped:
                release(self.svc, self.worker)
                self.unwound()
            ticks.detach()
            # A finished step's progress (100) is written with its outcome: only its last log lines are due here.
            retry_disconnects("flush the last progress", lambda: self._flush(final=True, finished=finished))

    def _stopped(self) -> None:
        """The stopped attempt's code has unwound: say so if it fenced itself off, and tell the hooks."""
        if self.lease.before_start:
            log.warning(
                "step %s of job %s self-fenced (fence %s) before its code started: leased %.3f s ago (deadline %.3f s)",
                self.start.step_index,
                self.start.job_id,
                self.start.fence,
                self.lease.unrenewed_s(),
                self.lease.deadline_s,
            )
        elif self.lease.fenced_after is not None:
            log.warning(
                "step %s of job %s self-fenced (fence %s): lease not renewed for %.3f s (deadline %.3f s); "
                "unwound after %.3f s",
                self.start.step_index,
                self.start.job_id,
                self.start.fence,
                self.lease.fenced_after,
                self.lease.deadline_s,
                self.lease.unrenewed_s(),
            )
        for hook in _hooks:
            hook.attempt_stopped(self.start)
        return None

    def failure(self, failure: Failure) -> Failed:
        """The attempt failed with `failure`: the job type's retry policy decides whether and when it runs again."""
        delay = self.job_type.retry.delay(self.start.failures + 1)  # this failure's number
        return Failed(
            failure.message, retry=delay is not None, delay_s=delay or 0.0, code=failure.code, hint=failure.hint
        )

    def unwound(self) -> None:
        """Tell the job's cleanup (waiting for it) that this stopped attempt has unwound. Never raises."""
        try:
            self.svc.redis.set(keys.unwound(self.start.fence), "1", ex=3600)
        except redis.RedisError as exc:
            log.warning("could not mark step %s unwound (%s); its cleanup waits out the grace", self.start.fence, exc)

    def _time_out(self) -> None:
        """The step ran past its `timeout_s` (the flusher's thread): record the failure - which fences the attempt
        out - then stop it through every layer a pause uses: the stop command (interrupt, then kill after the
        grace) and the stop signal to this process right now."""
        self.timed_out = True
        s = self.start
        error = Failure.of(failures.TIMEOUT, f"step {s.step_name!r} timed out after {self._timeout_s:g}s (timeout_s)")
        self.ctx.log(f"failed: {error.describe()}")
        log.warning("step %s of job %s %s", s.step_index, s.job_id, error.message)
        try:
            recorded = retry_disconnects(
                "record the timeout", lambda: self.svc.ops.record(s, self.failure(error), self.worker)
            )
            if not recorded.accepted:  # it ended (or was stopped) just now: nothing left to stop
                return
            self.svc.ops.executor.stop(s.fence)
        except Exception as exc:  # stopped all the same: its lease then decides, as for a lost worker
            log.warning("could not record or broadcast the timeout of step %s (%s); stopping it", s.fence, exc)
        self.ctx.request_stop()
        os.kill(os.getpid(), STOP_SIGNAL)

    # -- flushing -----------------------------------------------------------------------------------------

    def tick(self) -> bool:
        """The flusher's call while the step runs: flush what is due. If the attempt is no longer current (a
        stop we did not hear about), interrupt the step and return False. Publishes the held task events."""
        if self.lease.fenced_after is not None:  # self-fenced: its lease is never renewed again
            return False
        for hook in _hooks:
            hook.tick(self.worker)
        if self._deadline is not None and not self.timed_out and time.monotonic() > self._deadline:
            self._time_out()
            return False
        if self._flush(final=False):
            return True
        if not self.ctx.stopped:
            self.ctx.request_stop()
            os.kill(os.getpid(), STOP_SIGNAL)
        return False

    def _flush(self, final: bool, finished: bool = False) -> bool:
        """Write progress, lease and log lines if due (only log lines once `finished`). False if the attempt is
        no longer current."""
        progress, lines = self.ctx.take_reports()
        info = self.ctx.take_info()  # written whenever it changed, also with a finished step's last lines
        s = self.start
        lease_due = not finished and time.monotonic() - self._renewed > self.svc.settings.lease_s / 4
        changed = not finished and progress != self._sent_progress
        if not (changed or lease_due or lines or info is not None) or (final and self.ctx.stopped):
            return True
        asked = time.monotonic()  # the lease it writes ends `lease_s` after a clock reading taken no earlier
        try:
            current = self.svc.ops.heartbeat(s, progress if changed else None, lines, info=info)
        except BaseException:
            if info is not None:
                self.ctx.give_back_info()
            raise
        if not current:
            return False
        self.lease.renewed(asked)
        self._renewed = time.monotonic()
        if changed:
            self._sent_progress = progress
            self._publish(progress)
        return True

    def _publish(self, step_progress: float) -> None:
        s = self.start
        total = sum(self.weights) or 1.0
        clamped = max(0.0, min(100.0, step_progress))
        done = sum(self.weights[: s.step_index]) * 100 + self.weights[s.step_index] * clamped
        self.svc.bus.publish_raw(
            {
                "id": s.job_id,
                "project": self.project,
                "status": JobStatus.RUNNING.value,
                "progress": round(done / total, 2),
                "step": {
                    "index": s.step_index,
                    "name": s.step_name,
                    "status": JobStatus.RUNNING.value,
                    "progress": step_progress,
                },
            }
        )

    def _save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record the step's checkpoint, out of reach of the stop signal: a `StepStopped` raised in the middle
        of a write could leave the database's write lock or a transaction held by this process for good. A stop
        that arrives meanwhile takes effect as soon as the write is done."""
        if self.ctx.stopped:
            return
        on_main = threading.current_thread() is threading.main_thread()
        was = self.interruptible
        if on_main:
            self.interruptible = False
        try:
            self.svc.ops.save_checkpoint(self.start, checkpoint)
        finally:
            if on_main:
                self.interruptible = was
        if on_main and was and self.ctx.stopped:
            self.interruptible = False
            raise StepStopped()


def failure_of(exc: Exception, stage: str, file_root: Path) -> Failure:
    """What an attempt that raised `exc` failed with, by `stage`, the code of the part that raised: the stored
    params (`invalid_params`), the job type's steps (`type_changed`; a plan that raises anything else is an
    `exception`), the step's own code (`StepFailed`'s code - `step_failed` without one - or `exception`), its
    output (`invalid_output`). The message names files relative to the file root (`relative_to_file_root`)."""
    if isinstance(exc, StepFailed):
        code, message, hint = exc.code or failures.STEP_FAILED, exc.message, exc.hint
    elif stage == failures.EXCEPTION or (stage == failures.TYPE_CHANGED and not isinstance(exc, StepsChanged)):
        code, message, hint = failures.EXCEPTION, f"{type(exc).__name__}: {exc}", None
    else:
        code, message, hint = stage, str(exc), failures.CODES[stage]
    relative = relative_to_file_root(message, file_root)
    return Failure(code, relative, None if hint is None else relative_to_file_root(hint, file_root))


def relative_to_file_root(text: str, file_root: Path) -> str:
    """`text` with every path under the file root written relative to it, as target names are: a step's error is
    shown to every viewer of its project, who needs the file's name, not where the server keeps its files."""
    for root in {str(file_root.resolve()), str(file_root.absolute())}:
        text = text.replace(root + os.sep, "")
    return text


def retry_disconnects(what: str, transaction: Callable[[], T], tries: int = 5) -> T:
    """Run `transaction` again if the database connection was lost under it (a database restart, a terminated
    backend; the pool reconnects), so a short outage neither re-runs the step nor waits for its lease.

    Safe because every transaction here is fenced by the attempt's token: if the lost one did commit, the retry
    finds the attempt moved on and changes nothing, and the leases cover what the first one left undone."""
    for tried in range(1, tries + 1):
        try:
            return transaction()
        except OperationalError as exc:
            if not exc.connection_invalidated or tried == tries:
                raise
            log.warning("could not %s: database connection lost (%s); retrying", what, exc.orig)
            time.sleep(0.2 * tried)
    raise AssertionError("unreachable")


def run_attempt(job_id: str, index: int, fence: str, worker: str) -> str:
    """Run the attempt `fence` of step `index` if it is still current, then each attempt that recording it
    started for this process: the job's next step, or - once the job finished - the first step of the next job
    its freed slot took (`Operations.record`). Returns what happened to its own attempt, for Flower (STOPPED
    only if that one was stopped); the attempts run inline are announced to Flower as tasks of their own.

    An inline attempt runs without a Celery round trip: the transaction that recorded the previous outcome
    claimed it with a new fence and started it for this process - fenced, target-checked, leased and recorded
    exactly as if it had arrived as a message; a stop finds its process through the attempt the process
    registers as the one it runs (`workers.runners`, `workers.control`). Should this process die while running
    it, its lease runs out and the scheduler retries it. After `settings.chain_s` the next attempt goes through
    the queue instead, so one task never holds a process (or a warm shutdown) for longer than its step plus
    that."""
    svc = services()
    try:
        return _run_chain(svc, job_id, index, fence, worker)
    finally:
        release(svc, worker)


def _run_chain(svc: Services, job_id: str, index: int, fence: str, worker: str) -> str:
    until = time.monotonic() + svc.settings.chain_s
    ran = _run_one(svc, job_id, index, fence, worker, None, until)
    own = ran.what
    if ran.follow is not None:
        log.info("step %s of job %s: %s; the next attempt runs in this process", index, job_id, ran.what)
    while ran.follow is not None:
        follow, begun, leased_at = ran.follow, ran.begun, ran.leased_at
        if begun is None and time.monotonic() >= until:  # long enough in one task: the queue takes over
            svc.ops.send(follow)
            break
        try:
            ran = _run_inline(svc, follow, worker, begun, until, leased_at)
        except Exception:
            if begun is None:  # never started: any worker may take it (a copy of a started one is a no-op)
                svc.ops.send(follow)
            raise  # a started one is recovered by its lease
    return own


def _run_inline(
    svc: Services, dispatch: Dispatch, worker: str, begun: Begun | None, until: float, leased_at: float | None
) -> Ran:
    """Run a claimed attempt here, announcing it to Flower as the task it would otherwise have been."""
    began = time.monotonic()
    for hook in _hooks:
        hook.inline_started(dispatch, worker, step_task_name(dispatch.job_type))
    ran = _run_one(svc, dispatch.job_id, dispatch.step_index, dispatch.fence, worker, begun, until, leased_at)
    for hook in _hooks:
        hook.inline_ended(dispatch, worker, ran.what, time.monotonic() - began)
    # What Celery's own "Task ... succeeded" line says for a step that came as a message.
    log.info(
        "step %s of job %s (task %s, run in this process): %s",
        dispatch.step_index,
        dispatch.job_id,
        dispatch.fence,
        ran.what,
    )
    return ran


@dataclass(frozen=True)
class Ran:
    """How an attempt ended (`what`), and the job's next attempt if this process is to run it: claimed
    (`begun` None: sent to the queue) or already started in the transaction that recorded this one."""

    what: str
    follow: Dispatch | None = None
    begun: Begun | None = None
    leased_at: float | None = None  # `begun`'s: when the transaction that leased it was sent (`Attempt`)


def _run_one(
    svc: Services,
    job_id: str,
    index: int,
    fence: str,
    worker: str,
    begun: Begun | None,
    until: float,
    leased_at: float | None = None,
) -> Ran:
    """Start (unless `begun`, leased by a transaction sent at `leased_at`), run and record one attempt: the three
    calls of the worker's path, each one to `Operations`. Until `until`, recording it starts the next attempt
    for this process."""
    global _current
    if begun is None:
        leased_at = time.monotonic()
        begun = retry_disconnects("start the step", lambda: svc.ops.start(job_id, index, fence, worker))
        if begun is None:
            return Ran("stale: the attempt is no longer current")
    start, job = begun.start, begun.job
    if isinstance(job, str):  # its target moved: nothing was started
        if begun.announce is not None:  # the step before it finished
            svc.bus.job_changed(begun.announce)
        svc.ops.auto_discard(job_id, job)
        return Ran(f"discarded: {job}")
    set_work(job_id, index, start.attempt)
    job_type = svc.registry.get(start.job_type)
    attempt = Attempt(svc, start, worker, job.project, [st.weight for st in job.steps], job_type, leased_at)
    _current = attempt
    try:
        outcome = attempt.run(job.steps[index].waiting_s, begun.announce)
    finally:
        _current = None
    if outcome is None:
        return Ran(STOPPED)
    chain = time.monotonic() < until
    asked = time.monotonic()  # the next attempt it may start is leased from a clock reading taken no earlier
    recorded = retry_disconnects("record the outcome", lambda: svc.ops.record(start, outcome, worker, chain=chain))
    if not recorded.accepted:
        attempt.unwound()  # stopped while it finished: its job's cleanup may be waiting for it
        return Ran("stale: stopped while finishing")
    what = "finished" if isinstance(outcome, Finished) else f"failed: {outcome.error}"
    return Ran(what, recorded.follow, recorded.begun, asked)


def target_of(svc: Services, project: str, target: tuple[str, str, str | None] | None) -> Target | None:
    """The job's target as a step or a cleanup sees it; its attributes are read on first use."""
    if target is None:
        return None
    kind, name, version = target
    return Target(kind, name, version, lambda: svc.ops.target_attributes(project, kind, name))


#: How long a cleanup waits, beyond the stop's grace, for the stopped attempt to unwind before it runs anyway.
UNWIND_MARGIN_S = 5.0


def run_cleanup(job_id: str, job_type: str, reason: str, job: dict[str, Any], fence: str | None) -> None:
    """Run the job type's cleanup hook with the job and `reason` - after the stopped attempt `fence`, if any, has
    unwound (its resources released, or its process killed), waiting at most the stop's grace and
    `UNWIND_MARGIN_S`. A failing hook is logged, never raised. After a restart, the job may start once this
    is done (it waits PENDING until then)."""
    svc = services()
    try:
        _clean_up(svc, job_id, job_type, reason, job, fence)
    finally:
        if reason == "restart":  # the restarted job waits for this (`Operations.release_restart_hold`)
            svc.ops.release_restart_hold(job_id, int(job.get("attempt", 0)))


def _clean_up(svc: Services, job_id: str, job_type: str, reason: str, job: dict[str, Any], fence: str | None) -> None:
    jt = svc.registry.get(job_type)
    hook = jt.cleanup_hook
    if hook is None:
        return
    if fence is not None:
        deadline = time.monotonic() + svc.settings.stop_grace_s + UNWIND_MARGIN_S
        while not svc.redis.exists(keys.unwound(fence)):
            if time.monotonic() > deadline:
                log.warning("step attempt %s of job %s did not report unwinding; cleaning up anyway", fence, job_id)
                break
            time.sleep(0.02)
    try:
        target = job.get("target")
        info = JobInfo(
            id=job_id,
            project=job.get("project", ""),
            type=job_type,
            params=jt.parse(job.get("params")),
            target=target_of(svc, job.get("project", ""), (target[0], target[1], target[2])) if target else None,
            status=job.get("status", ""),
        )
        hook(info, reason)
    except Exception:
        log.exception("cleanup of job %s (%s) failed", job_id, reason)
