"""The Celery application and its configuration. The tasks a worker runs are added by `workers.tasks`; a
process that only sends messages (the API, the scheduler) or watches them (Flower) needs none of them.

Why these settings: the database, not Celery, decides what runs. A step message is acknowledged on receipt
(`acks_late=False`) and a lost one is detected by the scheduler's lease and sent again under a new fencing
token, so a redelivered message can never run a step twice (celery#5935). A worker takes a message only for
a free process (prefetch disabled), so a busy worker does not sit on messages another could run, and a worker
that dies loses only the steps it was running.
"""

from __future__ import annotations

from celery import Celery

from jobctl.scheduler.settings import Settings

_apps: dict[tuple[str, str], Celery] = {}


def get_app(settings: Settings) -> Celery:
    """The Celery app for `settings`' broker and queue, created on first use (one per process and pair)."""
    key = (settings.redis_url, settings.queue)
    if key not in _apps:
        _apps[key] = create_app(settings)
    return _apps[key]


def create_app(settings: Settings) -> Celery:
    """A Celery app for `settings`' broker and queue, with no task of its own (see `workers.tasks`)."""
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
    return app
