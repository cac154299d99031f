"""Celery signal handlers, gathered in one place. A failing hook is logged and contained.

- each pool process builds its own services after fork and installs the stop-signal handler, and sends its
  queued notifications before it exits;
- the main process announces its capacity (process count) in Redis while it is alive, which is what the
  scheduler dispatches against, and watches its pool processes' leases (`workers.selffence`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from celery.signals import (
    setup_logging,
    task_prerun,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from jobctl.logs import set_work
from jobctl.scheduler import keys
from jobctl.workers import runners, runtime, selffence
from jobctl.workers.services import Services

log = logging.getLogger(__name__)

_beat_stop = threading.Event()
_watchdogs: list[selffence.Watchdog] = []


def install(app: Celery, build: Callable[[], Services]) -> None:
    """Connect the handlers for `app` (called by `workers.entry.run_worker`); each pool process calls `build`
    once, after fork, for its own services."""
    settings = app.conf.jobctl_settings

    @worker_process_init.connect(weak=False)
    def _init_pool_process(**_: Any) -> None:
        runtime.init_process(build())

    @worker_process_shutdown.connect(weak=False)
    def _close_pool_process(**_: Any) -> None:
        runtime.close_process()

    @setup_logging.connect(weak=False)
    def _keep_our_logging(**_: Any) -> None:
        """Connected, so Celery leaves logging alone: `workers.entry` configured it already (`jobctl.logs`)."""

    @task_prerun.connect(weak=False)
    def _tag_lines(task_id: str = "", task: Any = None, args: Any = (), **_: Any) -> None:
        if args:  # step and cleanup tasks take the job id first
            set_work(str(args[0]), args[1] if len(args) > 1 and isinstance(args[1], int) else None)

    @worker_ready.connect(weak=False)
    def _announce(sender: Any = None, **_: Any) -> None:
        runners.sweep()  # what killed workers on this machine left behind
        _watchdogs.append(selffence.watch(settings))
        hostname = sender.hostname
        concurrency = sender.controller.concurrency
        thread = threading.Thread(
            target=_beat, args=(settings, hostname, concurrency), daemon=True, name="jobctl-capacity"
        )
        thread.start()

    @worker_shutdown.connect(weak=False)
    def _withdraw(sender: Any = None, **_: Any) -> None:
        _beat_stop.set()
        for watchdog in _watchdogs:
            watchdog.stop()
        runners.remove(os.getpid())


def _beat(settings: Any, hostname: str, concurrency: int) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=5)
    key = keys.worker(settings.queue, hostname)
    ttl = max(1, round(settings.worker_ttl_s))
    first = True
    while not _beat_stop.is_set():
        try:
            client.set(key, concurrency, ex=ttl)
            if first:  # new capacity: ask for a dispatch pass now
                client.lpush(keys.WAKE, 1)
                first = False
        except redis.RedisError as exc:
            log.warning("could not announce worker %s: %s", hostname, exc)
        _beat_stop.wait(settings.worker_ttl_s / 3)
    with contextlib.suppress(redis.RedisError):
        client.delete(key)
