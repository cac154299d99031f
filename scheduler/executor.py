"""The narrow seams between the domain and the outside: Celery (`Executor`) and notifications (`Bus`).

The domain only talks to these protocols; `workers.executor.CeleryExecutor` and `scheduler.bus.RedisBus`
implement them, and tests may pass their own.
"""

from __future__ import annotations

from typing import Protocol

from scheduler.records import Dispatch, JobRecord


class Executor(Protocol):
    def send(self, dispatch: Dispatch) -> None:
        """Queue the step attempt for a worker. Its fence is the Celery task id."""

    def stop(self, fence: str) -> None:
        """Revoke the attempt: drop it if queued, interrupt it (then kill it after a grace) if running."""

    def cleanup(self, job_id: str, job_type: str) -> None:
        """Run the job type's cleanup hook for the job, on a worker."""


class Bus(Protocol):
    def job_changed(self, job: JobRecord) -> None:
        """Announce a job's new status or progress (SSE and metrics feed on this)."""

    def job_deleted(self, job_id: str, project: str) -> None:
        """Announce that a job is gone."""

    def wake_scheduler(self) -> None:
        """Ask the schedulers for a dispatch pass now (a slot was freed or a job became PENDING)."""
