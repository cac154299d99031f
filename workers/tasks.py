"""The Celery tasks a worker runs: one step task per job type (`jobctl.step.<type>`) and the cleanup task.
Each hands its work to `workers.runtime`."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import Ignore

from jobctl.workers import runtime
from jobctl.workers.names import CLEANUP_TASK, step_task_name
from jobctl.workers.registry import Registry


def register(app: Celery, job_types: Registry) -> None:
    """Add to `app` (only: not to every Celery app of the process) a step task for every job type in
    `job_types`, and the cleanup task."""
    for name in job_types.names():
        app.task(name=step_task_name(name), bind=True, shared=False)(_run_step)
    app.task(name=CLEANUP_TASK, shared=False)(_cleanup)


def _run_step(task: Any, job_id: str, step_index: int, step_name: str) -> str:
    """Run one step attempt; the task id is the attempt's fencing token.

    A stopped attempt raises `Ignore`: the stop already sent `task-revoked`, and no success or failure may
    follow it, so Flower keeps showing the attempt REVOKED.
    """
    outcome = runtime.run_attempt(job_id, step_index, task.request.id, task.request.hostname or "?")
    if outcome == runtime.STOPPED:
        raise Ignore()
    return outcome


def _cleanup(
    job_id: str, job_type: str, reason: str = "discard", job: dict[str, Any] | None = None, fence: str | None = None
) -> None:
    runtime.run_cleanup(job_id, job_type, reason, job or {}, fence)
