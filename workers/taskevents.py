"""Celery task events for the attempts a pool process runs inline (`workers.runtime.run_attempt`).

Such an attempt arrives without a Celery message of its own, so no worker announces it; this module sends
the events Celery would have sent (`task-received`, `task-started`, then `task-succeeded`, `task-failed` or
`task-revoked`), under the attempt's fence as the task id, so Flower shows every step attempt as a task.
They are buffered and published together (one `task.multi` message: most of a message's cost is the same for
one event or hundreds) when the chain of inline attempts ends, when `BUFFER` are pending, or - from the
flusher's tick while a step runs - when the oldest has waited `HOLD_S`. Events are notifications: a failure to
send one is logged, never raised.

The flusher ticks only between `Flusher.attach` and `detach`, while no event is sent: one thread at a time
uses a dispatcher.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from jobctl.scheduler.records import Dispatch
from jobctl.scheduler.settings import Settings
from jobctl.workers.celery_app import get_app

log = logging.getLogger(__name__)

BUFFER = 500
HOLD_S = 1.0

_dispatchers: dict[str, Any] = {}
_oldest: dict[str, float] = {}  # by worker: when the oldest event not published yet was sent


def _dispatcher(settings: Settings, hostname: str) -> Any:
    if hostname not in _dispatchers:
        app = get_app(settings)
        _dispatchers[hostname] = app.events.Dispatcher(
            app.connection_for_write(), hostname=hostname, enabled=True, buffer_group={"task"}, buffer_limit=BUFFER
        )
    return _dispatchers[hostname]


def send(settings: Settings, hostname: str, kind: str, fence: str, **fields: Any) -> None:
    """Send the task event `task-<kind>` for attempt `fence` from worker `hostname`."""
    _oldest.setdefault(hostname, time.monotonic())
    try:
        _dispatcher(settings, hostname).send(f"task-{kind}", uuid=fence, **fields)
    except Exception as exc:
        log.warning("task event %s for %s not sent: %s", kind, fence, exc)
        _dispatchers.pop(hostname, None)


def flush(hostname: str) -> None:
    """Publish the buffered events (in one message); called when a chain of inline attempts ends."""
    _oldest.pop(hostname, None)
    dispatcher = _dispatchers.get(hostname)
    if dispatcher is None:
        return
    try:
        dispatcher.flush()
    except Exception as exc:
        log.warning("task events not sent: %s", exc)
        _dispatchers.pop(hostname, None)


def flush_held(hostname: str) -> None:
    """`flush` if the oldest buffered event has waited `HOLD_S` (a long step's start shows up in Flower)."""
    oldest = _oldest.get(hostname)
    if oldest is not None and time.monotonic() - oldest >= HOLD_S:
        flush(hostname)


def started(settings: Settings, hostname: str, dispatch: Dispatch, task_name: str) -> None:
    """The attempt was received and started in this process."""
    args = repr([dispatch.job_id, dispatch.step_index, dispatch.step_name])
    send(settings, hostname, "received", dispatch.fence, name=task_name, args=args, kwargs="{}", retries=0)
    send(settings, hostname, "started", dispatch.fence)


def ended(settings: Settings, hostname: str, fence: str, what: str, runtime_s: float) -> None:
    """The attempt ended; `what` is `workers.runtime`'s account of it ('finished', 'failed: ...', 'stopped')."""
    if what == "finished":
        send(settings, hostname, "succeeded", fence, result=repr(what), runtime=runtime_s)
    elif what.startswith("failed"):
        send(settings, hostname, "failed", fence, exception=what.removeprefix("failed: "), traceback="")
    else:
        send(settings, hostname, "revoked", fence, terminated=True, signum="SIGUSR2", expired=False)
