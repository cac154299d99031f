"""Scenario 2, scheduler crash: `kill -9` the scheduler and start a new one, again and again, while a burst of
submissions arrives.

A thread submits the burst (through the services, as the API would) while the main thread waits until the
current scheduler is dispatching, kills it at a random moment and starts the next. Every job must finish, and
each step attempt must run once: no fencing token executed twice, no attempt number under two tokens. Messages
the scheduler sent again (a dispatch committed but its message lost with the killed process) are counted from
`steps.dispatches`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from jobctl.scheduler.store import models
from tests.chaos.harness import Chaos, OverdueSampler, scale, wait_all
from tests.integration.system import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

RESTARTS = scale(5, 10)
JOBS = scale(100, 1000)
PARAMS = {"steps": 1, "seconds": 0.0}


def dispatches(live: Chaos, pid: int) -> int:
    """How many jobs the scheduler process `pid` dispatched (its name, the events' actor, ends in `:<pid>`)."""
    with live.svc.db.read() as s:
        return int(
            s.scalar(
                sa.select(sa.func.count())
                .select_from(models.Event)
                .where(models.Event.action == "dispatch", models.Event.actor.like(f"scheduler@%:{pid}"))
            )
            or 0
        )


def first_dispatch(live: Chaos, pid: int) -> datetime | None:
    """When the scheduler process `pid` first dispatched a job."""
    with live.svc.db.read() as s:
        at = s.scalar(
            sa.select(sa.func.min(models.Event.at)).where(
                models.Event.action == "dispatch", models.Event.actor.like(f"scheduler@%:{pid}")
            )
        )
    return None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC)


def by_workers(live: Chaos) -> int:
    """Jobs a worker process took itself, for the slot its finished job freed (actor `worker <hostname>`)."""
    with live.svc.db.read() as s:
        return int(
            s.scalar(
                sa.select(sa.func.count())
                .select_from(models.Event)
                .where(models.Event.action == "dispatch", models.Event.actor.like("worker %"))
            )
            or 0
        )


def messages_sent(live: Chaos, job_ids: list[str]) -> tuple[int, int]:
    """(steps, messages sent for them): every step is sent once; the difference was sent again."""
    with live.svc.db.read() as s:
        steps = sent = 0
        for start in range(0, len(job_ids), 500):
            row = s.execute(
                sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(models.Step.dispatches), 0)).where(
                    models.Step.job_id.in_(job_ids[start : start + 500])
                )
            ).one()
            steps += int(row[0])
            sent += int(row[1])
    return steps, sent


def test_schedulers_killed_during_a_burst_lose_no_job_and_dispatch_each_attempt_once(
    chaos: Callable[..., Chaos], report: Callable[..., None]
) -> None:
    rng = random.Random()
    live = chaos(lease_s=2.0, queue_lease_s=4.0)
    slack = 2 * live.settings.scheduler_tick_s + 1.0
    hostnames = [f"w{i}@chaos" for i in range(2)]
    for hostname in hostnames:
        live.spawn_worker(hostname, concurrency=2)
    live.wait_up(*hostnames)
    project = live.project()
    scheduler = live.start_scheduler("scheduler-0")

    jobs: list[str] = []
    errors: list[BaseException] = []
    pace = RESTARTS * 1.0 / JOBS  # spread the burst over the kills

    def burst() -> None:
        try:
            for _ in range(JOBS):
                jobs.append(live.submit(project, "record", PARAMS).id)
                time.sleep(pace * rng.uniform(0.0, 2.0))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    submitter = threading.Thread(target=burst, name="burst", daemon=True)
    began = time.monotonic()
    kills: list[datetime] = []
    successors: list[int] = []  # the pid of the scheduler started after each kill
    settle_s: float | None = None
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            submitter.start()
            for restart in range(RESTARTS):
                pid = scheduler.popen.pid
                wait_until(
                    lambda p=pid: dispatches(live, p) > 0 or (not submitter.is_alive() and not pending(live, jobs)),
                    30,
                    f"scheduler {restart} to dispatch",
                )
                time.sleep(rng.uniform(0.0, 0.3))  # when exactly: anywhere in its passes
                scheduler.kill9()
                kills.append(datetime.now(UTC))
                scheduler = live.start_scheduler(f"scheduler-{restart + 1}")
                successors.append(scheduler.popen.pid)
            last_kill = time.monotonic()
            submitter.join(timeout=120)
            assert not submitter.is_alive(), "the burst did not end"
            wait_all(
                lambda: live.statuses(jobs).get("FINISHED", 0) == len(jobs),
                120,
                "every job to finish",
                lambda: str(live.statuses(jobs)),
            )
            settle_s = time.monotonic() - last_kill
        except AssertionError as exc:
            failure = f"{exc}\n{live.logs()}"
    submitter.join(timeout=30)
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    steps, sent = messages_sent(live, jobs)
    firsts = [first_dispatch(live, pid) for pid in successors]
    # from each kill to the first dispatch by the scheduler started after it (process start included)
    downtime = [(first - killed).total_seconds() for killed, first in zip(kills, firsts, strict=True) if first]
    figures: dict[str, Any] = {
        "rounds": RESTARTS,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "recover_s": round(max(downtime), 2) if downtime else None,
        "recover_mean_s": round(sum(downtime) / len(downtime), 2) if downtime else None,
        "settle_s": None if settle_s is None else round(settle_s, 2),
        "resent": sent - steps,
        "dispatched_by_workers": by_workers(live),
        "restarts_that_found_no_work": sum(1 for first in firsts if first is None),
        "executions": verdict.executions,
        "wall_s": round(time.monotonic() - began, 1),
    }
    passed = (
        not failure
        and not errors
        and len(jobs) == JOBS
        and figures["lost"] == 0
        and sampler.stuck == 0
        and (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0)
        and not invalid
    )
    report(
        "scheduler crash",
        **figures,
        passed=passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{RESTARTS} kill -9 and restarts of the scheduler while {JOBS} jobs (1 step) were submitted; two "
            "2-process workers. recover s: longest time from a kill to the first dispatch by the scheduler started "
            "after it (process start included); resent: messages sent again because a killed scheduler had "
            "committed a dispatch but not sent it (found by the queue lease, 4 s); dispatched by workers: jobs a "
            "worker process took for the slot its finished job freed."
        ),
    )
    assert not errors, errors
    assert not failure, failure
    assert len(jobs) == JOBS
    assert figures["lost"] == 0, statuses
    assert sampler.stuck == 0, f"{sampler.worst} steps RUNNING past their lease at worst"
    assert (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0), verdict
    assert not invalid, f"event histories the transition table does not allow: {invalid[:5]}"
    assert verdict.executions == steps, "a step ran more than once"


def pending(live: Chaos, jobs: list[str]) -> int:
    return live.statuses(list(jobs)).get("PENDING", 0)
