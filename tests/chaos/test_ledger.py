"""The side tables count what they claim to count: clean runs count zero duplicates, planted ones are seen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from tests.chaos.harness import Chaos

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


def test_a_clean_run_records_each_execution_and_completion_once(chaos: Callable[..., Chaos]) -> None:
    live = chaos()
    live.start_scheduler()
    live.start_worker(concurrency=2)
    project = live.project()
    jobs = [live.submit(project, "record", {"steps": 2, "seconds": 0.1}) for _ in range(3)]
    for job in jobs:
        live.wait_status(job.id, "FINISHED", timeout=30)

    verdict = live.verdict()
    assert verdict.executions == 6
    assert (verdict.double_executed, verdict.double_dispatched, verdict.double_recorded) == (0, 0, 0)
    assert live.overdue(slack_s=0) == 0


def test_planted_duplicates_are_counted(chaos: Callable[..., Chaos]) -> None:
    live = chaos()
    rows = [
        # one fence started twice (a redelivered message run again)
        ("f1", "j1", 0, 1, "start"),
        ("f1", "j1", 0, 1, "start"),
        # one attempt number under two fences (dispatched twice)
        ("f2", "j2", 0, 1, "start"),
        ("f3", "j2", 0, 1, "start"),
    ]
    with live.svc.db.engine.begin() as conn:
        for fence, job, step, attempt, phase in rows:
            conn.execute(
                sa.text(
                    "INSERT INTO chaos_executions (fence, job_id, step_index, attempt, phase, pid)"
                    " VALUES (:f, :j, :s, :a, :p, 0)"
                ),
                {"f": fence, "j": job, "s": step, "a": attempt, "p": phase},
            )
    project = live.project()
    job = live.submit(project, "record", {"steps": 1, "seconds": 0})
    with live.svc.db.engine.begin() as conn:  # the store "completing" the same step twice fires the trigger twice
        for status in ("FINISHED", "RUNNING", "FINISHED"):
            conn.execute(sa.text("UPDATE steps SET status = :s WHERE job_id = :j"), {"s": status, "j": job.id})

    verdict = live.verdict()
    assert (verdict.double_executed, verdict.double_dispatched, verdict.double_recorded) == (1, 1, 1)
