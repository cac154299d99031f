"""Throughput: jobs of 5 no-op steps, submission to FINISHED, against a raw Celery chain of 5 no-op tasks.

Each round submits `jobs` jobs at once on one side, then the same on the other (the order alternates), and
waits for the last one to finish; a round's ratio is jobctl's jobs/s over raw Celery's chains/s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from celery import chain

from jobctl.bench.sides import JobctlSide, RawSide
from jobctl.bench.stats import median, ratios

STEPS = 5


@dataclass(frozen=True)
class Throughput:
    database: str
    jobctl: list[float]  # jobs per second, per round
    raw: list[float]  # chains per second, per round

    @property
    def ratio(self) -> float:
        return median(ratios(self.jobctl, self.raw))


def jobctl_round(side: JobctlSide, jobs: int, timeout: float = 600) -> float:
    """Submit `jobs` 5-step no-op jobs and wait until all are FINISHED. Jobs per second."""
    project = side.project()
    began = time.perf_counter()
    for _ in range(jobs):
        side.submit(project, "bench_noop", {"steps": STEPS})
    deadline = time.monotonic() + timeout
    while side.count(project, "FINISHED") < jobs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobctl finished {side.count(project, 'FINISHED')} of {jobs} jobs in {timeout}s")
        time.sleep(0.01)
    return jobs / (time.perf_counter() - began)


def raw_round(side: RawSide, jobs: int, timeout: float = 600) -> float:
    """Send `jobs` chains of 5 no-op tasks and wait until every chain's last result is stored. Chains per second.

    Completion is read the way the jobctl side reads its database: polling the stored results (one MGET of
    the pending chains' result keys every 10 ms)."""
    noop = side.raw.noop
    began = time.perf_counter()
    results = [chain(*(noop.si() for _ in range(STEPS))).apply_async() for _ in range(jobs)]
    backend = side.app.backend
    pending = [backend.get_key_for_task(r.id) for r in results]
    deadline = time.monotonic() + timeout
    while pending:
        stored = side.redis.mget(pending)
        pending = [key for key, value in zip(pending, stored, strict=True) if value is None]
        if not pending:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"raw Celery finished {jobs - len(pending)} of {jobs} chains in {timeout}s")
        time.sleep(0.01)
    elapsed = time.perf_counter() - began
    side.redis.delete(*[backend.get_key_for_task(r.id) for r in results])
    return jobs / elapsed


def measure(database: str, jobctl: JobctlSide, raw: RawSide, rounds: int, jobs: int) -> Throughput:
    """`rounds` paired rounds of `jobs` jobs (after a warm-up round on each side)."""
    jobctl_round(jobctl, max(5, jobs // 10))
    raw_round(raw, max(5, jobs // 10))
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            ours.append(jobctl_round(jobctl, jobs))
            theirs.append(raw_round(raw, jobs))
        else:
            theirs.append(raw_round(raw, jobs))
            ours.append(jobctl_round(jobctl, jobs))
    return Throughput(database, ours, theirs)
