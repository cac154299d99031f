"""`jobctl stats` and `Client.stats` / `AsyncClient.stats` against a real in-process API (the fixtures of
test_client_commands.py), over jobs of known states and times (`tests.api.stats_seed`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobctl.client import AsyncClient, Client, DayStats, Invalid, NotFound, Stats, TypeStats
from jobctl.states import JobStatus as S
from jobctl.workers.services import Services
from tests.api.stats_seed import Seeded, midnight, seed
from tests.cli.test_client_commands import TOKEN, admin, cli, flat, http, no_client_environment, project, services

__all__ = ["admin", "cli", "http", "no_client_environment", "project", "services"]  # the fixtures used here

D0 = midnight(10)


def jobs() -> list[Seeded]:
    """Seven jobs: `build` finished four times (10, 20, 30, 40 s running; 1, 1, 2, 6 s waiting), failed once;
    `lint` finished once (2 s), one paused."""
    old = D0 + timedelta(hours=1)
    noon = D0 + timedelta(days=1, hours=12)
    built = [Seeded("build", S.FINISHED, old, d, w, finished_at=noon) for d, w in ((10, 1), (20, 1), (30, 2), (40, 6))]
    return [
        *built,
        Seeded("build", S.ERROR, old, 5, 0, failures=(noon + timedelta(days=1),)),
        Seeded("lint", S.FINISHED, old, 2, 0.5, finished_at=noon),
        Seeded("lint", S.PAUSED, old),
    ]


@pytest.fixture
def seeded(services: Services, project: str) -> str:
    seed(services.db, project, jobs())
    return project


def test_stats_prints_the_counts_and_the_slowest_types(cli: Callable[..., Any], seeded: str) -> None:
    result = cli("stats", "--project", seeded)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "7 jobs, created at any time"
    counts = {line.split()[0]: line.split()[1] for line in lines[2:8]}
    assert counts == {"PENDING": "0", "RUNNING": "0", "PAUSED": "1", "ERROR": "1", "DISCARDED": "0", "FINISHED": "5"}
    assert lines[2].split()[2:] == [seeded, "7"]  # beside the states, the projects
    header = next(i for i, line in enumerate(lines) if line.startswith("TYPE"))
    assert lines[header].split() == [
        "TYPE",
        "JOBS",
        "FINISHED",
        "RUN",
        "P50",
        "RUN",
        "P95",
        "WAIT",
        "P50",
        "WAIT",
        "P95",
    ]
    # build: runs 10-40 s -> p50 25 s, p95 at rank 2.85 -> 30 + 10 * 0.85 = 38.5 s; waits 1, 1, 2, 6 -> 1.5 s, 5.4 s
    assert lines[header + 1].split() == ["build", "5", "4", "25s", "38s", "1.5s", "5.4s"]
    assert lines[header + 2].split() == ["lint", "2", "1", "2.0s", "2.0s", "0.5s", "0.5s"]


def test_stats_json_is_the_apis(cli: Callable[..., Any], http: TestClient, seeded: str) -> None:
    result = cli("--json", "stats", "-p", seeded, "--since", "30d")
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["total"] == 7 and printed["since"] is not None and printed["until"] is None
    api = http.get(
        "/api/v1/stats",
        params={"project": seeded, "since": printed["since"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    assert printed == api
    day = (D0 + timedelta(days=1)).date().isoformat()
    after = (D0 + timedelta(days=2)).date().isoformat()
    assert printed["daily"] == [{"day": day, "finished": 5, "failed": 0}, {"day": after, "finished": 0, "failed": 1}]


def test_stats_refusals_end_with_status_1(cli: Callable[..., Any], seeded: str) -> None:
    both = cli("stats", "--project", seeded, "--period", "week", "--since", "2d")
    assert both.exit_code == 1 and "give either period or since/until" in both.stderr
    missing = cli("stats", "--project", "no-such-project")
    assert missing.exit_code == 1 and "project 'no-such-project' not found" in missing.stderr
    bad = cli("stats", "--since", "soon")
    assert bad.exit_code == 2 and "--since" in flat(bad.output)


def run(coroutine: Any) -> Any:
    """`asyncio.run` on a thread of its own (a test before may have left an event loop on this one)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result(timeout=60)


def test_the_clients_read_the_same_stats(http: TestClient, seeded: str) -> None:
    sync = Client(token=TOKEN, http=http).stats(project=seeded, period="month")

    async def read() -> Stats:
        transport = httpx.ASGITransport(app=http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
            return await AsyncClient("http://testserver", TOKEN, http=raw).stats(project=[seeded], period="month")

    asynchronous = run(read())
    assert isinstance(asynchronous, Stats) and asynchronous.since is not None and sync.since is not None
    assert asynchronous.model_dump(exclude={"since"}) == sync.model_dump(exclude={"since"})  # `since` is "now" - 30 d
    assert sync.total == 7 and sync.by_type == {"build": 5, "lint": 2} and sync.by_project == {seeded: 7}
    assert isinstance(sync.types[0], TypeStats)
    assert sync.types[0].model_dump() == {
        "type": "build",
        "jobs": 5,
        "finished": 4,
        "duration_p50_s": 25.0,
        "duration_p95_s": pytest.approx(38.5),
        "waiting_p50_s": 1.5,
        "waiting_p95_s": pytest.approx(5.4),
    }
    assert isinstance(sync.daily[0], DayStats) and sync.daily[0].day == (D0 + timedelta(days=1)).date()
    client = Client(token=TOKEN, http=http)
    with pytest.raises(NotFound):
        client.stats(project="no-such-project")
    with pytest.raises(Invalid):
        client.stats(project=seeded, period="day", until=timedelta(hours=1))
