"""`jobctl jobs show` and `jobctl jobs list --error-code` against a real in-process API (as
tests/cli/test_client_commands.py runs them): what a PENDING job waits for, a failed step's code, message and hint,
a step's info. No worker consumes the queue: the failure is recorded through `Operations`, the calls a worker
makes (tests/api/attempts.py)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from jobctl.api.app import create_app
from jobctl.cli import app
from jobctl.cli.connection import Connector
from jobctl.scheduler.operations import Failed
from jobctl.scheduler.settings import Settings
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.api.attempts import WORKER, run

TOKEN = "test-admin-token"
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_client_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBCTL_URL", raising=False)
    monkeypatch.delenv("JOBCTL_TOKEN", raising=False)


@pytest.fixture(scope="module")
def services(settings: Settings) -> Iterator[Services]:
    """On a queue of this module's own: no worker announces itself on it (`no live worker`)."""
    built = build(settings.model_copy(update={"queue": f"{settings.queue}-diagnosis-cli"}))
    yield built
    built.close()


@pytest.fixture(scope="module")
def http(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


@pytest.fixture
def cli(http: TestClient) -> Callable[..., Any]:
    def invoke(*args: str) -> Any:
        result = runner.invoke(app, [*args, "--token", TOKEN], obj=Connector(http=http))
        assert result.exit_code == 0, result.output
        return result

    return invoke


@pytest.fixture
def project(cli: Callable[..., Any]) -> str:
    name = f"d{time.time_ns() % 10**12}"
    cli("projects", "create", name)
    return name


def submit(cli: Callable[..., Any], project: str) -> str:
    out: str = cli("jobs", "submit", "--project", project, "--type", "sleep", "--param", "steps=2").stdout
    return out.strip().splitlines()[-1]


def test_show_tells_what_a_pending_job_waits_for(cli: Callable[..., Any], project: str) -> None:
    job_id = submit(cli, project)
    rows = {
        line.split("  ", 1)[0]: line.split("  ", 1)[-1].strip()
        for line in cli("jobs", "show", job_id).stdout.splitlines()
    }
    assert rows["waiting for"] == "no live worker"


def test_show_gives_each_failed_steps_code_and_how_to_fix_it_and_each_steps_info(
    cli: Callable[..., Any], project: str, services: Services
) -> None:
    job_id = submit(cli, project)
    attempt = run(services, job_id)
    assert services.ops.heartbeat(attempt, None, [], info={"rows": 1200, "app_url": "https://spark.example.com/1"})
    failure = Failed("the export table is locked", code="table-locked", hint="wait for the nightly load to end")
    assert services.ops.record(attempt, failure, WORKER).accepted

    shown = cli("jobs", "show", job_id).stdout
    flat = " ".join(shown.split())  # the table wraps long cells
    assert flat.count("[table-locked] the export table is locked") == 2  # the job's error, and its step's
    assert "step 0 (sleep-1) how to fix: wait for the nightly load to end" in flat
    assert 'step 0 (sleep-1) info: rows=1200, app_url="https://spark.example.com/1"' in flat
    assert "waiting for" not in shown  # only a PENDING job waits

    listed = cli("jobs", "list", "--project", project, "--error-code", "table-locked", "--json").stdout
    assert f'"id": "{job_id}"' in listed
    other = cli("jobs", "list", "--project", project, "--error-code", "timeout", "--json").stdout
    assert '"items": []' in other
