"""Whether a Redis server answers at a URL: asked by `jobctl up` before it starts a local redis-server
(jobctl/cli/redis_server.py) and by the benchmark before it starts a private one (bench/env.py).
Imports nothing of jobctl."""

from __future__ import annotations

import redis


def redis_answers(url: str) -> bool:
    """True if a Redis server answers PING at `url`, False if none answers (connection refused or lost, or
    no answer within 1 s to connect and 2 s to reply). Raises `redis.RedisError` when one answers but
    refuses the request (e.g. it wants a password)."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    finally:
        client.close()
