"""Progress cost and worker memory.

Progress: one `bench_loop` step of `calls` iterations with `ctx.progress()` in the loop, against the same
loop without it, timed inside the step (`perf_counter` around the loop, fastest of 3 runs in the step),
paired round by round.
Memory: resident memory of the whole worker (main process and pool) after `small` one-step no-op jobs and
after `large`, on both sides (raw: as many no-op tasks).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from jobctl.bench.sides import JobctlSide, RawSide
from jobctl.bench.stats import median, ratios
from jobctl.scheduler.store import models


@dataclass(frozen=True)
class ProgressCost:
    work: str
    calls: int
    with_calls: list[float]
    without: list[float]

    @property
    def ratio(self) -> float:
        return median(ratios(self.with_calls, self.without))

    @property
    def ns_per_call(self) -> float:
        return (median(self.with_calls) - median(self.without)) / self.calls * 1e9


def _wait_finished(side: JobctlSide, job_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while (status := side.status(job_id)) != "FINISHED":
        if status in ("ERROR", "DISCARDED") or time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} is {status}")
        time.sleep(0.02)


def _loop_seconds(side: JobctlSide, project: str, calls: int, progress: bool, work: str) -> float:
    job_id = side.submit(project, "bench_loop", {"calls": calls, "progress": progress, "work": work})
    _wait_finished(side, job_id)
    with side.svc.db.read() as s:
        result = s.scalar(select(models.Job.result).where(models.Job.id == job_id))
    assert result is not None
    return float(result["seconds"])


def progress_cost(side: JobctlSide, rounds: int, calls: int, work: str) -> ProgressCost:
    """`rounds` pairs of loop timings, with and without `progress()` calls (order alternating)."""
    project = side.project()
    _loop_seconds(side, project, calls, True, work)  # warm-up
    with_calls: list[float] = []
    without: list[float] = []
    for i in range(rounds):
        for progress in (True, False) if i % 2 == 0 else (False, True):
            (with_calls if progress else without).append(_loop_seconds(side, project, calls, progress, work))
    return ProgressCost(work, calls, with_calls, without)


@dataclass(frozen=True)
class Memory:
    side: str
    small: int
    large: int
    small_kib: int
    large_kib: int

    @property
    def ratio(self) -> float:
        return self.large_kib / self.small_kib


def _run_jobctl(side: JobctlSide, project: str, jobs: int, chunk: int = 250) -> None:
    done = side.count(project, "FINISHED")
    target = done + jobs
    while done < target:
        batch = min(chunk, target - done)
        for _ in range(batch):
            side.submit(project, "bench_noop", {"steps": 1})
        deadline = time.monotonic() + 600
        while side.count(project, "FINISHED") < done + batch:
            if time.monotonic() > deadline:
                raise TimeoutError("memory workload did not finish")
            time.sleep(0.02)
        done += batch


def jobctl_memory(side: JobctlSide, small: int, large: int) -> Memory:
    """Worker RSS after `small` and after `large` one-step no-op jobs."""
    project = side.project()
    _run_jobctl(side, project, small)
    time.sleep(0.5)
    at_small = side.worker_rss_kib()
    _run_jobctl(side, project, large - small)
    time.sleep(0.5)
    return Memory("jobctl", small, large, at_small, side.worker_rss_kib())


def _run_raw(side: RawSide, tasks: int, chunk: int = 500) -> None:
    for start in range(0, tasks, chunk):
        results = [side.raw.noop.delay() for _ in range(min(chunk, tasks - start))]
        for result in results:
            result.get(timeout=300)
            result.forget()


def raw_memory(side: RawSide, small: int, large: int) -> Memory:
    """Raw worker RSS after `small` and after `large` no-op tasks."""
    _run_raw(side, small)
    time.sleep(0.5)
    at_small = side.worker_rss_kib()
    _run_raw(side, large - small)
    time.sleep(0.5)
    return Memory("raw Celery", small, large, at_small, side.worker_rss_kib())
