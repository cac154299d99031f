"""What a step's code sees: `StepContext` - progress, log, checkpoint, resources, stop, subprocesses.

Everything here is cheap to call from a hot loop: `progress()` and `log()` only store values; a flusher
thread (`workers.runtime`) writes them to the database and Redis a few times a second, fenced by the
attempt's token. `progress` is a C call (a one-slot deque's `append`) until the attempt is stopped, when it
becomes a function that raises `StepStopped`: a loop reporting progress stops at its next call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import ExitStack, suppress
from typing import Any

import redis

from jobctl.scheduler import keys


class StepStopped(BaseException):
    """Raised inside a step's code when its attempt was paused, discarded, restarted or lost."""


class StepContext:
    """The running attempt of one step, as its code sees it."""

    def __init__(
        self,
        *,
        job_id: str,
        step_index: int,
        step_name: str,
        step_count: int,
        attempt: int,
        fence: str,
        params: dict[str, Any],
        target: tuple[str, str, str | None] | None,
        checkpoint: dict[str, Any],
        outputs: dict[str, Any],
        redis_client: redis.Redis,
        save_checkpoint: Any,
    ) -> None:
        self.job_id = job_id
        self.step_index = step_index
        self.step_name = step_name
        self.step_count = step_count
        self.attempt = attempt
        self.fence = fence
        self.params = params
        self.target = target
        #: Survives resume once saved with `save_checkpoint()`; cleared by restart.
        self.checkpoint: dict[str, Any] = checkpoint
        #: What the finished steps before this one returned, by step name.
        self.outputs = outputs
        #: Resources entered here are released on every exit path: success, error and stop.
        self.resources = ExitStack()
        self._redis = redis_client
        self._save_checkpoint = save_checkpoint
        self._reported: deque[float] = deque((0.0,), maxlen=1)
        #: `progress(percent)`: report the step's progress (0-100). Meant for hot loops (it only stores the
        #: value); raises `StepStopped` once the attempt is stopped. Look it up on the context at each call:
        #: a stop replaces it (a copy kept in a variable still stores, and the stop signal still interrupts).
        self.progress: Callable[[float], None] = self._reported.append
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._groups: set[int] = set()

    # -- reporting --------------------------------------------------------------------------------------

    def log(self, line: str) -> None:
        """Append a line to the step's log (stored with the step, shown by the API)."""
        with self._lock:
            self._lines.append(f"{time.strftime('%H:%M:%S')} {line}")

    def save_checkpoint(self) -> None:
        """Store `checkpoint` now, so that a resumed attempt starts from it. No-op once stopped."""
        self._save_checkpoint(dict(self.checkpoint))

    # -- stopping -----------------------------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def check_stop(self) -> None:
        """Raise `StepStopped` if the attempt was stopped (for loops that report no progress)."""
        if self._stop.is_set():
            raise StepStopped()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking up (with `StepStopped`) as soon as the attempt is stopped."""
        if self._stop.wait(seconds):
            raise StepStopped()

    # -- subprocesses --------------------------------------------------------------------------------------

    def spawn(self, args: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start a command in its own process group, killed (whole group) when the attempt ends or stops.

        The group is registered with the worker (Redis), so a stop kills it even if this process is killed
        first.
        """
        proc: subprocess.Popen[Any] = subprocess.Popen(args, start_new_session=True, **kwargs)
        self._register_group(proc.pid)
        return proc

    def run(self, args: Sequence[str], *, poll: float = 0.05, **kwargs: Any) -> int:
        """Run a command (see `spawn`) and wait for it, staying stoppable; return its exit code."""
        proc = self.spawn(args, **kwargs)
        try:
            while True:
                try:
                    return proc.wait(timeout=poll)
                except subprocess.TimeoutExpired:
                    self.check_stop()
        finally:
            if proc.poll() is None:
                _kill_group(proc.pid)
                proc.wait()
            self._forget_group(proc.pid)

    def _register_group(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)
        key = keys.pgids(self.fence)
        pipe = self._redis.pipeline()
        pipe.sadd(key, pgid)
        pipe.expire(key, 24 * 3600)
        pipe.execute()

    def _forget_group(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)
        self._redis.srem(keys.pgids(self.fence), pgid)

    def kill_children(self) -> None:
        """Kill every process group this attempt started that is still alive."""
        with self._lock:
            groups, self._groups = set(self._groups), set()
        for pgid in groups:
            _kill_group(pgid)
        if groups:
            self._redis.delete(keys.pgids(self.fence))

    # -- for the runtime ----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()
        self.progress = _stopped

    def take_reports(self) -> tuple[float, list[str]]:
        with self._lock:
            lines, self._lines = self._lines, []
        return self._reported[-1], lines


def _stopped(percent: float) -> None:
    """`StepContext.progress` once the attempt is stopped."""
    raise StepStopped()


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
