"""The baseline: a plain Celery app with a Redis result backend, no jobctl in it.

Started by the benchmark as `celery -A bench.raw worker --pool=prefork --concurrency=N`; the broker/backend
URL and the queue come from `BENCH_RAW_REDIS` and `BENCH_RAW_QUEUE`.
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

URL = os.environ.get("BENCH_RAW_REDIS", "redis://127.0.0.1:6379/14")
QUEUE = os.environ.get("BENCH_RAW_QUEUE", "bench-raw")


def celery_app(name: str, broker: str, backend: str, queue: str, **conf: object) -> Celery:
    """A Celery app configured as every Celery side of the benchmark is (JSON, prefetch 1, `queue` as the
    default queue), with `conf` on top: the raw baseline and the durable peer differ only in their backend."""
    app = Celery(name, broker=broker, backend=backend, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=queue,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        **conf,
    )
    return app


# The chains' intermediate results are not read; Redis drops them after an hour.
app = celery_app("bench_raw", URL, URL, QUEUE, result_expires=3600)

_client: redis.Redis | None = None


def _redis() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(URL)
    return _client


@app.task(name="bench.noop")
def noop() -> None:
    """A no-op task: one link of the baseline's 5-task chain."""
    return None


@app.task(name="bench.hold")
def hold(key: str) -> None:
    """Record this process's pid under `key`, then wait without calling back (revoked with terminate=True)."""
    _redis().set(key, os.getpid(), ex=3600)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.01)
