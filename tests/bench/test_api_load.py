"""The API-under-load measurement against a real jobctl and the bare FastAPI baseline, at a tiny scale: the
background jobs run and are cleaned up, the clients count answers and failures, the baseline serves the same mix."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobctl.bench import api_load
from jobctl.bench.procs import Procs
from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide
from tests.bench.conftest import free_port

pytestmark = pytest.mark.timeout(120)


def test_the_load_runs_beside_running_jobs_and_the_feeder_cleans_up(side: JobctlSide) -> None:
    assert side.api_url is not None
    project = side.project()
    feeder = api_load.Feeder(side.api_url, ADMIN_TOKEN, project).start()
    try:
        ids = feeder.running_ids(at_least=5)
        got = api_load.load(side.api_url, ADMIN_TOKEN, api_load.paths(project, ids), clients=4, duration=1.0)
    finally:
        feeder.stop()
    assert got.errors == 0
    assert got.per_s > 0 and 0 < got.p(50) <= got.p(99)
    assert side.count(project, "PENDING") == side.count(project, "RUNNING") == 0
    assert feeder.submitted >= api_load.BACKGROUND_PENDING


def test_refused_requests_are_errors_not_latencies(side: JobctlSide) -> None:
    assert side.api_url is not None
    got = api_load.load(side.api_url, "not-a-token", lambda n: "/api/v1/jobs", clients=2, duration=0.3)
    assert got.seconds == [] and got.errors > 0


def test_the_bare_app_serves_the_same_mix(tmp_path: Path) -> None:
    with Procs(tmp_path) as procs:
        url, proc = api_load.start_bare(procs, free_port())
        got = api_load.load(url, None, api_load.paths("demo", ["a", "b"]), clients=2, duration=0.3)
        procs.stop(proc)
    assert got.errors == 0 and len(got.seconds) > 0
