"""Redis notifications: job changes, scheduler wake-ups, live-worker capacity. Redis is never the truth."""

from __future__ import annotations

import json
import logging

import redis

from jobctl.scheduler import keys
from jobctl.scheduler.errors import Unavailable
from jobctl.scheduler.executor import Notices
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.outbox import Outbox
from jobctl.scheduler.records import JobRecord

log = logging.getLogger(__name__)


def job_message(job: JobRecord) -> dict[str, object]:
    """The `job` event of docs/contract.md §4: `{id, project, status, progress, step}`."""
    step = job.current_step
    return {
        "id": job.id,
        "project": job.project,
        "status": job.status.value,
        "progress": job.progress,
        "step": None
        if step is None
        else {"index": step.index, "name": step.name, "status": step.status.value, "progress": step.progress},
    }


def deleted_message(job_id: str, project: str) -> dict[str, object]:
    """The `job` event of a deleted job."""
    return {"id": job_id, "project": project, "status": None, "progress": None, "step": None, "deleted": True}


class RedisBus:
    """`scheduler.executor.Bus` on Redis: `job` events on a pub/sub channel, the metrics (`Metrics`), the
    schedulers' wake-up list. A failed notification is logged, never raised: it is not the truth.

    With an `outbox` (a worker's pool processes), `notify` hands the pipeline to it and returns at once."""

    def __init__(self, client: redis.Redis, metrics: Metrics, outbox: Outbox | None = None) -> None:
        self.redis = client
        self.metrics = metrics
        self.outbox = outbox

    def notify(self, notices: Notices) -> None:
        """Send `notices` as one pipeline (no MULTI): now, or through the outbox (in the order of the calls)."""
        if not notices:
            return
        pipe = self.redis.pipeline(transaction=False)
        for job in notices.changed:
            pipe.publish(keys.EVENTS, json.dumps(job_message(job)))
        for job_id, project in notices.deleted:
            pipe.publish(keys.EVENTS, json.dumps(deleted_message(job_id, project)))
        for name, label, amount in notices.counts:
            self.metrics.count(name, label, amount, pipe=pipe)
        if notices.observations:
            self.metrics.observe_many(notices.observations, pipe)
        if notices.wake:
            pipe.lpush(keys.WAKE, 1)
            pipe.ltrim(keys.WAKE, 0, 9)
        if self.outbox is not None:
            self.outbox.post(pipe)
            return
        try:
            pipe.execute()
        except redis.RedisError as exc:
            log.warning("could not send notifications: %s", exc)

    def settle(self) -> None:
        """Return once everything sent so far has gone out (at once without an outbox)."""
        if self.outbox is not None and not self.outbox.settle():
            log.warning("notifications still unsent after waiting for them")

    def job_changed(self, job: JobRecord) -> None:
        self.notify(Notices(changed=[job]))

    def publish_raw(self, message: dict[str, object]) -> None:
        """Publish a `job` event built by the caller (a running step's progress), now."""
        try:
            self.redis.publish(keys.EVENTS, json.dumps(message))
        except redis.RedisError as exc:
            log.warning("could not publish a job event: %s", exc)

    def wake_scheduler(self) -> None:
        self.notify(Notices(wake=True))

    def wait_for_wake(self, timeout: float) -> None:
        """Block until a wake-up arrives or `timeout` passes; swallow the ones queued behind it."""
        try:
            if self.redis.blpop([keys.WAKE], timeout=timeout):
                self.redis.delete(keys.WAKE)
        except redis.RedisError as exc:
            log.warning("waiting for wake-ups failed: %s", exc)

    def capacity(self, queue: str) -> int:
        """The summed process count of the workers alive now on `queue`; `Unavailable` if Redis cannot tell."""
        total = 0
        try:
            for key in self.redis.scan_iter(match=keys.workers_of(queue), count=500):
                value = self.redis.get(key)
                if value is not None:
                    total += int(value)
        except redis.RedisError as exc:
            raise Unavailable(f"could not read the workers' capacity: {exc}") from exc
        return total
