"""Several workers, as on several hosts: they share one backlog and a stop reaches whichever holds the job."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from jobctl.states import JobStatus
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration


def _children(seconds: str) -> set[str]:
    out = subprocess.run(["pgrep", "-f", f"^sleep {seconds}$"], capture_output=True, text=True).stdout
    return set(out.split())


def test_two_workers_share_the_backlog_and_pause_reaches_either(dedicated: Callable[..., System]) -> None:
    live = dedicated()
    live.start_scheduler()
    live.start_worker(concurrency=1, name="alpha@host-a")
    live.start_worker(concurrency=1, name="beta@host-b")
    project = live.project()

    quick = [live.submit(project, params={"steps": 2, "seconds": 0.3}) for _ in range(6)]
    done = [live.wait_status(job.id, "FINISHED", timeout=20) for job in quick]
    hosts = {step.worker for job in done for step in job.steps}
    assert hosts == {"alpha@host-a", "beta@host-b"}, hosts  # both did work

    long = [live.submit(project, params={"steps": 1, "seconds": 30.123, "subprocess": True}) for _ in range(2)]
    running = [live.wait_step_running(job.id, 0, min_progress=0.1) for job in long]
    assert {job.steps[0].worker for job in running} == {"alpha@host-a", "beta@host-b"}
    assert len(_children("30.123")) == 2
    for job in long:
        assert live.op(job.id, "pause").status is JobStatus.PAUSED  # type: ignore[union-attr]
    wait_until(lambda: not _children("30.123"), 2, "both steps' children to be killed")
