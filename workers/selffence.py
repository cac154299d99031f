"""Self-fencing: a worker that cannot renew the lease of a running attempt stops that attempt itself, before
anyone may take it over (the timing rule and its margins: docs/reliability.md, "Several hosts").

Two halves, on one machine, sharing the pool process's record (`workers.runners`) and the machine's monotonic
clock (`time.monotonic`, one clock for every process):

- the pool process (`LeaseClock`): while the step's code runs, the record holds the instant the attempt must
  be stopped at - the moment its last successful renewal was sent, plus the deadline - armed again after each
  renewal and disarmed once the code has returned, raised or unwound;
- the worker's main process (`Watchdog`): a thread that needs no network. At that instant it sends the pool
  process the stop signal, whose handler confirms with its own clock (`LeaseClock.overdue`) and interrupts the
  step as a pause does (docs/contract.md §2.3); if the code still runs `stop_grace_s` later, it kills the
  pool process and its descendants, as a stop's escalation does (`workers.control`). Celery replaces the
  process.

Whatever the attempt writes afterwards is refused by its fencing token once the scheduler has taken it over;
until then its lease, not renewed any more, runs out, and the scheduler recovers it like a lost worker's.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time

from jobctl.scheduler.settings import Settings
from jobctl.workers import procs, runners

log = logging.getLogger(__name__)

#: How often the main process looks at its pool processes' records: the stop signal is at most this late, and so
#: is the kill after the grace (docs/reliability.md counts both).
WATCH_S = 0.1
STOP_SIGNAL = signal.SIGUSR2


class LeaseClock:
    """The pool process's account of one attempt's lease while its code runs. Thread-safe: the flusher thread
    reports renewals, the main thread arms and disarms, the stop-signal handler asks `overdue`.

    Promise: between `arm` and `disarm` the record is armed with `leased_at + deadline_s`, where `leased_at`
    is the monotonic time the last successful renewal (or the start) was sent; the lease that renewal wrote
    ends `lease_s` after a wall-clock reading taken no earlier."""

    def __init__(self, registration: runners.Registration, deadline_s: float, leased_at: float) -> None:
        self.registration = registration
        self.deadline_s = deadline_s
        self.leased_at = leased_at
        self.fenced_after: float | None = None  # seconds without renewal when the stop was decided, once it was
        self.before_start = False  # the stop was decided before the code started: it never ran
        self._armed = False
        self._lock = threading.Lock()

    def arm(self) -> bool:
        """The step's code is about to run. True if the deadline has passed already (the answer that leased the
        attempt was held up): the code must not start at all."""
        with self._lock:
            self._armed = True
            self.registration.arm(self.leased_at + self.deadline_s)
        self.before_start = self.overdue()
        return self.before_start

    def renewed(self, asked_at: float) -> None:
        """A renewal sent at monotonic `asked_at` succeeded."""
        with self._lock:
            if asked_at <= self.leased_at:
                return
            self.leased_at = asked_at
            if self._armed and self.fenced_after is None:
                self.registration.arm(asked_at + self.deadline_s)

    def disarm(self) -> None:
        """The step's code no longer runs (returned, raised or unwound): there is nothing left to stop."""
        with self._lock:
            self._armed = False
            self.registration.disarm()

    def unrenewed_s(self) -> float:
        """Seconds since the last successful renewal was sent."""
        return time.monotonic() - self.leased_at

    def overdue(self) -> bool:
        """Whether the code runs and its lease went unrenewed past the deadline: the attempt is then self-fenced
        (for good: a renewal landing later does not undo it). No lock: called by the stop-signal handler, which
        may have interrupted a holder."""
        if self.fenced_after is not None:
            return True
        unrenewed = self.unrenewed_s()
        if not self._armed or unrenewed < self.deadline_s:
            return False
        self.fenced_after = unrenewed
        return True


class Watchdog:
    """The worker's main process's watch over its pool processes' records (`runners.armed`): the stop signal at
    the armed instant, the kill `grace_s` after it if the attempt is still armed. Needs no network."""

    def __init__(self, main_pid: int, deadline_s: float, grace_s: float, period_s: float = WATCH_S) -> None:
        self.main_pid = main_pid
        self.deadline_s = deadline_s
        self.grace_s = grace_s
        self.period_s = period_s
        self._signalled: dict[tuple[int, str], float] = {}  # (pool process, attempt) -> when it was signalled
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="jobctl-self-fence", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                self.check(time.monotonic())
            except Exception:  # the watch must go on
                log.exception("self-fence watch failed")

    def check(self, now: float) -> None:
        """One look at the records at monotonic time `now`: signal what is due, kill what outlived the grace."""
        seen = set()
        for pid, fence, due in runners.armed(self.main_pid):
            if not _child_of(pid, self.main_pid):  # a record left by a dead pool process (its pid may be reused)
                runners.forget(self.main_pid, pid)
                continue
            key = (pid, fence)
            seen.add(key)
            if now < due:  # renewed in time after all (a renewal that landed just then)
                self._signalled.pop(key, None)
                continue
            unrenewed = now - due + self.deadline_s
            signalled = self._signalled.get(key)
            if signalled is None:
                self._signalled[key] = now
                log.warning(
                    "self-fence: step attempt %s (pool process %s): lease not renewed for %.3f s; stopping it",
                    fence,
                    pid,
                    unrenewed,
                )
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, STOP_SIGNAL)
            elif now >= signalled + self.grace_s:
                log.warning(
                    "self-fence: step attempt %s did not unwind within %.3f s; killing pool process %s "
                    "(lease not renewed for %.3f s)",
                    fence,
                    self.grace_s,
                    pid,
                    unrenewed,
                )
                procs.kill_descendants(pid)  # before the pool process: once it dies they are no longer its own
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                runners.forget(self.main_pid, pid)
                del self._signalled[key]
        for key in set(self._signalled) - seen:
            del self._signalled[key]


def _child_of(pid: int, parent: int) -> bool:
    """Whether `pid` is a live child of `parent` (True where `/proc` cannot tell)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # after the command's name, which may hold anything
    except FileNotFoundError:
        return not os.path.isdir("/proc/self")
    except OSError:
        return False
    return fields[0] != b"Z" and int(fields[1]) == parent


def latest_stop_s(settings: Settings) -> float:
    """How long after its last successful renewal was sent a self-fenced attempt's code is gone at the latest:
    the deadline, the grace and two watch periods (docs/reliability.md)."""
    return settings.self_fence_deadline_s + settings.stop_grace_s + 2 * WATCH_S


def watch(settings: Settings) -> Watchdog:
    """Start the main process's watchdog; warns if these settings let a self-fenced attempt outlive its lease."""
    if latest_stop_s(settings) >= settings.lease_s:
        log.warning(
            "self-fencing may end a step after its lease ran out (deadline %.2f s + grace %.2f s + %.2f s >= lease "
            "%.2f s): another worker could run it meanwhile; see docs/reliability.md",
            settings.self_fence_deadline_s,
            settings.stop_grace_s,
            2 * WATCH_S,
            settings.lease_s,
        )
    watchdog = Watchdog(os.getpid(), settings.self_fence_deadline_s, settings.stop_grace_s)
    watchdog.start()
    return watchdog
