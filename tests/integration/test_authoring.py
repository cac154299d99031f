"""The README's export job type, unchanged, as a plugin on real prefork workers (and the `nap` test type for
timeouts): pause mid-`iterate` resumes at the checkpoint, cleanup runs with its reason once the stopped step
has unwound, two jobs on one target never run at once, a failing step retries after its backoff, a step past
its timeout is stopped and fails. On SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import jobs as jobs_store
from tests.integration.system import System, wait_until
from tests.live import live_system

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
PLUGINS = "export_jobs,tests.integration.testing_jobtypes"


def readme_python(heading: str) -> str:
    """The first Python block of the README section `heading`."""
    section = README.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The README's plugin saved as `export_jobs.py`, importable here and by the services started below."""
    folder = tmp_path_factory.mktemp("plugin")
    (folder / "export_jobs.py").write_text(readme_python("Write your own job type"))
    patch = pytest.MonkeyPatch()
    patch.syspath_prepend(str(folder))
    patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    yield folder
    patch.undo()


@pytest.fixture(scope="module")
def live(
    settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory, plugin_dir: Path
) -> Iterator[System]:
    """A system of its own with the plugin loaded: a scheduler and a 2-process worker."""
    yield from live_system(settings, backend, tmp_path_factory, f"authoring-{uuid.uuid4().hex[:6]}", plugins=PLUGINS)


@pytest.fixture
def project(live: System) -> Iterator[str]:
    name = live.project()
    yield name
    live.settle(name)


def table(live: System, project: str, columns: list[str] | None = None) -> str:
    name = f"t{uuid.uuid4().hex[:8]}"
    live.svc.ops.put_target(project, "record", name, {"columns": columns} if columns is not None else {})
    return name


def step_log(live: System, job_id: str, index: int) -> list[str]:
    with live.svc.db.read() as s:
        return jobs_store.step_log(s, job_id, index, None)


def worker_log(live: System) -> str:
    return "\n".join(p.log_path.read_text(errors="replace") for p in live.processes)


def test_pause_mid_iterate_resumes_at_the_checkpoint(live: System, project: str) -> None:
    name = table(live, project, ["id", "total"])
    job = live.submit(project, "export_table", params={"rows": 60, "row_s": 0.05}, target=("record", name))
    live.wait_step_running(job.id, 0, min_progress=40)
    live.op(job.id, "pause")
    live.wait_status(job.id, "PAUSED")
    live.op(job.id, "resume")
    done = live.wait_status(job.id, "FINISHED", timeout=30)
    assert done.result == {"rows": 60, "columns": ["id", "total"]}
    resumed = [line for line in step_log(live, job.id, 0) if "resuming at item" in line]
    assert len(resumed) == 1, step_log(live, job.id, 0)
    position = int(re.search(r"resuming at item (\d+) of 60", resumed[0]).group(1))  # type: ignore[union-attr]
    assert 20 <= position < 60 and position % 10 == 0  # at least the 40% it had reached, in tens
    assert done.steps[0].output == {"rows": 60} and done.steps[1].output == done.result


def test_discard_and_a_changed_target_run_cleanup_with_their_reason(live: System, project: str) -> None:
    name = table(live, project, ["id"])
    discarded = live.submit(project, "export_table", params={"rows": 200, "row_s": 0.05}, target=("record", name))
    live.wait_step_running(discarded.id, 0, min_progress=5)
    live.op(discarded.id, "discard")
    wait_until(lambda: f"cleaned up {discarded.id} after discard" in worker_log(live), 15, "the discard's cleanup")
    log = worker_log(live)
    stopped = log.index(f"step 0 of job {discarded.id} stopped")  # logged once its resources were released
    assert stopped < log.index(f"cleaned up {discarded.id} after discard")

    other = table(live, project, ["id"])
    changed = live.submit(project, "export_table", params={"rows": 200, "row_s": 0.05}, target=("record", other))
    live.wait_step_running(changed.id, 0, min_progress=5)
    live.svc.ops.put_target(project, "record", other, {"columns": ["id", "new"]})
    job = live.wait_status(changed.id, "DISCARDED")
    assert job.discard_reason and "changed" in job.discard_reason
    wait_until(
        lambda: f"cleaned up {changed.id} after auto-discard" in worker_log(live), 15, "the auto-discard's cleanup"
    )


