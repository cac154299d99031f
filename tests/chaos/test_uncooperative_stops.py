"""Scenario 6: stops that don't cooperate. A step that never checks for a stop still stops within the grace
period of a pause or discard: blocked in `time.sleep(600)`, busy in one C call, or waiting on a child process
(started through `ctx.spawn`, through plain `subprocess.Popen`, or through Popen and then a C call). No child
process survives and the step's resources are released."""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from jobctl.states import JobStatus
from tests.chaos.harness import Chaos, scale
from tests.integration.system import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

GRACE_S = 0.5
MARGIN_S = 1.0  # a loaded 2-core machine: signal delivery, the escalation timer, /proc reads
PLUGINS = "tests.chaos.jobtypes,tests.integration.testing_jobtypes"
KINDS = {
    "time.sleep(600)": ("hold", {"seconds": 600}),
    "C call": ("spin", {}),
    "child via ctx.spawn": ("child", {"how": "spawn"}),
    "child via Popen": ("child", {"how": "popen"}),
    "child via Popen, then a C call": ("child", {"how": "popen-spin"}),
}


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie waiting to be reaped is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_stops_that_do_not_cooperate_land_within_the_grace_period(
    chaos: Callable[..., Chaos], report: Callable[..., None], tmp_path: Path
) -> None:
    live = chaos(plugins=PLUGINS, stop_grace_s=GRACE_S)
    live.start_scheduler()
    live.start_worker(concurrency=1)  # one pool process: each case runs only if the one before was released
    project = live.project()
    rounds = scale(1, 6)
    latencies: list[float] = []
    failures: list[str] = []
    survivors = wrong_state = 0
    cases = [(kind, op) for _ in range(rounds) for kind in KINDS for op in ("pause", "discard")]
    if rounds == 1:  # quick: each kind once, alternating the operation
        cases = [(kind, ("pause", "discard")[i % 2]) for i, kind in enumerate(KINDS)]
    for kind, op in cases:
        job_type, params = KINDS[kind]
        marker = tmp_path / f"m-{uuid.uuid4().hex}"
        if job_type != "spin":
            params = {**params, "marker": str(marker)}
        job = live.submit(project, job_type, params)
        live.wait_step_running(job.id, 0, timeout=20)
        if job_type == "spin":
            time.sleep(0.2)  # well inside the C call
        else:
            # written once the step runs: wait for its content, not only the file (created before it is written)
            wait_until(lambda m=marker: m.exists() and m.read_text().strip(), 10, f"{kind} to start")
        child = int(marker.read_text()) if job_type == "child" else None

        began = time.monotonic()
        live.op(job.id, op)

        def released(marker: Path = marker, child: int | None = child, job_type: str = job_type) -> bool:
            if job_type == "hold":
                return not marker.exists()
            if child is not None:
                return not alive(child)
            return True

        try:
            wait_until(released, GRACE_S + MARGIN_S, f"{kind} to be released after {op}")
            latencies.append(time.monotonic() - began)
        except AssertionError as exc:
            failures.append(str(exc))
            if child is not None and alive(child):
                survivors += 1
                os.kill(child, 9)
        expected = JobStatus.PAUSED if op == "pause" else JobStatus.DISCARDED
        if live.job(job.id).status is not expected:
            wrong_state += 1
        if op == "pause":
            live.op(job.id, "discard")

    follower = live.submit(project, "record", {"steps": 1, "seconds": 0})
    live.wait_status(follower.id, "FINISHED", timeout=15)  # the single pool process is free again

    worst = max(latencies, default=0.0)
    report(
        "6. stops that don't cooperate",
        rounds=rounds,
        jobs=len(cases),
        lost=wrong_state,
        stuck=len(failures),
        double_recorded=0,
        double_executed=live.verdict().double_executed,
        recover_s=round(worst, 3),
        passed=not failures and not survivors and not wrong_state,
        child_processes_surviving=survivors,
        stop_p50_s=round(statistics.median(latencies), 3) if latencies else None,
        stop_max_s=round(worst, 3),
        grace_s=GRACE_S,
        notes="recover s = the slowest stop, from the operation to the resource or child released; "
        "kinds: " + ", ".join(KINDS),
    )
    assert not failures, failures
    assert survivors == 0 and wrong_state == 0
