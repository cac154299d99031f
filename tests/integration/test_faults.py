"""Faults on a live system: a worker killed mid-step, and a pause racing a step's finish (acceptance 9, 10)."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import pytest

from jobctl.states import JobStatus, is_valid_path
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration


def test_worker_killed_mid_step_is_retried_and_the_job_finishes(dedicated: Callable[..., System]) -> None:
    live = dedicated(lease_s=2.0)
    live.start_scheduler()
    worker = live.start_worker(concurrency=1)
    project = live.project()
    job = live.submit(project, params={"steps": 2, "seconds": 1.5})
    live.wait_step_running(job.id, 0, min_progress=20)

    worker.kill9()  # main process and pool, like a machine losing power
    killed_at = time.monotonic()
    live.start_worker(concurrency=1)

    retried = live.wait_status(job.id, "FINISHED", timeout=20)
    assert retried.steps[0].attempt == 2
    events = live.events(job.id)
    assert ("RUNNING", "RUNNING", "retry") in events
    assert is_valid_path(events)
    with live.svc.db.read() as s:
        from jobctl.scheduler.store import jobs as jobs_store

        reasons = [e.reason or "" for e in jobs_store.job_events(s, job.id) if e.action == "retry"]
    assert any("lost" in r for r in reasons), reasons
    # noticed within the lease (plus a scheduler pass), then re-run (1.5 s) and the second step (1.5 s)
    assert time.monotonic() - killed_at < 2.0 + 1.0 + 3.0 + 5.0


def test_worker_lost_twice_puts_the_job_in_error(dedicated: Callable[..., System]) -> None:
    live = dedicated(lease_s=1.5)
    live.start_scheduler()
    project = live.project()
    job = live.submit(project, params={"steps": 1, "seconds": 30})
    for attempt in (1, 2):
        worker = live.start_worker(concurrency=1)
        wait_until(
            lambda a=attempt: (
                (st := live.job(job.id).steps[0]).attempt == a and st.progress > 0.5 and st.status is JobStatus.RUNNING
            ),
            20,
            f"attempt {attempt} to run",
        )
        worker.kill9()
    failed = live.wait_status(job.id, "ERROR", timeout=10)
    assert failed.error and "worker lost" in failed.error and "(after 2 attempts, no retry left)" in failed.error
    assert failed.error_code == "worker_lost" and failed.steps[0].error_code == "worker_lost"
    assert failed.steps[0].error_hint and "worker's log" in failed.steps[0].error_hint
    assert failed.steps[0].status is JobStatus.ERROR
    assert is_valid_path(live.events(job.id))


def test_pause_racing_the_finish_always_ends_in_an_allowed_state(system: System, project: str) -> None:
    rng = random.Random(7)
    outcomes = set()
    for _ in range(10):
        job = system.submit(project, params={"steps": 1, "seconds": 0.4})
        system.wait_step_running(job.id, 0)
        time.sleep(rng.uniform(0.3, 0.5))  # around the step's end: before, during and after its finish
        try:
            system.op(job.id, "pause")
        except Exception as exc:  # the finish won: the pause is refused
            assert "cannot pause a job that is FINISHED" in str(exc)
        settled = system.wait_status(job.id, "PAUSED", "FINISHED")
        time.sleep(0.3)  # anything still in flight from the stopped attempt lands now - and must be ignored
        final = system.job(job.id)
        assert final.status is settled.status
        outcomes.add(final.status)
        if final.status is JobStatus.PAUSED:
            assert final.steps[0].status is JobStatus.PAUSED
            system.op(job.id, "resume")
            system.wait_status(job.id, "FINISHED")
        assert is_valid_path(system.events(job.id))
    assert outcomes  # both outcomes are allowed; which ones happen depends on timing
