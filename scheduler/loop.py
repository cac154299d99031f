"""The scheduler: dispatch PENDING jobs, recover lost attempts, check targets, purge old jobs.

One pass of `Scheduler.dispatch` runs in one write transaction under a dispatch lock (a PostgreSQL advisory
lock; SQLite's write lock), so several schedulers can run at once and no job is dispatched twice: the
guarded PENDING -> RUNNING transition is the claim.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import redis
from sqlalchemy.orm import Session

from jobctl.scheduler import handover, store
from jobctl.scheduler.bus import RedisBus
from jobctl.scheduler.operations import Done, Operations
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import Transition

log = logging.getLogger(__name__)

#: (job id, project id, priority, created_at, its target as (kind, name, exclusive), or None)
Candidate = tuple[str, int, int, datetime, tuple[str, str, bool] | None]

#: After a pass that found every slot taken, the loop waits this long before the next: the wake-ups of a burst
#: of submissions (one each) then cost one pass, not one each, while a freed slot is filled this much later.
FULL_PAUSE_S = 0.02


def fair_order(candidates: Sequence[Candidate], slots: int) -> list[str]:
    """Pick up to `slots` jobs: round-robin over projects, each round ordered by priority then age.

    Within a project, jobs go by (priority, age). Every project with a candidate gets a slot before any
    project gets a second one, so a large backlog never starves a small project. Two jobs on one target where
    either is exclusive are never both picked: the first in that order is.
    """
    queues: dict[int, list[Candidate]] = {}
    alone: set[tuple[int, str, str]] = set()  # targets an exclusive candidate takes
    shared: set[tuple[int, str, str]] = set()  # targets any candidate takes
    for cand in sorted(candidates, key=lambda c: (c[2], c[3], c[0])):
        if cand[4] is not None:
            kind, name, exclusive = cand[4]
            target = (cand[1], kind, name)
            if target in alone or (exclusive and target in shared):
                continue
            shared.add(target)
            if exclusive:
                alone.add(target)
        queues.setdefault(cand[1], []).append(cand)
    chosen: list[str] = []
    while len(chosen) < slots and queues:
        heads = sorted(queues.items(), key=lambda item: (item[1][0][2], item[1][0][3], item[1][0][0]))
        for project_id, queue in heads:
            if len(chosen) >= slots:
                break
            chosen.append(queue.pop(0)[0])
            if not queue:
                del queues[project_id]
    return chosen


RetryOnLost = Callable[[str, int], bool]  # (job type, attempt that was lost) -> retry?


class Scheduler:
    def __init__(
        self, ops: Operations, bus: RedisBus, settings: Settings, retry_on_lost: RetryOnLost, name: str = "scheduler"
    ) -> None:
        self.name = name  # the actor of the events it writes: which scheduler dispatched (or retried) a job
        self.ops = ops
        self.db = ops.db
        self.bus = bus
        self.settings = settings
        self.retry_on_lost = retry_on_lost
        self.stopping = threading.Event()
        self._capacity_read = (-float("inf"), 0)  # (monotonic time, value) of the last capacity read
        self._full = False  # the last dispatch pass found every slot taken

    def dispatch(self) -> int:
        """One dispatch pass. Returns how many jobs left PENDING (dispatched or auto-discarded)."""
        capacity = self.bus.capacity(self.settings.queue)
        with self.db.read() as s:  # every slot taken (the common case in a burst): no write transaction, no lock
            self._full = self._slots(capacity, store.project_loads(s)) <= 0
            if self._full:
                return 0
        with self.db.write() as s:
            chosen = self._choose(s, capacity, None)
            done = self.ops.dispatch(chosen, s, self.name) if chosen else []
        self.ops.announce(done)
        return len(done)

    def take(self, worker: str) -> handover.Dispatched | None:
        """A dispatch pass for one job whose step the caller - a worker process whose finished job freed its
        slot - runs itself: the same lock, limits, capacity and fair order as `dispatch`, and the step started
        for `worker` in the pass's transaction (`handover.dispatch_and_start`), announced once it committed.
        None if no job may start (one whose target moved is discarded, as `dispatch` would)."""
        capacity = self._capacity(max_age=1.0)  # the caller is a live slot: a second-old figure will do
        with self.db.write() as s:
            taken, done = self._take(s, capacity, worker)
        self.ops.announce(done)
        return taken

    def finish_and_take(
        self, job_id: str, index: int, fence: str, output: dict[str, Any] | None, worker: str
    ) -> tuple[Transition, handover.Dispatched | None] | None:
        """Finish the job's last step `index` (attempt `fence`) with `output`, and with it the job
        (`handover.finish_job`, which takes the dispatch lock in the same round trip), then `take` for `worker`
        - in one transaction. None, with nothing written, if the attempt is no longer current or the step is not
        the job's last (`Operations.record_outcome` then decides). Should the take fail, the transaction is
        rolled back and the finish alone committed in another (no savepoint: two round trips per job saved for a
        rare failure); the schedulers are then woken to dispatch to the slot."""
        try:
            capacity = self._capacity(max_age=1.0)
        except redis.RedisError as exc:
            log.warning("could not read the workers' capacity (%s); not taking the next job", exc)
            capacity = 0
        finished: Transition | None = None
        try:
            with self.db.write_core() as conn, Session(bind=conn) as s:  # the take's general path needs a session
                finished = handover.finish_job(conn, job_id, index, fence, output, lock_dispatch=True)
                if finished is None:
                    return None
                taken, done = self._take(s, capacity, worker, locked=True)
        except Exception as exc:
            if finished is None:  # the finish failed, not the take: the caller decides (retry, general path)
                raise
            log.warning("could not take the next job (%s); the scheduler will dispatch it", exc)
            with self.db.write_core() as conn:
                finished = handover.finish_job(conn, job_id, index, fence, output)
            if finished is None:
                return None
            self.ops.announce([(finished, finished.job)], wake_for_finished=True)
            return finished, None
        self.ops.announce([(finished, finished.job), *done], wake_for_finished=False)
        return finished, taken

    def _take(
        self, s: Session, capacity: int, worker: str, *, locked: bool = False
    ) -> tuple[handover.Dispatched | None, list[Done]]:
        """In the caller's transaction: choose one job and start its step for `worker`; what to announce
        (`locked`: the caller's transaction holds the dispatch lock already)."""
        chosen = self._choose(s, capacity, 1, locked=locked)
        if not chosen:
            return None, []
        taken = handover.dispatch_and_start(
            s.connection(),
            chosen[0],
            worker,
            self.name,
            lease_s=self.settings.lease_s,
            check_target=self.ops.targets.check,
        )
        if taken is None:  # its target moved (or it changed since it was chosen): the general path
            return None, self.ops.dispatch(chosen, s, self.name)
        return taken, [(taken.transition, taken.job)]

    def _capacity(self, max_age: float) -> int:
        """The live workers' process count (`bus.capacity`), read again if the last read is older than `max_age`
        seconds (a worker's registration lives for `worker_ttl_s`: a joining or dying worker is seen as late)."""
        read_at, value = self._capacity_read
        if time.monotonic() - read_at > max_age:
            value = self.bus.capacity(self.settings.queue)
            self._capacity_read = (time.monotonic(), value)
        return value

    def _choose(self, s: Session, capacity: int, at_most: int | None, *, locked: bool = False) -> list[str]:
        """Under the dispatch lock (taken here unless `locked`): the PENDING jobs that may start now, at most
        `at_most`, in fair order."""
        if not locked:
            store.lock_dispatch(s)
        # Starting one job, each project's first is all the choice needs: read with the loads.
        loads, heads = store.project_loads_and_heads(s) if at_most == 1 else (store.project_loads(s), None)
        slots = self._slots(capacity, loads)
        if at_most is not None:
            slots = min(slots, at_most)
        if slots <= 0:
            return []
        free = {pid: (limit or self.settings.project_max_running) - n for pid, (limit, n) in loads.items()}
        if heads is None:
            return fair_order(store.pending_candidates(s, free, slots), slots)
        return fair_order([heads[pid] for pid, n in free.items() if n > 0 and pid in heads], slots)

    def _slots(self, capacity: int, loads: dict[int, tuple[int | None, int]]) -> int:
        """How many more jobs may run: the live workers' capacity and `max_running` less the RUNNING jobs."""
        running = sum(n for _, n in loads.values())
        limit = capacity if self.settings.max_running is None else min(capacity, self.settings.max_running)
        return limit - running

    def recover(self) -> int:
        """Handle every attempt whose lease ran out. Returns how many."""
        with self.db.read() as s:
            expired = store.expired_leases(s, store.utcnow())
        for lease in expired:
            self.ops.worker_lost(lease, retry=self.retry_on_lost(lease.job_type, lease.attempt), actor=self.name)
        return len(expired)

    def purge(self) -> int:
        """Delete final jobs older than the retention period."""
        before = store.utcnow() - timedelta(days=self.settings.retention_days)
        with self.db.write() as s:
            return store.purge_final_jobs(s, before)

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
