"""A durable peer: Celery with a Redis broker and its database result backend on PostgreSQL
(`result_backend="db+postgresql+psycopg://..."`, `result_extended=True`), no jobctl in it.

Started by the benchmark as `celery -A jobctl.bench.peer_celery worker --pool=prefork --concurrency=N`; the broker
URL, the backend URL and the queue come from `BENCH_PEER_BROKER`, `BENCH_PEER_BACKEND` and `BENCH_PEER_QUEUE`.
"""

from __future__ import annotations

import os

from jobctl.bench.raw import celery_app

BROKER = os.environ.get("BENCH_PEER_BROKER", "redis://127.0.0.1:6379/12")
BACKEND = os.environ.get("BENCH_PEER_BACKEND", "db+postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
QUEUE = os.environ.get("BENCH_PEER_QUEUE", "bench-peer")

app = celery_app("bench_peer_celery", BROKER, BACKEND, QUEUE, result_extended=True)


@app.task(name="bench.peer.noop")
def noop() -> None:
    """A no-op task: one link of the 5-task chain."""
    return None
