"""What a committed transition asks of the world outside the database, carried out after the commit.

`Effects.after` announces each changed job, counts the transitions and wakes the schedulers where a job or a
slot became free - in one notification batch, before anything else, so announcements keep the order of the
changes - then revokes stopped attempts, queues cleanups and sends claimed attempts. Every writer of a
transition (`Operations`, `Dispatcher`) hands its results here, so these rules live in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from jobctl.scheduler.executor import Bus, Executor
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.records import Dispatch, JobRecord
from jobctl.scheduler.store.transitions import Transition
from jobctl.states import Action, JobStatus

log = logging.getLogger(__name__)

#: A committed transition (None: a change that is not a status change) and the job as it left it.
Done = tuple[Transition | None, JobRecord | None]

#: actions after which the job type's cleanup hook runs: their intermediate results are thrown away
CLEANS_UP = frozenset({Action.DISCARD, Action.AUTO_DISCARD, Action.RESTART})


class Effects:
    """The side effects of committed transitions. No method raises: the change is already durable, and each
    effect has a fallback - a missed stop is noticed by the attempt's own fence check, a missed send by the
    attempt's lease, a missed wake-up by the scheduler's tick."""

    def __init__(self, bus: Bus, executor: Executor, metrics: Metrics | None = None) -> None:
        self.bus = bus
        self.executor = executor
        self.metrics = metrics

    def after(self, done: Sequence[Done], *, wake_for_finished: bool = True) -> None:
        """Carry out what these committed transitions ask for. Without `wake_for_finished` (the caller takes
        the next job to the freed slot itself), a job that finished does not wake the schedulers."""
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
        effects = [t for t, _ in done if t is not None and (t.stopped_fence or t.action in CLEANS_UP or t.dispatch)]
        if effects:  # what they start elsewhere is announced from there: after these announcements
            self.bus.settle()
        for t in effects:
            if t.stopped_fence:
                self._effect("revoke the stopped attempt", self.executor.stop, t.stopped_fence)
            if t.action in CLEANS_UP and t.job is not None:
                unwinding = t.stopped_fence if t.stopped_running else None
                self._effect("queue the cleanup", self.executor.cleanup, t.job, t.action.value, unwinding)
            if t.dispatch is not None:
                self.send(t.dispatch)

    def submitted(self, jobs: Sequence[JobRecord]) -> None:
        """Announce new PENDING jobs, count them and wake the schedulers, in one batch."""
        batch = self.bus.batch()
        for job in jobs:
            self.bus.job_changed(job, batch)
        self.bus.wake_scheduler(batch)
        if self.metrics is not None:
            self.metrics.count("transitions", Action.SUBMIT.value, len(jobs), pipe=batch)
        self.bus.flush(batch)

    def send(self, dispatch: Dispatch) -> None:
        """Queue a claimed attempt for any worker."""
        self._effect("send the attempt", self.executor.send, dispatch)

    @staticmethod
    def _effect(what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.warning("could not %s (%s); the fallback will take over", what, exc)
