"""The Celery application: configuration, the step tasks (one per job type) and the cleanup task.

Why these settings: the database, not Celery, decides what runs. A step message is acknowledged on receipt
(`acks_late=False`) and a lost one is detected by the scheduler's lease and sent again under a new fencing
token, so a redelivered message can never run a step twice (celery#5935). A worker takes a message only for
a free process (prefetch disabled), so a busy worker does not sit on messages another could run, and a worker
that dies loses only the steps it was running.
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.exceptions import Ignore

from jobctl.scheduler.settings import Settings

CLEANUP_TASK = "jobctl.cleanup"
STOP_COMMAND = "jobctl_stop"
STEP_TASK_PREFIX = "jobctl.step."

_apps: dict[tuple[str, str], Celery] = {}


def step_task_name(job_type: str) -> str:
    """The Celery task name of a job type's steps (what Flower shows), e.g. `jobctl.step.sleep`."""
    return f"{STEP_TASK_PREFIX}{job_type}"


def get_app(settings: Settings) -> Celery:
    """The Celery app for `settings`' broker and queue, created on first use (one per process and pair)."""
    key = (settings.redis_url, settings.queue)
    if key not in _apps:
        _apps[key] = create_app(settings)
    return _apps[key]


def create_app(settings: Settings) -> Celery:
    """A Celery app for `settings`, with a step task for every registered job type."""
    from jobctl.workers import control  # noqa: F401  (registers the stop command)
    from jobctl.workers.registry import load_plugins, registry

    load_plugins(settings.plugins)
    # No result backend: the database is the truth about every attempt, and Celery's results would only be
    # a second, unread copy (and a second Redis connection in every worker's event loop).
    app = Celery("jobctl", broker=settings.redis_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_default_queue=settings.queue,
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        # An early-acked running task no longer counts against the prefetch window, so without this a worker
        # whose processes are all busy still takes up to `concurrency` more messages and sits on them: late
        # if another worker is idle, lost (until the queue lease re-sends them) if it dies.
        worker_disable_prefetch=True,
        worker_send_task_events=True,
        task_send_sent_event=True,
        task_track_started=True,
        broker_connection_retry_on_startup=True,
        # No `health_check_interval`: kombu's event loop then reads each BRPOP answer one message late (seen
        # here as steps received only when the next message arrived, at the interval's period).
        broker_transport_options={"socket_keepalive": True},
        worker_hijack_root_logger=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    app.conf.jobctl_settings = settings

    for name in registry.names():
        app.task(name=step_task_name(name), bind=True)(_run_step)
    app.task(name=CLEANUP_TASK)(_cleanup)
    return app


def _run_step(task: Any, job_id: str, step_index: int, step_name: str) -> str:
    """Run one step attempt; the task id is the attempt's fencing token.

    A stopped attempt raises `Ignore`: the stop already sent `task-revoked`, and no success or failure may
    follow it, so Flower keeps showing the attempt REVOKED.
    """
    from jobctl.workers import runtime

    outcome = runtime.run_attempt(job_id, step_index, task.request.id, task.request.hostname or "?")
    if outcome == runtime.STOPPED:
        raise Ignore()
    return outcome


def _cleanup(
    job_id: str, job_type: str, reason: str = "discard", job: dict[str, Any] | None = None, fence: str | None = None
) -> None:
    from jobctl.workers import runtime

    runtime.run_cleanup(job_id, job_type, reason, job or {}, fence)
