"""Work that goes along with every attempt a pool process runs, but is not running it: metrics and Flower's
task events. Each hangs off the runtime's hooks (`workers.runtime`) instead of sitting in its path; dramatiq's
`Middleware` is the model.

A hook never raises (each implementation logs and goes on): notifications are not the truth. The runtime calls
them in the order of `default_middleware`.
"""

from __future__ import annotations

import time

import redis

from jobctl.scheduler import keys
from jobctl.scheduler.executor import Notices
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.records import Dispatch
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store.leases import StepStart
from jobctl.workers import taskevents


class Middleware:
    """The hooks, each a no-op here. `notices` go out with the runtime's own notification of the moment (one
    round trip): a hook adds to them rather than sending its own."""

    def attempt_started(self, start: StepStart, waited_s: float, notices: Notices) -> None:
        """The attempt is about to run its step's code, after waiting `waited_s` since its step was ready."""

    def attempt_ended(self, start: StepStart, ran_s: float) -> None:
        """The step's code returned or raised after `ran_s` seconds (not called for a stopped attempt)."""

    def attempt_stopped(self, start: StepStart) -> None:
        """The attempt was stopped (a pause, a discard, a timeout) and its code has unwound."""

    def inline_started(self, dispatch: Dispatch, worker: str, task_name: str) -> None:
        """An attempt that did not arrive as a Celery message starts in this process (`runtime._run_inline`)."""

    def inline_ended(self, dispatch: Dispatch, worker: str, what: str, ran_s: float) -> None:
        """That attempt ended; `what` is the runtime's account of it ('finished', 'failed: ...', 'stopped')."""

    def tick(self, worker: str) -> None:
        """The flusher's tick while a step runs (every `progress_flush_s`)."""

    def task_ended(self, worker: str, notices: Notices) -> None:
        """The Celery task ended (its attempt and the chain after it), or its attempt was stopped."""


class HeldObservations(Middleware):
    """The step histograms (waiting, running, stop latency). Observations are held and go out together with the
    next notification at least `HOLD_S` after the oldest, or when the task ends: a step never waits for them."""

    HOLD_S = 1.0

    def __init__(self, metrics: Metrics, client: redis.Redis) -> None:
        self.metrics = metrics
        self.redis = client
        self.held: list[tuple[str, float]] = []
        self.since = 0.0

    def attempt_started(self, start: StepStart, waited_s: float, notices: Notices) -> None:
        self._observe("step_waiting_seconds", waited_s)
        if time.monotonic() - self.since >= self.HOLD_S:
            self._move(notices)

    def attempt_ended(self, start: StepStart, ran_s: float) -> None:
        self._observe("step_duration_seconds", ran_s)

    def attempt_stopped(self, start: StepStart) -> None:
        """Stop latency: from the stop request (recorded by the executor) to the step's code unwound."""
        try:
            requested = self.redis.get(keys.stop_requested(start.fence))
        except redis.RedisError:
            return
        if requested is not None:
            self.metrics.observe("stop_latency_seconds", max(0.0, time.time() - float(requested)))

    def task_ended(self, worker: str, notices: Notices) -> None:
        self._move(notices)

    def _observe(self, name: str, value: float) -> None:
        if not self.held:
            self.since = time.monotonic()
        self.held.append((name, value))

    def _move(self, notices: Notices) -> None:
        notices.observations.extend(self.held)
        self.held.clear()


class FlowerEvents(Middleware):
    """Celery task events for the attempts run inline, so Flower shows every attempt as a task
    (`workers.taskevents`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def inline_started(self, dispatch: Dispatch, worker: str, task_name: str) -> None:
        taskevents.started(self.settings, worker, dispatch, task_name)

    def inline_ended(self, dispatch: Dispatch, worker: str, what: str, ran_s: float) -> None:
        taskevents.ended(self.settings, worker, dispatch.fence, what, ran_s)

    def tick(self, worker: str) -> None:
        taskevents.flush_held(worker)

    def task_ended(self, worker: str, notices: Notices) -> None:
        taskevents.flush(worker)


def default_middleware(settings: Settings, metrics: Metrics, client: redis.Redis) -> list[Middleware]:
    """The hooks every pool process runs."""
    return [HeldObservations(metrics, client), FlowerEvents(settings)]