def test_two_jobs_on_one_target_never_run_at_once(live: System, project: str) -> None:
    name = table(live, project, ["id"])
    elsewhere = table(live, project, ["id"])
    jobs = [
        live.submit(project, "export_table", params={"rows": 10, "row_s": 0.03}, target=("record", name))
        for _ in range(3)
    ]
    free = live.submit(project, "export_table", params={"rows": 10, "row_s": 0.03}, target=("record", elsewhere))
    done = [live.wait_status(j.id, "FINISHED", timeout=30) for j in [*jobs, free]]
    spans = sorted((j.started_at, j.finished_at) for j in done[:3])
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end is not None and second_start is not None and first_end <= second_start, spans
    assert any(e[2] == "dispatch" for e in live.events(free.id))


def test_a_failing_step_retries_after_at_least_its_backoff(live: System, project: str) -> None:
    name = table(live, project)  # no columns: the first step raises StepFailed
    job = live.submit(project, "export_table", params={"rows": 1}, target=("record", name))

    def waiting() -> bool:
        current = live.job(job.id)
        return current.status.value == "PENDING" and current.steps[0].retry_at is not None

    wait_until(waiting, 15, "the step to wait for its retry, its job PENDING")
    failed = live.wait_status(job.id, "ERROR", timeout=30)
    assert failed.error == "no columns (after 3 attempts, no retry left)" and failed.error_code == "no-columns"
    step = failed.steps[0]
    assert (step.error, step.error_code, step.error_hint) == (failed.error, "no-columns", "put the target with columns")
    assert step.attempt == 3 and step.retry_at is None
    with live.svc.db.read() as s:
        events = jobs_store.job_events(s, job.id)
    assert [e.action for e in events] == [
        "submit",
        "dispatch",
        "retry-later",
        "dispatch",
        "retry-later",
        "dispatch",
        "fail",
    ]
    waits = [(events[i + 1].at - events[i].at).total_seconds() for i in (2, 4)]
    assert waits[0] >= 1.0 and waits[1] >= 2.0, waits  # backoff_s * 2**(attempt-1), never less


def test_a_step_past_its_timeout_is_stopped_and_fails(live: System, project: str, tmp_path: Path) -> None:
    marker = tmp_path / "held"
    job = live.submit(project, "nap", params={"marker": str(marker), "seconds": 120})
    live.wait_step_running(job.id, 0)
    began = time.monotonic()
    failed = live.wait_status(job.id, "ERROR", timeout=20)  # two attempts of one second each (Retry(attempts=2))
    assert time.monotonic() - began >= 1.0
    assert failed.error == "step '_nap' timed out after 1s (timeout_s) (after 2 attempts, no retry left)"
    assert failed.error_code == "timeout" and failed.steps[0].error_code == "timeout"
    assert failed.steps[0].error_hint and "timeout_s" in failed.steps[0].error_hint
    assert failed.steps[0].attempt == 2
    wait_until(lambda: not marker.exists(), 5, "the timed-out step's resource to be released")
    assert [e[2] for e in live.events(job.id)].count("fail") == 1


def test_a_restarted_job_starts_again_only_after_its_cleanup(live: System, project: str, tmp_path: Path) -> None:
    marker = tmp_path / "cleaned"
    job = live.submit(project, "tidy", params={"marker": str(marker), "cleanup_s": 1.0})
    live.wait_step_running(job.id, 0)
    live.op(job.id, "restart")
    live.wait_step_running(job.id, 0, timeout=20)
    cleaned_at, reason = marker.read_text().split()
    assert reason == "restart"
    with live.svc.db.read() as s:
        events = jobs_store.job_events(s, job.id)
    redispatched = [e for e in events if e.action == "dispatch"][-1]
    assert [e.action for e in events][-2:] == ["restart", "dispatch"]
    assert redispatched.at.timestamp() >= float(cleaned_at)  # held PENDING until the cleanup ended


def test_no_job_shares_a_target_with_a_running_exclusive_one(live: System, project: str) -> None:
    name = table(live, project, ["id"])
    export = live.submit(project, "export_table", params={"rows": 20, "row_s": 0.03}, target=("record", name))
    other = live.submit(project, "sleep", params={"steps": 1, "seconds": 0.3}, target=("record", name))
    export_again = live.submit(project, "export_table", params={"rows": 1, "row_s": 0}, target=("record", name))
    done = [live.wait_status(j.id, "FINISHED", timeout=30) for j in (export, other, export_again)]
    spans = sorted((j.started_at, j.finished_at) for j in done)
    for (_, first_end), (second_start, _) in itertools.pairwise(spans):
        assert first_end is not None and second_start is not None and first_end <= second_start, spans
