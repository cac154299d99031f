"""The narrow seams between the domain and the outside: Celery (`Executor`) and notifications (`Bus`).

The domain only talks to these protocols; `workers.executor.CeleryExecutor` and `scheduler.bus.RedisBus`
implement them, and tests may pass their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from jobctl.scheduler.records import Dispatch, JobRecord


class Executor(Protocol):
    def send(self, dispatch: Dispatch) -> None:
        """Queue the step attempt for a worker. Its fence is the Celery task id."""

    def stop(self, fence: str) -> None:
        """Revoke the attempt: drop it if queued, interrupt it (then kill it after a grace) if running."""

    def cleanup(self, job: JobRecord, reason: str, stopped_fence: str | None) -> None:
        """Run the job type's cleanup hook for the job, on a worker, with `reason` (the action's name: discard,
        auto-discard, restart) - once the attempt `stopped_fence` (if any) has unwound."""


@dataclass
class Notices:
    """Notifications that go out together, in one round trip, in this order: the jobs that changed or were
    deleted (their `job` events, docs/contract.md §4), counters and histogram observations (the metrics), and a
    wake-up for the schedulers."""

    changed: list[JobRecord] = field(default_factory=list)
    deleted: list[tuple[str, str]] = field(default_factory=list)  # (job id, project)
    counts: list[tuple[str, str, int]] = field(default_factory=list)  # (counter, label, amount)
    observations: list[tuple[str, float]] = field(default_factory=list)  # (histogram, value)
    wake: bool = False

    def __bool__(self) -> bool:
        return bool(self.changed or self.deleted or self.counts or self.observations or self.wake)


class Bus(Protocol):
    """Notifications. None of them is the truth (the database is): a lost one is logged, never raised, and has
    its fallback (clients poll, the scheduler ticks)."""

    def notify(self, notices: Notices) -> None:
        """Send `notices` together; it may return before they are sent, but batches go out in the order of the
        calls."""

    def settle(self) -> None:
        """Return once the notices sent so far have gone out."""

    def job_changed(self, job: JobRecord) -> None:
        """Announce a job's new status or progress now (`send` of one change)."""

    def wake_scheduler(self) -> None:
        """Ask the schedulers for a dispatch pass now (a slot was freed or a job became PENDING)."""

    def wait_for_wake(self, timeout: float) -> None:
        """Block until a wake-up arrives or `timeout` passes."""

    def capacity(self, queue: str) -> int:
        """The summed process count of the live workers on `queue`; `errors.Unavailable` if it cannot tell."""
