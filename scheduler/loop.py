"""The scheduler: the loop that dispatches PENDING jobs, recovers lost attempts, checks targets and purges old
jobs. What it dispatches and how is `Dispatcher`'s; what a lost attempt becomes is `Operations.worker_lost`'s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from jobctl.scheduler.executor import Bus
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import jobs, leases
from jobctl.scheduler.store.common import utcnow

log = logging.getLogger(__name__)

#: After a pass that found every slot taken, the loop waits this long before the next: the wake-ups of a burst
#: of submissions (one each) then cost one pass, not one each, while a freed slot is filled this much later.
FULL_PAUSE_S = 0.02

RetryOnLost = Callable[[str, int], bool]  # (job type, attempt that was lost) -> retry?


class Scheduler:
    def __init__(
        self, ops: Operations, bus: Bus, settings: Settings, retry_on_lost: RetryOnLost, name: str = "scheduler"
    ) -> None:
        self.name = name  # the actor of the events it writes: which scheduler dispatched (or retried) a job
        self.ops = ops
        self.db = ops.db
        self.bus = bus
        self.settings = settings
        self.retry_on_lost = retry_on_lost
        self.stopping = threading.Event()
        self._full = False  # the last dispatch pass found every slot taken

    def dispatch(self) -> int:
        """One dispatch pass. Returns how many jobs left PENDING (dispatched or auto-discarded)."""
        done = self.ops.dispatcher.dispatch_pass(self.name)
        self._full = done.full
        return done.moved

    def recover(self) -> int:
        """Handle every attempt whose lease ran out. Returns how many."""
        with self.db.read() as s:
            expired = leases.expired_leases(s, utcnow())
        for lease in expired:
            self.ops.worker_lost(lease, retry=self.retry_on_lost(lease.job_type, lease.attempt), actor=self.name)
        return len(expired)

    def purge(self) -> int:
        """Delete final jobs older than the retention period."""
        before = utcnow() - timedelta(days=self.settings.retention_days)
        with self.db.write() as s:
            return jobs.purge_final_jobs(s, before)

    def run(self) -> None:
        """Loop until `stopping` is set: dispatch on every wake-up or tick (passes that keep finding work go on
        for at most a tick, then the chores below get their turn; after a pass that found no free slot, not
        before `FULL_PAUSE_S`); recover expired leases once a tick (a burst of submissions wakes the loop for
        each, and leases are counted in seconds); the rest of the periodic chores less often."""
        last_recover = last_targets = last_purge = 0.0
        backoff = 0.0
        while not self.stopping.is_set():
            try:
                busy_until = time.monotonic() + self.settings.scheduler_tick_s
                more = bool(self.dispatch())
                while more and not self.stopping.is_set() and time.monotonic() < busy_until:
                    more = bool(self.dispatch())  # a full pass may have left work: go again, for up to a tick
                now = time.monotonic()
                if now - last_recover >= self.settings.scheduler_tick_s:  # once a tick, not at every wake-up
                    self.recover()
                    last_recover = now
                if now - last_targets >= self.settings.target_check_s:
                    self.ops.check_targets()
                    last_targets = now
                if now - last_purge >= 600:
                    self.purge()
                    last_purge = now
                backoff = 0.0
            except Exception:
                backoff = min(5.0, backoff * 2 or 0.5)
                log.exception("scheduler pass failed; retrying in %.1fs", backoff)
                self.stopping.wait(backoff)
                continue
            if not more:  # work left over goes on after the chores, without waiting
                if self._full:
                    self.stopping.wait(FULL_PAUSE_S)
                self.bus.wait_for_wake(self.settings.scheduler_tick_s)
