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

from jobctl.scheduler.executor import Bus, Executor, Notices
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

    def __init__(self, bus: Bus, executor: Executor) -> None:
        self.bus = bus
        self.executor = executor

    def after(self, done: Sequence[Done], *, wake_for_finished: bool = True) -> None:
        """Carry out what these committed transitions ask for. Without `wake_for_finished` (the caller takes
        the next job to the freed slot itself), a job that finished does not wake the schedulers."""
        notices = Notices()  # the announcements, metrics and wake-up: one round trip, before the effects
        for t, job in done:
            if job is not None:
                notices.changed.append(job)
            elif t is not None and t.after is None:
                notices.deleted.append((t.job_id, t.project))
        for t, _ in done:
            if t is None:
                continue
            notices.counts.append(("transitions", t.action.value, 1))
            if t.action is Action.DISPATCH and t.waited_s is not None:
                notices.observations.append(("dispatch_latency_seconds", t.waited_s))
            if t.after is JobStatus.FINISHED and not wake_for_finished:
                continue
            notices.wake = notices.wake or t.after is JobStatus.PENDING or t.before is JobStatus.RUNNING
        self.bus.notify(notices)
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
        self.bus.notify(Notices(list(jobs), counts=[("transitions", Action.SUBMIT.value, len(jobs))], wake=True))

    def send(self, dispatch: Dispatch) -> None:
        """Queue a claimed attempt for any worker."""
        self._effect("send the attempt", self.executor.send, dispatch)

    @staticmethod
    def _effect(what: str, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.warning("could not %s (%s); the fallback will take over", what, exc)
