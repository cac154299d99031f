"""The pool process's flusher: one thread that, while an attempt runs, calls its `tick` every period.

A step's progress, lease and log lines reach the database from this thread while the step's code runs (it may
never yield). One thread per process, started on first use (so after the fork), serves every attempt in turn:
starting and joining a thread for each attempt cost a tenth of a short step's time.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)


class Flushed(Protocol):
    def tick(self) -> bool:
        """Flush what is due; False once the attempt is no longer current (no more ticks are wanted)."""


class Flusher:
    """Ticks the attached attempt every `period` seconds of its run, the first one `period` after `attach`."""

    def __init__(self, period: float) -> None:
        self.period = period
        self._cond = threading.Condition()
        self._attempt: Flushed | None = None
        self._due = 0.0
        self._pid = 0
        self._idle = False  # the thread waits for an attempt with no time limit: `attach` must wake it

    def attach(self, attempt: Flushed) -> None:
        """Start ticking `attempt` (in place of any other)."""
        with self._cond:
            if self._pid != os.getpid():  # first use in this process: its own thread
                self._pid = os.getpid()
                threading.Thread(target=self._loop, name="flusher", daemon=True).start()
            self._attempt = attempt
            self._due = time.monotonic() + self.period
            if self._idle:  # else it wakes by itself, at the latest when the previous attempt's tick was due
                self._cond.notify()

    def detach(self) -> None:
        """Stop ticking the attached attempt. Returns once no tick of it is under way."""
        with self._cond:
            self._attempt = None

    def _loop(self) -> None:
        with self._cond:  # held except while waiting: a tick runs under it, so `detach` waits for the tick
            while True:
                attempt = self._attempt
                delay = self._due - time.monotonic()
                if attempt is None or delay > 0:
                    self._idle = attempt is None
                    self._cond.wait(None if attempt is None else delay)
                    self._idle = False
                    continue
                self._due = time.monotonic() + self.period
                try:
                    if not attempt.tick():
                        self._attempt = None
                except Exception:  # a flush failure must not kill the step: the lease decides
                    log.exception("flushing step progress failed")
