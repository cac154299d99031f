"""A job's life on a live system: progress, pause, resume, errors, restart (issue acceptance 2-5)."""

from __future__ import annotations

import subprocess
import time

import pytest

from jobctl.states import JobStatus, is_valid_path
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration


def test_sleep_job_runs_to_finished_with_rising_progress(system: System, project: str) -> None:
    job = system.submit(project, params={"steps": 3, "seconds": 1})
    assert [s.status for s in job.steps] == [JobStatus.PENDING] * 3  # steps exist from submission

    statuses: list[str] = []
    progress: list[float] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        current = system.job(job.id)
        if not statuses or statuses[-1] != current.status.value:
            statuses.append(current.status.value)
        progress.append(current.progress)
        if current.status.final:
            break
        time.sleep(0.03)

    assert statuses == ["PENDING", "RUNNING", "FINISHED"] or statuses == ["RUNNING", "FINISHED"]
    assert current.progress == 100
    assert len(set(progress)) >= 5, sorted(set(progress))
    assert progress == sorted(progress), "progress never goes back"
    for step in current.steps:
        assert step.status is JobStatus.FINISHED
        assert step.started_at and step.finished_at and step.started_at <= step.finished_at
        assert 0.9 <= step.duration_s < 3
        assert step.waiting_s >= 0
    assert current.started_at and current.finished_at and current.duration_s >= 2.9
    assert is_valid_path(system.events(job.id))


def _sleep_children(seconds: str = "1.537") -> set[str]:
    """Pids of `sleep <seconds>` processes: the children of steps sleeping that (unusual) long."""
    out = subprocess.run(["pgrep", "-f", f"^sleep {seconds}$"], capture_output=True, text=True).stdout
    return set(out.split())


def test_pause_stops_the_step_and_its_children_and_resume_continues(system: System, project: str) -> None:
    before = _sleep_children()
    job = system.submit(project, params={"steps": 3, "seconds": 1.537, "subprocess": True})
    running = system.wait_step_running(job.id, 1, min_progress=20)
    assert _sleep_children() - before, "the step runs its wait in a child process"
    first_step = running.steps[0]

    started = time.monotonic()
    paused = system.op(job.id, "pause")
    assert paused is not None and paused.status is JobStatus.PAUSED
    assert time.monotonic() - started < 1.0
    wait_until(lambda: not (_sleep_children() - before), 2, "the step's child process to be killed")
    paused = system.job(job.id)
    assert paused.steps[1].status is JobStatus.PAUSED
    assert paused.steps[2].status is JobStatus.PENDING

    system.op(job.id, "resume")
    done = system.wait_status(job.id, "FINISHED", timeout=15)
    assert done.steps[0].started_at == first_step.started_at  # finished steps are not run again
    assert done.steps[0].finished_at == first_step.finished_at
    assert done.steps[0].attempt == 1
    assert done.steps[1].attempt == 2
    assert is_valid_path(system.events(job.id))


def test_pause_frees_the_only_worker_slot(dedicated) -> None:  # type: ignore[no-untyped-def]
    live: System = dedicated()
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()
    first = live.submit(project, params={"steps": 1, "seconds": 30})
    second = live.submit(project, params={"steps": 1, "seconds": 0.5})
    live.wait_step_running(first.id, 0, min_progress=1)
    assert live.job(second.id).status is JobStatus.PENDING  # one process: the second waits

    live.op(first.id, "pause")
    live.wait_step_running(second.id, 0, timeout=3)  # the slot was freed and reused at once
    live.wait_status(second.id, "FINISHED", timeout=5)
    assert live.job(first.id).status is JobStatus.PAUSED


def test_failing_step_errors_and_resume_finishes_without_rerunning_earlier_steps(system: System, project: str) -> None:
    job = system.submit(project, params={"steps": 3, "seconds": 0.3, "fail_at": 1, "fail_times": 1})
    failed = system.wait_status(job.id, "ERROR")
    assert failed.error and "step 1" in failed.error
    assert failed.steps[1].status is JobStatus.ERROR and failed.steps[1].error
    assert failed.steps[0].status is JobStatus.FINISHED
    step0 = failed.steps[0]

    resumed = system.op(job.id, "resume")
    assert resumed is not None and resumed.error is None
    done = system.wait_status(job.id, "FINISHED")
    assert done.steps[0].attempt == 1 and done.steps[0].started_at == step0.started_at
    assert done.steps[1].attempt == 2
    assert is_valid_path(system.events(job.id))


@pytest.mark.parametrize("state", ["RUNNING", "PAUSED", "ERROR"])
def test_restart_reruns_every_step_and_forgets_the_earlier_run(system: System, project: str, state: str) -> None:
    params: dict[str, object] = {"steps": 2, "seconds": 0.6}
    if state == "ERROR":
        params.update(fail_at=1, fail_times=1)
    job = system.submit(project, params=params)
    system.wait_step_running(job.id, 1, min_progress=10 if state != "ERROR" else 0)
    if state == "PAUSED":
        system.op(job.id, "pause")
    if state == "ERROR":
        system.wait_status(job.id, "ERROR")
    assert system.job(job.id).status.value == state
    with system.svc.db.read() as s:
        from jobctl.scheduler.store import jobs as jobs_store

        assert jobs_store.step_log(s, job.id, 0, None), "the first run logged something"

    restarted = system.op(job.id, "restart")
    assert restarted is not None and restarted.status in (JobStatus.PENDING, JobStatus.RUNNING)
    assert restarted.attempt == 2 and restarted.error is None and restarted.result is None
    for step in restarted.steps:
        assert step.started_at is None and step.finished_at is None and step.attempt == 0 and step.duration_s == 0
    with system.svc.db.read() as s:
        assert jobs_store.step_log(s, job.id, 0, None) == []

    # A restart forgets attempts too: a step that fails on its first attempt fails again.
    done = system.wait_status(job.id, "ERROR" if state == "ERROR" else "FINISHED")
    assert [s.attempt for s in done.steps] == [1, 1]  # every step ran again, once, from step 0
    assert done.steps[0].started_at is not None and done.steps[0].started_at > restarted.created_at
    assert is_valid_path(system.events(job.id))
