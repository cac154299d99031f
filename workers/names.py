"""The names jobctl gives its Celery tasks and its remote-control command, shared by the side that sends them
(`workers.executor`) and the side that runs them (`workers.tasks`, `workers.control`). Imports nothing."""

from __future__ import annotations

CLEANUP_TASK = "jobctl.cleanup"
STOP_COMMAND = "jobctl_stop"
STEP_TASK_PREFIX = "jobctl.step."


def step_task_name(job_type: str) -> str:
    """The Celery task name of a job type's steps (what Flower shows), e.g. `jobctl.step.sleep`."""
    return f"{STEP_TASK_PREFIX}{job_type}"
