"""The `jobctl_stop` remote-control command, run in each worker's main process.

It revokes the task (so a queued copy is dropped and Flower shows it REVOKED), sends the stop signal to the
pool process running it, and - if that process still runs the task after the grace period - SIGKILLs it and
every process group the step registered. Celery replaces a killed pool process by itself.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from typing import Any

import redis
from celery.platforms import signals
from celery.worker import state as worker_state
from celery.worker.control import control_command, ok

from jobctl.scheduler import keys
from jobctl.scheduler.metrics import Metrics
from jobctl.workers import procs, runners

log = logging.getLogger(__name__)

STOP_SIGNAL = "SIGUSR2"


@control_command(args=[("task_id", str), ("grace", float)], signature="<task_id> <grace>")
def jobctl_stop(state: Any, task_id: str, grace: float = 1.0, **kwargs: Any) -> dict[str, str]:
    """Stop the step attempt `task_id`: interrupt now, kill after `grace` seconds.

    Deliberately not Celery's `revoke` command: that one reads and writes the result backend synchronously
    inside the worker's event loop for every call; jobctl keeps no results there (the database is the
    truth). Marking the id revoked drops a queued copy; `Request.terminate` signals the pool process and
    announces `task-revoked` (what Flower shows)."""
    worker_state.revoked.add(task_id)
    pid = None
    for request in list(worker_state.active_requests):
        if request.id == task_id and request.worker_pid:
            pid = int(request.worker_pid)
            request.terminate(state.consumer.pool, signal=signals.signum(STOP_SIGNAL))
    settings = state.app.conf.jobctl_settings
    if pid is None:
        pid = _inline_attempt_pid(task_id)
        if pid is None:
            return ok(f"{task_id} revoked")
        # An attempt that a pool process runs right after the job's previous step, inside that step's task
        # (`workers.runtime.run_attempt`): no request carries its id. Its handler checks the stop is its own.
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signals.signum(STOP_SIGNAL))
    timer = threading.Timer(grace, _escalate, args=(task_id, pid, settings.redis_url, settings.queue))
    timer.daemon = True
    timer.start()
    return ok(f"{task_id} stopping in process {pid}")


def _inline_attempt_pid(task_id: str) -> int | None:
    """The pool process of this worker running attempt `task_id` outside a request of its own: the one, among
    the processes running a request of this worker now, whose registered attempt is `task_id`."""
    busy = sorted({int(r.worker_pid) for r in list(worker_state.active_requests) if r.worker_pid})
    return next((pid for pid in busy if runners.running(os.getpid(), pid) == task_id), None)


def _escalate(task_id: str, pid: int, redis_url: str, settings_queue: str) -> None:
    """Kill what is left of a stopped attempt: its pool process if the attempt still runs there, then every
    process group it started. A pool process registers the attempt it runs (`workers.runners`; cleared once
    stopped or done): Celery forgets a terminated request at once, so its own bookkeeping cannot tell."""
    try:
        client = redis.Redis.from_url(redis_url, socket_timeout=5)
        if runners.running(os.getpid(), pid) == task_id:
            log.warning("step %s ignored the stop; killing pool process %s", task_id, pid)
            procs.kill_descendants(pid)  # before the pool process: once it dies they are no longer its own
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            runners.forget(os.getpid(), pid)
            client.set(keys.unwound(task_id), "killed", ex=3600)  # its job's cleanup may run now
            requested = client.get(keys.stop_requested(task_id))
            if requested is not None:
                Metrics(client, settings_queue).observe(
                    "stop_latency_seconds", max(0.0, time.time() - float(requested))
                )
        for pgid in client.smembers(keys.pgids(task_id)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pgid), signal.SIGKILL)
        client.delete(keys.pgids(task_id))
        client.close()
    except redis.RedisError as exc:
        log.warning("could not finish stopping %s: %s", task_id, exc)
