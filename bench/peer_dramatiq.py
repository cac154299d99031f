"""A context peer: Dramatiq, with a Redis broker and the Results middleware on the same Redis database (from
`BENCH_DRAMATIQ_REDIS`). A job is a `dramatiq.pipeline` of 5 no-op messages; the last one stores its result.
Fast, and not durable: the state lives in Redis only.

Started by the benchmark as `dramatiq jobctl.bench.peer_dramatiq --processes N --threads 8` (8 is its default).
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

LINKS = 5
REDIS_URL = os.environ.get("BENCH_DRAMATIQ_REDIS", "redis://127.0.0.1:6379/11")

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0)
def noop(*_previous: Any) -> int:
    """One link; a pipeline hands it the previous link's result, which it ignores."""
    return 1


def chain() -> dramatiq.pipeline:
    """A job: `LINKS` no-op links, each sent when the one before it finished."""
    return dramatiq.pipeline(noop.message() for _ in range(LINKS))
