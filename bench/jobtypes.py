"""Job types the benchmark runs on jobctl (loaded by its workers through `JOBCTL_PLUGINS=bench.jobtypes`).

- `bench_noop`: `steps` steps that do nothing (the throughput and memory workloads);
- `bench_hold`: one step that holds a resource and waits without ever calling back (stop and discard latency):
  it writes `bench:started:<job>` when it runs and `bench:released:<job>` (epoch seconds) when the resource is
  released, which only happens once the step's code has stopped;
- `bench_loop`: one step running `calls` iterations of a loop, with or without `ctx.progress()` in it, `repeat`
  times; it returns the fastest run's duration (the progress-cost workload).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import redis
from pydantic import Field

from jobctl.scheduler.settings import get_settings
from jobctl.workers.context import StepContext
from jobctl.workers.registry import JobType, Params, Step

HOLD_LIMIT_S = 120.0
CHUNK = b"x" * 1024


def started_key(job_id: str) -> str:
    return f"bench:started:{job_id}"


def released_key(job_id: str) -> str:
    return f"bench:released:{job_id}"


@functools.cache
def _redis() -> redis.Redis:
    """This process's connection for the benchmark's own keys (the worker's settings name the Redis)."""
    return redis.Redis.from_url(get_settings().redis_url, socket_timeout=10)


class NoopParams(Params):
    steps: int = Field(5, ge=1, le=50)


def _noop(ctx: StepContext) -> None:
    return None


class HoldParams(Params):
    pass


@contextlib.contextmanager
def _resource(ctx: StepContext) -> Iterator[None]:
    try:
        yield
    finally:
        _redis().set(released_key(ctx.job_id), repr(time.time()), ex=3600)


def _hold(ctx: StepContext) -> None:
    ctx.resources.enter_context(_resource(ctx))
    _redis().set(started_key(ctx.job_id), repr(time.time()), ex=3600)
    deadline = time.monotonic() + HOLD_LIMIT_S
    while time.monotonic() < deadline:  # never calls back: only the stop signal ends it early
        time.sleep(0.01)
    return None


class LoopParams(Params):
    calls: int = Field(100_000, ge=1)
    progress: bool = True
    work: str = Field("digest", pattern="^(digest|none)$", description="loop body: sha256 of 1 KiB, or nothing")
    repeat: int = Field(3, ge=1, le=20, description="runs of the loop; the fastest counts")


def _loop(ctx: StepContext) -> dict[str, Any]:
    """Run the loop `repeat` times; the fastest run's seconds (the least disturbed by the rest of the machine)."""
    p = ctx.params
    n, report = p.calls, p.progress
    digest = hashlib.sha256()
    best = float("inf")
    for _ in range(p.repeat):
        began = time.perf_counter()
        if p.work == "digest":
            for i in range(n):
                digest.update(CHUNK)
                if report:
                    ctx.progress(100.0 * i / n)
        else:
            for i in range(n):
                if report:
                    ctx.progress(100.0 * i / n)
        best = min(best, time.perf_counter() - began)
    return {"seconds": best}


bench_noop = JobType("bench_noop", params=NoopParams, target="any")
bench_noop.plan(lambda p: [Step(f"s{i + 1}", _noop) for i in range(p.steps)])
JobType("bench_hold", params=HoldParams, target="any").step(_hold, name="s1")
JobType("bench_loop", params=LoopParams, target="any").step(_loop, name="s1")
