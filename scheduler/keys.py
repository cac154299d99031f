"""Every Redis key and channel jobctl uses, named in one place.

Layout (all under the `jobctl:` prefix, in the database of JOBCTL_REDIS_URL):
- `jobctl:events`            pub/sub channel: one JSON message per job change (`{id, project, status, progress, step}`)
- `jobctl:wake`              list: a push asks the schedulers for a dispatch pass now; they BLPOP it
- `jobctl:worker:<queue>:<host>` string, with a TTL: a live worker's process count (its capacity)
- `jobctl:pgids:<fence>`     set, with a TTL: process groups started by a step attempt, killed when it stops
- `jobctl:stop:<fence>`      string, with a TTL: when the attempt was told to stop (epoch seconds), for metrics
- `jobctl:unwound:<fence>`   string, with a TTL: a stopped attempt has unwound (or was killed); cleanup waits for it
- `jobctl:metrics:<queue>:...` histograms and counters, see `scheduler.metrics`
- `jobctl:authfail:<queue>:<address>` counter, with a TTL: requests with an invalid token from one client
  address in the current window, see `api.ratelimit`
Celery's own keys (queues, unacked, pidbox) are Celery's business and live beside these.
"""

EVENTS = "jobctl:events"
WAKE = "jobctl:wake"
WORKER_PREFIX = "jobctl:worker:"


def worker(queue: str, hostname: str) -> str:
    return f"{WORKER_PREFIX}{queue}:{hostname}"


def workers_of(queue: str) -> str:
    """The SCAN pattern of the live workers consuming `queue`."""
    return f"{WORKER_PREFIX}{queue}:*"


def pgids(fence: str) -> str:
    return f"jobctl:pgids:{fence}"


def stop_requested(fence: str) -> str:
    return f"jobctl:stop:{fence}"


def unwound(fence: str) -> str:
    return f"jobctl:unwound:{fence}"


def auth_failures(queue: str, address: str) -> str:
    """The counter of invalid tokens sent from `address` in the current window (per system, hence per queue)."""
    return f"jobctl:authfail:{queue}:{address}"
