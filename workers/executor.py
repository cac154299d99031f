"""`scheduler.executor.Executor` on Celery: the one place the domain's decisions become Celery messages."""

from __future__ import annotations

import logging
import time

import redis

from jobctl.scheduler import keys
from jobctl.scheduler.records import Dispatch, JobRecord
from jobctl.scheduler.settings import Settings
from jobctl.workers.celery_app import get_app
from jobctl.workers.names import CLEANUP_TASK, STOP_COMMAND, step_task_name

log = logging.getLogger(__name__)


class CeleryExecutor:
    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.redis = client
        self.app = get_app(settings)

    def send(self, dispatch: Dispatch) -> None:
        """Queue the attempt; the fence is the task id, so a stop can revoke exactly this attempt."""
        self.app.send_task(
            step_task_name(dispatch.job_type),
            args=[dispatch.job_id, dispatch.step_index, dispatch.step_name],
            task_id=dispatch.fence,
            queue=self.settings.queue,
        )

    def stop(self, fence: str) -> None:
        """Broadcast the stop: every worker revokes the task; the one running it interrupts it and escalates."""
        self.redis.set(keys.stop_requested(fence), repr(time.time()), ex=3600)
        self.app.control.broadcast(STOP_COMMAND, arguments={"task_id": fence, "grace": self.settings.stop_grace_s})

    def cleanup(self, job: JobRecord, reason: str, stopped_fence: str | None) -> None:
        """Queue the job type's cleanup; it waits for the stopped attempt `stopped_fence` to unwind first."""
        info = {
            "project": job.project,
            "params": job.params,
            "status": job.status.value,
            "attempt": job.attempt,
            "target": [job.target.kind, job.target.name, job.target.version] if job.target else None,
        }
        self.app.send_task(
            CLEANUP_TASK, args=[job.id, job.type, reason, info, stopped_fence], queue=self.settings.queue
        )
