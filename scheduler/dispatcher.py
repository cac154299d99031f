"""Which PENDING jobs start now, and starting them: the one place the dispatch rules live.

A dispatch runs in one write transaction under the dispatch lock (a PostgreSQL advisory lock; SQLite's write
lock), so several schedulers - and worker processes taking a job for the slot they just freed - can dispatch at
once and no job is dispatched twice: the guarded PENDING -> RUNNING transition is the claim. The limits: the
live workers' capacity, `max_running`, each project's own limit; the order: `fair_order`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobctl.scheduler.effects import Done, Effects
from jobctl.scheduler.executor import Bus
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import dispatch as store
from jobctl.scheduler.store import handover
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.store.transitions import lock_jobs, transition
from jobctl.scheduler.targets import TargetKinds
from jobctl.states import Action

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: (job id, project id, priority, created_at, its target as (kind, name, exclusive), or None)
Candidate = tuple[str, int, int, datetime, tuple[str, str, bool] | None]

AUTO_DISCARD_ACTOR = "auto-discard"


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


@dataclass(frozen=True)
class Pass:
    """What a dispatch pass did: how many jobs left PENDING (dispatched or auto-discarded), and whether it
    found every slot taken."""

    moved: int
    full: bool


class Dispatcher:
    """Chooses PENDING jobs by the limits and `fair_order`, and dispatches them (or auto-discards one whose
    target moved). Used by the scheduler's passes and by a worker process that takes a job itself."""

    def __init__(self, db: Database, effects: Effects, bus: Bus, targets: TargetKinds, settings: Settings) -> None:
        self.db = db
        self.effects = effects
        self.bus = bus
        self.targets = targets
        self.settings = settings
        self._capacity_read = (-float("inf"), 0)  # (monotonic time, value) of the last capacity read

    def dispatch_pass(self, actor: str) -> Pass:
        """One pass: dispatch as many PENDING jobs as the limits allow, in fair order; `actor` (the scheduler's
        name) is recorded in the dispatch events. Every slot taken (the common case in a burst) costs a read
        transaction only, no lock."""
        capacity = self.bus.capacity(self.settings.queue)
        with self.db.read() as s:
            if self._slots(capacity, store.project_loads(s)) <= 0:
                return Pass(0, True)
        with self.db.write() as s:
            chosen = self.choose(s, capacity, None)
            done = self.dispatch(s, chosen, actor) if chosen else []
        self.effects.after(done)
        return Pass(len(done), False)

    def take(
        self, s: Session, worker: str, actor: str, capacity: int, *, locked: bool = False
    ) -> tuple[handover.Dispatched | None, list[Done]]:
        """In the caller's transaction: choose one job as a pass would - the workers' `capacity` read by the
        caller before its transaction (`capacity`) - and start its step for `worker` (the caller runs it); what
        to announce once it commits. `locked`: the caller holds the dispatch lock. A job whose target moved is
        discarded instead (nothing taken)."""
        chosen = self.choose(s, capacity, 1, locked=locked)
        if not chosen:
            return None, []
        conn, lease_s = s.connection(), self.settings.lease_s
        taken = None
        if conn.dialect.name == "postgresql":  # one statement for a job without a target
            taken = handover.dispatch_and_start_at_once(conn, chosen[0], worker, actor, lease_s=lease_s)
        if taken is None:
            taken = handover.dispatch_and_start(
                conn, chosen[0], worker, actor, lease_s=lease_s, check_target=self.targets.check
            )
        if taken is None:  # its target moved (or it changed since it was chosen): the general path decides
            return None, self.dispatch(s, chosen, actor)
        return taken, [(taken.transition, taken.job)]

    def dispatch(self, s: Session, job_ids: Sequence[str], actor: str) -> list[Done]:
        """In the caller's transaction: dispatch each job - its attempt claimed, sent after the commit by
        `Effects.after` - or auto-discard it if its target moved."""
        lock_jobs(s, job_ids)
        done: list[Done] = []
        for job_id in job_ids:
            target = store.job_target(s, job_id)
            reason = self.targets.check(s, *target) if target else None
            if reason:
                t = transition(s, job_id, Action.AUTO_DISCARD, AUTO_DISCARD_ACTOR, reason)
            else:
                t = transition(s, job_id, Action.DISPATCH, actor, queue_lease_s=self.settings.queue_lease_s)
            done.append((t, t.job))
        return done

    def capacity(self, max_age: float) -> int:
        """The live workers' process count, read again if the last read is older than `max_age` seconds (a
        worker's registration lives for `worker_ttl_s`: a joining or dying worker is seen as late)."""
        read_at, value = self._capacity_read
        if time.monotonic() - read_at > max_age:
            value = self.bus.capacity(self.settings.queue)
            self._capacity_read = (time.monotonic(), value)
        return value

    def choose(self, s: Session, capacity: int, at_most: int | None, *, locked: bool = False) -> list[str]:
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
