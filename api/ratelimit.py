"""Invalid tokens from one address: counted across API processes through Redis, answered 429 past a limit.

The rule (docs/security.md, "Invalid tokens"):

- Every request whose bearer token is unknown counts one failure against the client's address
  (`request.client.host`: the peer, or what the ASGI server took from `X-Forwarded-For` when it trusts the proxy
  that sent it). A request without a token (no `Authorization` header, another scheme, an empty token) does not
  count: it is a client that forgot to sign in, not one trying tokens.
- Failures are counted in a fixed window of `JOBCTL_AUTH_FAILURE_WINDOW_S` seconds (60) that starts with the
  address's first failure: one Redis counter per address (`scheduler.keys.auth_failures`, under the system's
  queue), created with its expiry and incremented in one transaction, so it never outlives its window and every
  API process of the system counts into the same one.
- Once an address has more than `JOBCTL_AUTH_FAILURE_LIMIT` failures (30) in its window, each further failing
  request is answered 429 `too_many_requests` with `Retry-After` (whole seconds until the window ends, at least
  1) instead of 401. Those requests count too, so an address that keeps trying stays refused until its window
  ends; then it starts afresh.
- A request with a valid token succeeds whatever its address has sent: tokens are 256 random bits, so guessing one
  is not the threat; the limit caps the noise and tells clients to back off, and an attacker behind a shared NAT
  or proxy cannot lock the real users sharing the address out.
- The token is looked up first, and only a failed lookup is counted: a throttled address costs a lookup per
  request, as before, plus one Redis round trip.
- If Redis cannot count (unreachable, timing out, refusing), the limiter fails open: the request is answered 401
  as it would have been, and a warning is logged at most once a minute. A Redis error never becomes a 500 or
  a 503 here.
"""

from __future__ import annotations

import logging
import math
import threading
import time

import redis
from starlette.requests import Request

from jobctl.scheduler import keys
from jobctl.scheduler.errors import TooManyRequests
from jobctl.scheduler.settings import Settings

log = logging.getLogger(__name__)

#: the address counted when the ASGI server gives none (a Unix socket without proxy headers)
UNKNOWN_ADDRESS = "unknown"

#: at most one warning per this many seconds while Redis cannot count
WARN_EVERY_S = 60.0


def address_of(request: Request) -> str:
    """The client address failures are counted against: `request.client.host`, as the ASGI server gives it."""
    client = request.client
    return client.host if client is not None and client.host else UNKNOWN_ADDRESS


def count_failure(client: redis.Redis, key: str, window_s: int) -> tuple[int, int]:
    """Count one failure under `key`: (the failures in the window so far, whole seconds until it ends, >= 1).

    One MULTI/EXEC: `SET key 0 NX EX window` starts a window (a key with its expiry) unless one is running, `INCR`
    counts (keeping the expiry), `PTTL` says when the window ends. Any Redis version does this; the key can never
    exist without an expiry."""
    pipe = client.pipeline(transaction=True)
    pipe.set(key, 0, nx=True, ex=window_s)
    pipe.incr(key)
    pipe.pttl(key)
    _, count, pttl = pipe.execute()
    remaining_ms = int(pttl) if int(pttl) > 0 else 0
    return int(count), max(1, math.ceil(remaining_ms / 1000))


class _Warning:
    """Logs Redis failures at most once per `every` seconds (thread-safe: `current_user` runs on the pool)."""

    def __init__(self, every: float = WARN_EVERY_S) -> None:
        self.every = every
        self.last = -math.inf
        self.lock = threading.Lock()

    def __call__(self, exc: Exception) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last < self.every:
                return
            self.last = now
        log.warning(
            "invalid-token limit off: Redis cannot count failures (%s: %s); answering 401 without a limit",
            type(exc).__name__,
            str(exc).splitlines()[0] if str(exc) else "",
        )


warn = _Warning()


def refuse_if_throttled(client: redis.Redis, settings: Settings, address: str) -> None:
    """Count one invalid token from `address`; raise `TooManyRequests` if the address is now over the limit.

    Returns (the caller answers 401) while it is within the limit, and whenever Redis cannot count."""
    key = keys.auth_failures(settings.queue, address)
    try:
        count, retry_after = count_failure(client, key, settings.auth_failure_window_s)
    except redis.RedisError as exc:
        warn(exc)
        return
    if count > settings.auth_failure_limit:
        raise TooManyRequests(
            f"too many invalid tokens from this address; retry in {retry_after} s", retry_after=retry_after
        )
