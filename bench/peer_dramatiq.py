"""A context peer, not durable: Dramatiq with a Redis broker and the Results middleware on the same Redis database
(the URL from `BENCH_DRAMATIQ_BROKER`). A job is a `dramatiq.pipeline` of 5 messages of one no-op actor, the way
Dramatiq's docs compose actors: each link is enqueued by the worker when the one before it succeeded, and every
link stores its result. The state lives in Redis only.

Started by the benchmark as `dramatiq jobctl.bench.peer_dramatiq --processes N --threads 8` (8 is its default).
"""

from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

LINKS = 5
BROKER_URL = os.environ.get("BENCH_DRAMATIQ_BROKER", "redis://127.0.0.1:6379/11")

broker = RedisBroker(url=BROKER_URL)
backend = RedisBackend(url=BROKER_URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0, pipe_ignore=True)
def noop() -> None:
    """One link of a chain; `pipe_ignore` keeps the previous link's result out of its arguments."""
    return None


def chain() -> dramatiq.pipeline:
    """A job: `LINKS` no-op links in a pipeline, not sent yet (`run()` sends the first)."""
    return dramatiq.pipeline(noop.message() for _ in range(LINKS))


def result_key(pipe: dramatiq.pipeline) -> str:
    """The Redis key where the pipeline's last link stores its result."""
    return backend.build_message_key(pipe.messages[-1])


def heartbeats_key() -> str:
    """The sorted set where every broker that talks to this Redis database (each worker process) beats."""
    return f"{broker.namespace}:__heartbeats__"
