"""JOBCTL_LOG_FORMAT=json: every line of every service is JSON; worker lines say which job (issue 7, 4)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.integration.system import System

pytestmark = pytest.mark.integration


def test_json_logs_everywhere_with_the_job_on_worker_lines(dedicated: Callable[..., System]) -> None:
    live = dedicated(log_format="json")
    scheduler = live.start_scheduler()
    worker = live.start_worker(concurrency=1)
    api, _ = live.start_api()

    project = live.project()
    job = live.submit(project, params={"steps": 2, "seconds": 0.2})
    live.wait_status(job.id, "FINISHED")
    failing = live.submit(project, params={"steps": 1, "seconds": 0.1, "fail_at": 0})
    live.wait_status(failing.id, "ERROR")

    for proc in (scheduler, worker, api):
        lines = [line for line in proc.log_path.read_text().splitlines() if line.strip()]
        assert lines, proc.name
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"{proc.name} wrote a line that is not JSON: {line!r}")
        assert all({"ts", "level", "logger", "message"} <= set(r) for r in records)
        if proc is worker:
            assert all("job_id" in r for r in records)
            about = [r for r in records if r["job_id"] == failing.id]
            assert any(r["level"] == "warning" and "failed on purpose" in r["message"] for r in about)
            assert {r["step"] for r in records if r["job_id"] == job.id} >= {0, 1}
