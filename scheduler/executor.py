"""The narrow seams between the domain and the outside: Celery (`Executor`) and notifications (`Bus`).

The domain only talks to these protocols; `workers.executor.CeleryExecutor` and `scheduler.bus.RedisBus`
implement them, and tests may pass their own.
"""

from __future__ import annotations

from typing import Any, Protocol

from jobctl.scheduler.records import Dispatch, JobRecord


class Executor(Protocol):
    def send(self, dispatch: Dispatch) -> None:
        """Queue the step attempt for a worker. Its fence is the Celery task id."""

    def stop(self, fence: str) -> None:
        """Revoke the attempt: drop it if queued, interrupt it (then kill it after a grace) if running."""

    def cleanup(self, job: JobRecord, reason: str, stopped_fence: str | None) -> None:
        """Run the job type's cleanup hook for the job, on a worker, with `reason` (the action's name: discard,
        auto-discard, restart) - once the attempt `stopped_fence` (if any) has unwound."""


class Bus(Protocol):
    """Notifications. Each method takes an optional batch (`batch()`): given one, it only queues the
    notification, which goes out with the rest of the batch when it is flushed (`flush`)."""

    def batch(self) -> Any:
        """A new, empty batch of notifications."""

    def flush(self, batch: Any) -> None:
        """Send a batch's notifications together (never raises: a lost notification has its fallback); it
        may return before they are sent, in the order of the flushes."""

    def settle(self) -> None:
        """Return once the batches flushed so far have been sent."""

    def job_changed(self, job: JobRecord, batch: Any = None) -> None:
        """Announce a job's new status or progress (SSE and metrics feed on this)."""

    def job_deleted(self, job_id: str, project: str, batch: Any = None) -> None:
        """Announce that a job is gone."""

    def wake_scheduler(self, batch: Any = None) -> None:
        """Ask the schedulers for a dispatch pass now (a slot was freed or a job became PENDING)."""

    def wait_for_wake(self, timeout: float) -> None:
        """Block until a wake-up arrives or `timeout` passes."""

    def capacity(self, queue: str) -> int:
        """The summed process count of the live workers on `queue`; `errors.Unavailable` if it cannot tell."""
