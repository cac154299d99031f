"""Scenario 3, two schedulers: two scheduler processes drain one backlog on PostgreSQL.

The backlog is submitted first, then both schedulers start. Every job must finish, no job may be dispatched
twice (one dispatch event per job, no attempt under two fencing tokens, no token run twice), and both schedulers
must have dispatched some of the jobs: each scheduler writes its name (`scheduler@host:pid`) as the actor of its
dispatch events.

The workers run with `chain_s=0`: each job goes through the schedulers and the queue. With the default, a
worker process whose job finished takes the next job for its slot itself, in the same transaction (actor
`worker <hostname>`), and the schedulers only start the backlog: the race between schedulers would hardly be
exercised. (The take and the schedulers share one dispatch lock; the other chaos scenarios run with it.)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from jobctl.scheduler.store import models
from tests.chaos.harness import Chaos, OverdueSampler, scale, wait_all

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

SCHEDULERS = 2
JOBS = scale(200, 2000)
PARAMS = {"steps": 1, "seconds": 0.0}


def dispatch_events(live: Chaos) -> list[tuple[str, str]]:
    """(job id, actor) of every dispatch event."""
    with live.svc.db.read() as s:
        rows = s.execute(sa.select(models.Event.job_id, models.Event.actor).where(models.Event.action == "dispatch"))
        return [(r[0], r[1]) for r in rows]


def messages_sent(live: Chaos) -> tuple[int, int]:
    """(steps, messages sent for them)."""
    with live.svc.db.read() as s:
        row = s.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(models.Step.dispatches), 0))).one()
    return int(row[0]), int(row[1])


def test_two_schedulers_share_one_backlog_and_never_dispatch_a_job_twice(
    chaos: Callable[..., Chaos], report: Callable[..., None], backend: str
) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite has one writer: several schedulers at once need PostgreSQL (docs/contract.md §2)")
    live = chaos(lease_s=2.0, queue_lease_s=4.0, chain_s=0.0)  # every dispatch by a scheduler (see above)
    slack = 2 * live.settings.scheduler_tick_s + 1.0
    project = live.project(max_running=JOBS)
    jobs = [live.submit(project, "record", PARAMS).id for _ in range(JOBS)]
    hostnames = [f"w{i}@chaos" for i in range(2)]
    for hostname in hostnames:
        live.spawn_worker(hostname, concurrency=3)
    live.wait_up(*hostnames)
    began = time.monotonic()
    schedulers = [live.start_scheduler(f"scheduler-{i}") for i in range(SCHEDULERS)]
    names = {str(proc.popen.pid): proc.name for proc in schedulers}  # actors are `scheduler@<host>:<pid>`
    drain_s: float | None = None
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            drain_s = wait_all(
                lambda: live.statuses(jobs).get("FINISHED", 0) == len(jobs),
                scale(60, 300),
                "every job to finish",
                lambda: str(live.statuses(jobs)),
            )
        except AssertionError as exc:
            failure = f"{exc}\n{live.logs()}"
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    events = dispatch_events(live)
    per_job = Counter(job_id for job_id, _ in events)
    by_actor = Counter(names.get(actor.rsplit(":", 1)[-1], actor) for _, actor in events)
    by_scheduler = {name: by_actor.get(name, 0) for name in sorted(names.values())}
    by_workers = sum(n for actor, n in by_actor.items() if actor not in by_scheduler)  # a freed slot's next job
    steps, sent = messages_sent(live)
    figures: dict[str, Any] = {
        "rounds": 1,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "recover_s": "n/a",  # no fault injected
        "dispatched_twice": sum(1 for n in per_job.values() if n > 1),
        "dispatched_by": by_scheduler,
        "dispatched_by_workers": by_workers,
        "resent": sent - steps,
        "drain_s": None if drain_s is None else round(drain_s, 2),
        "jobs_per_s": None if not drain_s else round(len(jobs) / drain_s, 1),
        "wall_s": round(time.monotonic() - began, 1),
    }
    passed = (
        not failure
        and figures["lost"] == 0
        and figures["dispatched_twice"] == 0
        and all(by_scheduler.values())
        and (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0)
        and not invalid
    )
    report(
        "two schedulers",
        **figures,
        passed=passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{SCHEDULERS} schedulers started together on a backlog of {JOBS} one-step jobs; two 3-process workers "
            "with chain_s=0 (every job dispatched by a scheduler, through the queue). dispatched by: dispatch "
            "events per scheduler (the event's actor); dispatched by workers: jobs a worker process took for the "
            "slot its finished job freed (none with chain_s=0). No faults injected: recover s does not apply; "
            "drain s: from the schedulers' start to every job FINISHED."
        ),
    )
    assert not failure, failure
    assert figures["lost"] == 0, statuses
    assert figures["dispatched_twice"] == 0
    assert sum(per_job.values()) == len(jobs)
    assert (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0), verdict
    assert not invalid, f"event histories the transition table does not allow: {invalid[:5]}"
    assert all(n > 0 for n in by_scheduler.values()), f"both schedulers must do work: {dict(by_actor)}"
    assert sampler.stuck == 0
