"""Scenario 1, worker crash: `kill -9` a prefork worker (main process and pool) in the middle of a step, round
after round, with a fixed number of jobs in flight.

Two workers share the queue; each round tops the in-flight jobs up to `IN_FLIGHT`, waits until the round's victim
is running a step, kills it at a random moment and starts a replacement. Every job must end FINISHED, no step may
stay RUNNING past its lease (plus one scheduler pass), and no step may be executed or recorded twice.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from jobctl.scheduler.store import models
from tests.chaos.harness import Chaos, Checks, OverdueSampler, scale, wait_all
from tests.integration.system import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ROUNDS = scale(3, 20)
IN_FLIGHT = scale(10, 50)
PARAMS = {"steps": 2, "seconds": 0.4}


def running_on(live: Chaos, hostname: str, min_progress: float = 0.0) -> list[tuple[str, int]]:
    """(job, step) RUNNING on the worker `hostname`, at least `min_progress` percent done."""
    with live.svc.db.read() as s:
        rows = s.execute(
            sa.select(models.Step.job_id, models.Step.index).where(
                models.Step.status == "RUNNING", models.Step.worker == hostname, models.Step.progress >= min_progress
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def finished_at(live: Chaos, steps: list[tuple[str, int]]) -> list[datetime | None]:
    """When each of these steps finished (None: not finished)."""
    out: list[datetime | None] = []
    with live.svc.db.read() as s:
        for job_id, index in steps:
            at = s.scalar(
                sa.select(models.Step.finished_at).where(
                    models.Step.job_id == job_id, models.Step.index == index, models.Step.status == "FINISHED"
                )
            )
            out.append(None if at is None else at if at.tzinfo else at.replace(tzinfo=UTC))
    return out


def lost_retries(live: Chaos) -> int:
    """How many lost attempts the scheduler retried (a `retry` event naming a lost worker)."""
    with live.svc.db.read() as s:
        return int(
            s.scalar(
                sa.select(sa.func.count())
                .select_from(models.Event)
                .where(models.Event.action == "retry", models.Event.reason.like("%lost%"))
            )
            or 0
        )


def messages_sent(live: Chaos) -> tuple[int, int]:
    """(steps, messages sent for them)."""
    with live.svc.db.read() as s:
        row = s.execute(sa.select(sa.func.count(), sa.func.coalesce(sa.func.sum(models.Step.dispatches), 0))).one()
    return int(row[0]), int(row[1])


def test_workers_killed_mid_step_lose_no_job_and_run_no_step_twice(
    chaos: Callable[..., Chaos], report: Callable[..., None]
) -> None:
    rng = random.Random()
    live = chaos(lease_s=2.0, queue_lease_s=4.0)
    slack = 2 * live.settings.scheduler_tick_s + 1.0  # one scheduler pass (a tick and its work) and a margin
    live.start_scheduler()
    names = [f"w{i}-0@chaos" for i in range(2)]
    workers = [live.spawn_worker(name, concurrency=2) for name in names]
    live.wait_up(*names)
    project = live.project()
    jobs: list[str] = []
    kills: list[tuple[datetime, list[tuple[str, int]]]] = []  # when, and the steps it interrupted

    def unfinished() -> int:
        return sum(n for status, n in live.statuses(jobs).items() if status != "FINISHED")

    began = time.monotonic()
    settle_s: float | None = None
    failure = ""
    with OverdueSampler(live, slack) as sampler:
        try:
            for round_ in range(ROUNDS):
                jobs += [live.submit(project, "record", PARAMS).id for _ in range(IN_FLIGHT - unfinished())]
                victim = round_ % 2
                wait_until(lambda v=victim: running_on(live, names[v]), 30, f"{names[victim]} to run a step")
                time.sleep(rng.uniform(0.0, 0.3))  # when exactly, within the step (0.4 s)
                workers[victim].kill9()
                kills.append((datetime.now(UTC), running_on(live, names[victim])))
                names[victim] = f"w{victim}-{round_ + 1}@chaos"
                workers[victim] = live.spawn_worker(names[victim], concurrency=2)
                live.wait_up(names[victim])  # two workers at every kill: a crash, not a storm
            last_kill = time.monotonic()
            wait_all(lambda: unfinished() == 0, 120, "every job to finish", lambda: str(live.statuses(jobs)))
            settle_s = time.monotonic() - last_kill
        except AssertionError as exc:
            failure = f"{exc}\n{live.logs()}"
    live.kill_all()
    statuses = live.statuses(jobs)
    verdict = live.verdict()
    invalid = live.invalid_paths(jobs)
    interrupted = sum(len(steps) for _, steps in kills)
    retried = lost_retries(live)
    step_count, sent = messages_sent(live)
    recoveries: list[float] = []
    unrecovered = 0
    for at, steps in kills:
        for done in finished_at(live, steps):
            if done is None:
                unrecovered += 1
            else:
                recoveries.append((done - at).total_seconds())
    figures: dict[str, Any] = {
        "rounds": ROUNDS,
        "jobs": len(jobs),
        "lost": len(jobs) - statuses.get("FINISHED", 0),
        "stuck": sampler.stuck,
        "double_recorded": verdict.double_recorded,
        "double_executed": verdict.double_executed,
        "double_dispatched": verdict.double_dispatched,
        "invalid_paths": len(invalid),
        "recover_s": round(max(recoveries), 2) if recoveries else None,
        "recover_mean_s": round(sum(recoveries) / len(recoveries), 2) if recoveries else None,
        "settle_s": None if settle_s is None else round(settle_s, 2),
        "steps_interrupted": interrupted,
        "lost_attempts_retried": retried,
        "resent": sent - step_count - retried,  # messages lost inside a killed worker (taken, not yet started)
        "executions": verdict.executions,
        "overdue_samples": sampler.samples,
        "wall_s": round(time.monotonic() - began, 1),
    }
    checks = (
        Checks(failure)
        .add(figures["lost"] == 0, statuses)
        .none_stuck(sampler)
        .add(interrupted >= ROUNDS, "every kill must interrupt a running step")
        .add(unrecovered == 0, unrecovered)
        .nothing_twice(verdict)
        .valid_paths(invalid)
    )
    report(
        "worker crash",
        **figures,
        passed=checks.passed,
        error=failure.splitlines()[0] if failure else None,
        notes=(
            f"{ROUNDS} rounds of kill -9 of one of two 2-process workers mid-step, {IN_FLIGHT} jobs "
            f"(2 steps x {PARAMS['seconds']} s) in flight at each kill; lease 2 s, stuck = RUNNING past lease + "
            f"{slack:.1f} s. recover s: longest time from a kill to an interrupted step finished on another worker; "
            "settle s: from the last kill to every job FINISHED."
        ),
    )
    checks.assert_all()
