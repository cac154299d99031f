"""Stops that do not need the step's cooperation, checkpoints, and the retention purge."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from jobctl.scheduler.loop import Scheduler
from jobctl.scheduler.store import common, models
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.states import JobStatus
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration
PLUGINS = "tests.integration.testing_jobtypes"


def test_a_step_blocked_in_sleep_is_interrupted_and_releases_its_resources(
    dedicated: Callable[..., System], tmp_path: Path
) -> None:
    live = dedicated(plugins=PLUGINS)
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()
    marker = tmp_path / f"held-{uuid.uuid4().hex}"
    job = live.submit(project, "hold", params={"marker": str(marker), "seconds": 600})
    wait_until(marker.exists, 15, "the step to acquire its resource")

    stopped_at = time.monotonic()
    live.op(job.id, "pause")
    wait_until(lambda: not marker.exists(), 1.0, "the resource to be released")
    assert time.monotonic() - stopped_at < 1.0
    follower = live.submit(project, params={"steps": 1, "seconds": 0})
    live.wait_status(follower.id, "FINISHED", timeout=5)  # the only worker process is free again


def test_a_step_stuck_in_a_c_call_is_killed_after_the_grace_period(dedicated: Callable[..., System]) -> None:
    live = dedicated(plugins=PLUGINS, stop_grace_s=0.5)
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()
    job = live.submit(project, "spin")
    live.wait_step_running(job.id, 0)
    time.sleep(0.3)  # well inside the C call

    live.op(job.id, "discard")
    assert live.job(job.id).status is JobStatus.DISCARDED
    # One worker process, busy for minutes unless it was killed: a new job can only run if it was.
    follower = live.submit(project, params={"steps": 1, "seconds": 0})
    live.wait_status(follower.id, "FINISHED", timeout=10)
    assert live.job(job.id).status is JobStatus.DISCARDED  # nothing the killed attempt did came back


def test_a_resumed_step_continues_from_its_checkpoint(system: System, project: str) -> None:
    job = system.submit(project, params={"steps": 1, "seconds": 3})
    system.wait_step_running(job.id, 0, min_progress=40)
    system.op(job.id, "pause")
    saved = system.job(job.id)
    with system.svc.db.read() as s:
        checkpoint = s.get_one(models.Step, (job.id, 0)).checkpoint
    assert checkpoint.get("elapsed", 0) >= 1.0

    system.op(job.id, "resume")
    done = system.wait_status(job.id, "FINISHED")
    with system.svc.db.read() as s:
        log = jobs_store.step_log(s, job.id, 0, None)
    resumed_line = next(line for line in log if "attempt 2" in line)
    remaining = float(resumed_line.split("sleeping ")[1].split("s")[0])
    assert remaining <= 3 - 1.0 + 0.01, resumed_line
    assert done.steps[0].duration_s < 3 + 1.0 and saved.steps[0].attempt == 1


def test_final_jobs_past_retention_are_purged(system: System, project: str) -> None:
    old = system.submit(project, params={"steps": 1, "seconds": 0})
    fresh = system.submit(project, params={"steps": 1, "seconds": 0})
    for job in (old, fresh):
        system.wait_status(job.id, "FINISHED")
    with system.svc.db.write() as s:
        long_ago = common.utcnow() - timedelta(days=system.settings.retention_days + 1)
        s.execute(update(models.Job).where(models.Job.id == old.id).values(finished_at=long_ago))
    scheduler = Scheduler(system.svc.ops, system.svc.bus, system.settings, lambda *_: False)
    assert scheduler.purge() >= 1
    with system.svc.db.read() as s:
        assert jobs_store.load_jobs(s, [old.id, fresh.id])[0].id == fresh.id
        assert len(jobs_store.load_jobs(s, [old.id])) == 0


def test_a_stop_signal_meant_for_another_attempt_is_ignored(dedicated: Callable[..., System], tmp_path: Path) -> None:
    """The stop command signals a pool process; if the attempt it meant ended and another began there, the
    signal must not stop the newcomer: only a stop recorded for this attempt's token counts."""
    import os
    import signal

    from jobctl.workers import runners

    live = dedicated(plugins=PLUGINS)
    live.start_scheduler()
    main_pid = live.start_worker(concurrency=1).popen.pid
    project = live.project()
    marker = tmp_path / f"held-{uuid.uuid4().hex}"
    job = live.submit(project, "hold", params={"marker": str(marker), "seconds": 600})
    wait_until(marker.exists, 15, "the step to acquire its resource")
    fence = live.job(job.id).steps[0].task_id
    assert fence

    def registered_pid() -> int | None:  # the pool process that registered the attempt as the one it runs
        for record in runners.directory(main_pid).iterdir():
            if runners.running(main_pid, int(record.name)) == fence:
                return int(record.name)
        return None

    pid = wait_until(registered_pid, 5, "the attempt to register its process")

    os.kill(pid, signal.SIGUSR2)  # a stray stop signal: nobody asked this attempt to stop
    progressed = live.job(job.id).steps[0].attempt
    follower = live.submit(project, params={"steps": 1, "seconds": 0})  # queued behind the held step
    with pytest.raises(AssertionError):
        wait_until(lambda: not marker.exists(), 1.5, "the resource to be released")
    held = live.job(job.id)
    assert held.status is JobStatus.RUNNING and held.steps[0].attempt == progressed

    live.op(job.id, "pause")  # a real stop still lands at once
    wait_until(lambda: not marker.exists(), 1.0, "the resource to be released")
    live.wait_status(follower.id, "FINISHED", timeout=10)
