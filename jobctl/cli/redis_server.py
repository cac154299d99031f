"""Redis for `jobctl up` (docs/contract.md §5.1): used where one answers at JOBCTL_REDIS_URL, else a local
`redis-server` is started as a child of `up` and stopped with it. A remote URL is never started."""

from __future__ import annotations

import os
import shutil
import time
from urllib.parse import unquote, urlsplit

from jobctl.cli.output import fail
from jobctl.cli.settings import mask_url
from jobctl.cli.supervisor import Supervisor
from jobctl.scheduler.settings import Settings

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}


def ensure_redis(settings: Settings, supervisor: Supervisor) -> None:
    """Make sure Redis answers at `settings.redis_url`, starting a local `redis-server` child if needed; exit 1
    with a message saying what to do when that is not possible."""
    url = settings.redis_url
    if redis_up(url):
        return
    parts = urlsplit(url)
    shown = mask_url(url)
    if parts.scheme != "redis" or (parts.hostname or "") not in LOCAL_HOSTS:
        fail(f"Redis does not answer at {shown}; start it, or point JOBCTL_REDIS_URL at one that runs")
    server = shutil.which("redis-server")
    if server is None:
        fail(
            f"Redis does not answer at {shown} and redis-server is not installed: install it "
            "(`apt-get install redis-server`, `brew install redis`) or point JOBCTL_REDIS_URL at a running Redis"
        )
    bind = "127.0.0.1" if parts.hostname in (None, "", "localhost") else parts.hostname
    argv = [server, "--bind", bind, "--port", str(parts.port or 6379)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    if parts.password:
        argv += ["--requirepass", unquote(parts.password)]
    supervisor.start("redis", argv, dict(os.environ), service=True)
    deadline = time.monotonic() + 10
    while not redis_up(url):
        if supervisor.failed() or time.monotonic() > deadline:
            fail(f"the redis-server started for {shown} does not answer (see its output above)")
        time.sleep(0.1)
    supervisor.say(f"started redis-server for {shown}; it stops with jobctl up")


def redis_up(url: str) -> bool:
    """Whether a Redis server answers PING at `url`. Exits 1 if one answers but refuses us (e.g. auth)."""
    # Imported here, not at the top: `jobctl --help` and the client commands do not load redis.
    import redis

    from jobctl.redis_probe import redis_answers

    try:
        return redis_answers(url)
    except redis.RedisError as exc:
        fail(f"Redis at {mask_url(url)} refuses jobctl: {exc}")
