"""Redis notifications: job changes, scheduler wake-ups, live-worker capacity. Redis is never the truth."""

from __future__ import annotations

import json
import logging

import redis
from redis.client import Pipeline

from jobctl.scheduler import keys
from jobctl.scheduler.errors import Unavailable
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


class RedisBus:
    """`scheduler.executor.Bus` on Redis. A failed notification is logged, never raised: it is not the truth.

    With an `outbox` (a worker's pool processes), `flush` hands the batch to it and returns at once."""

    def __init__(self, client: redis.Redis, outbox: Outbox | None = None) -> None:
        self.redis = client
        self.outbox = outbox

    def batch(self) -> Pipeline:
        """A pipeline (no MULTI) to queue notifications and metrics on, sent by `flush`: one round trip."""
        return self.redis.pipeline(transaction=False)

    def flush(self, batch: Pipeline) -> None:
        """Send `batch` - now, or through the outbox (in the order of the flushes)."""
        if self.outbox is not None:
            self.outbox.post(batch)
            return
        try:
            batch.execute()
        except redis.RedisError as exc:
            log.warning("could not send notifications: %s", exc)

    def settle(self) -> None:
        """Return once every batch flushed so far has been sent (at once without an outbox)."""
        if self.outbox is not None and not self.outbox.settle():
            log.warning("notifications still unsent after waiting for them")

    def job_changed(self, job: JobRecord, batch: Pipeline | None = None) -> None:
        self._publish(job_message(job), batch)

    def job_deleted(self, job_id: str, project: str, batch: Pipeline | None = None) -> None:
        message: dict[str, object] = {
            "id": job_id,
            "project": project,
            "status": None,
            "progress": None,
            "step": None,
            "deleted": True,
        }
        self._publish(message, batch)

    def publish_raw(self, message: dict[str, object]) -> None:
        self._publish(message)

    def wake_scheduler(self, batch: Pipeline | None = None) -> None:
        pipe = batch if batch is not None else self.batch()
        pipe.lpush(keys.WAKE, 1)
        pipe.ltrim(keys.WAKE, 0, 9)
        if batch is None:
            self.flush(pipe)

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

    def _publish(self, message: dict[str, object], batch: Pipeline | None = None) -> None:
        if batch is not None:
            batch.publish(keys.EVENTS, json.dumps(message))
            return
        try:
            self.redis.publish(keys.EVENTS, json.dumps(message))
        except redis.RedisError as exc:
            log.warning("could not publish a job event: %s", exc)
