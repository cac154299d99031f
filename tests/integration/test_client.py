"""`jobctl.client` and the client commands against a live system (scheduler, prefork worker, real API server)
with the README's export plugin: the README's client example as it stands, 100 export jobs through
`submit_many`, and every handle method; `make test` runs them on SQLite (`ONE_BACKEND` in tests/conftest.py), `-k
postgresql` on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from jobctl.client import (
    AsyncClient,
    Client,
    Conflict,
    Forbidden,
    Invalid,
    JobDiscarded,
    JobFailed,
    JobStatus,
    NotFound,
    Unauthorized,
)
from jobctl.scheduler.store import accounts
from tests.conftest import env_for
from tests.integration.system import System, wait_until
from tests.integration.test_authoring import live, plugin_dir, readme_python  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration
TOKEN = "test-admin-token"


@pytest.fixture(scope="module")
def api(live: System) -> str:  # noqa: F811
    return live.start_api()[1]


@pytest.fixture
def client(api: str) -> Iterator[Client]:
    with Client(api, token=TOKEN) as c:
        yield c


@pytest.fixture
def project(live: System) -> Iterator[str]:  # noqa: F811
    name = live.project()
    yield name
    live.settle(name)


def test_the_readme_client_example_runs_as_it_stands(live: System, api: str, tmp_path: Path) -> None:  # noqa: F811
    with live.svc.db.write() as s:
        if not any(p.name == "demo" for p in accounts.list_projects(s)):
            accounts.create_project(s, "demo", None)
    script = tmp_path / "client_example.py"
    script.write_text(readme_python("Use jobctl from Python"))
    env = {**os.environ, "JOBCTL_URL": api, "JOBCTL_TOKEN": TOKEN}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "{'rows': 20, 'columns': ['id', 'total']}"
    assert "FINISHED ['delete']" in lines and lines[-1] == "[{'slept': 0.0}]"
    assert any(line.startswith("RUNNING ") or line.startswith("PENDING ") for line in lines)


def test_a_hundred_export_jobs_from_submit_many_all_reach_their_result(client: Client, project: str) -> None:
    tables = [f"t{uuid.uuid4().hex[:6]}" for _ in range(10)]
    for name in tables:
        client.targets.put(project, name, {"columns": ["id"]})
    jobs = client.submit_many(
        [
            {"type": "export_table", "project": project, "params": {"rows": 5, "row_s": 0}, "target": ("record", t)}
            for t in tables
            for _ in range(10)
        ]
    )
    assert len(jobs) == 100 and len({j.id for j in jobs}) == 100
    assert [j.result(timeout=120) for j in jobs] == [{"rows": 5, "columns": ["id"]}] * 100


def test_submit_many_is_all_or_nothing(client: Client, project: str) -> None:
    with pytest.raises(Invalid) as refused:
        client.submit_many([{"type": "sleep", "project": project}, {"type": "nope", "project": project}])
    assert [item["index"] for item in refused.value.items] == [1]
    assert list(client.jobs(project=project)) == []


def test_result_wait_and_the_errors_of_an_ending_job(client: Client, project: str) -> None:
    failing = client.submit("sleep", project=project, params={"steps": 1, "seconds": 0, "fail_at": 0})
    with pytest.raises(JobFailed) as failed:
        failing.result(timeout=30)
    assert failed.value.job.status is JobStatus.ERROR and "failed on purpose" in str(failed.value.error)

    slow = client.submit("sleep", project=project, params={"steps": 1, "seconds": 30})
    with pytest.raises(TimeoutError):
        slow.wait(timeout=0.3)
    slow.discard()
    with pytest.raises(JobDiscarded) as discarded:
        slow.result(timeout=10)
    assert "discarded by admin" in str(discarded.value.reason)


def test_operations_conflicts_events_and_logs(client: Client, project: str) -> None:
    job = client.submit("sleep", project=project, params={"steps": 2, "seconds": 0.2})
    assert job.pause().status is JobStatus.PAUSED
    with pytest.raises(Conflict) as refused:
        job.pause()
    assert refused.value.status == "PAUSED" and refused.value.allowed == ["resume", "restart", "discard"]
    job.resume()
    assert job.result(timeout=30) == {"slept": 0.2}
    actions = [e.action for e in job.events()]
    assert actions[0] == "submit" and actions[-1] == "finish"
    assert actions.index("pause") < actions.index("resume")
    assert "done" in job.log(step=1, tail=5)
    assert [s.output for s in job.steps] == [{"slept": 0.2}, {"slept": 0.2}]
    job.delete()
    with pytest.raises(NotFound):
        job.refresh()


def test_restart_runs_every_step_again(client: Client, project: str) -> None:
    job = client.submit("sleep", project=project, params={"steps": 2, "seconds": 0})
    assert job.result(timeout=30) == {"slept": 0.0}
    with pytest.raises(Conflict) as refused:
        job.restart()
    assert refused.value.status == "FINISHED" and refused.value.allowed == ["delete"]
    paused = client.submit("sleep", project=project, params={"steps": 2, "seconds": 30}).pause()
    assert paused.restart().status is JobStatus.PENDING
    assert client.job(paused.id).id == paused.id
    actions = [e.action for e in paused.discard().events()]
    assert actions.index("pause") < actions.index("restart") and actions[-1] == "discard"


def test_who_may_do_what(client: Client, api: str, project: str) -> None:
    me = client.me()
    assert me.name == "admin" and me.admin
    viewer = client.create_user(f"v{uuid.uuid4().hex[:8]}", roles={project: "viewer"})
    with Client(api, token=viewer.token) as as_viewer:
        assert [p.name for p in as_viewer.list_projects()] == [project]
        with pytest.raises(Forbidden):
            as_viewer.submit("sleep", project=project)
    with Client(api, token="not-a-token-anyone-has") as stranger, pytest.raises(Unauthorized) as refused:
        stranger.me()
    assert "not-a-token-anyone-has" not in str(refused.value)
    with pytest.raises(Invalid):
        client.submit("sleep", project=project, params={"steps": 0})
    with pytest.raises(NotFound):
        client.submit("sleep", project="no-such-project")


def test_a_deleted_target_discards_the_job_a_watch_follows(client: Client, project: str) -> None:
    client.targets.put(project, "orders", {"columns": ["id"]})
    job = client.submit(
        "export_table", project=project, params={"rows": 100_000, "row_s": 0.01}, target=("record", "orders")
    )
    updates = job.watch()
    assert next(updates).id == job.id
    client.targets.delete(project, "orders")
    assert [u.status for u in updates][-1] is JobStatus.DISCARDED
    with pytest.raises(JobDiscarded) as discarded:
        job.result(timeout=5)
    assert "orders" in str(discarded.value.reason)


def test_watch_follows_a_job_until_it_is_final(client: Client, project: str) -> None:
    job = client.submit("sleep", project=project, params={"steps": 2, "seconds": 0.5})
    updates = list(job.watch())
    assert updates[-1].status is JobStatus.FINISHED and job.status is JobStatus.FINISHED
    assert any(u.status is JobStatus.RUNNING and 0 < u.progress < 100 for u in updates)
    assert [u.status for u in job.watch()] == [JobStatus.FINISHED]  # final already: its state, once


def test_jobs_reads_every_page_and_batch_operates_them(client: Client, project: str) -> None:
    submitted = client.submit_many([{"type": "sleep", "project": project, "params": {"seconds": 60}}] * 7)
    listed = list(client.jobs(project=project, page_size=3))
    assert sorted(j.id for j in listed) == sorted(j.id for j in submitted)
    results = client.batch("discard", filter={"project": [project]})
    assert len(results) == 7 and all(r.ok for r in results)
    assert {j.status for j in client.jobs(project=project, status="DISCARDED")} == {JobStatus.DISCARDED}


def test_targets_and_types(client: Client, project: str) -> None:
    target = client.targets.put(project, "orders", {"columns": ["id"]})
    assert target.version == 1 and client.targets.put(project, "orders", {"columns": ["x"]}).version == 2
    assert [(t.name, t.attributes) for t in client.targets.list(project)] == [("orders", {"columns": ["x"]})]
    deleted = client.targets.delete(project, "orders")
    assert deleted is not None and deleted.discarded == [] and client.targets.list(project) == []
    export = {t.name: t for t in client.types()}["export_table"]
    assert [s.name for s in export.steps or []] == ["count", "write"] and export.exclusive == "target"
    assert export.target_kind == "record" and "rows" in export.params_schema["properties"]


def test_the_async_client_does_the_same(api: str, project: str) -> None:
    async def scenario() -> tuple[Any, list[str]]:
        async with AsyncClient(api, token=TOKEN) as c:
            job = await c.submit("sleep", project=project, params={"steps": 1, "seconds": 0.1})
            result = await job.result(timeout=30)
            many = await c.submit_many([{"type": "sleep", "project": project, "params": {"seconds": 0}}] * 3)
            statuses = [u.status async for u in many[0].watch()]
            seen = [j.id async for j in c.jobs(project=project, page_size=2)]
            assert len(seen) == 4
            assert [t.name for t in await c.types()] == [t.name for t in Client(api, token=TOKEN).types()]
            await c.targets.put(project, "a", {"k": 1})
            assert [t.name for t in await c.targets.list(project)] == ["a"]
            slow = await c.submit("sleep", project=project, params={"seconds": 30})
            assert (await slow.pause()).status is JobStatus.PAUSED
            with pytest.raises(Conflict):
                await slow.pause()
            assert [r.ok for r in await c.batch("discard", ids=[slow.id])] == [True]
            with pytest.raises(JobDiscarded):
                await slow.result(timeout=10)
            assert [e.action for e in await slow.events()][-1] == "discard"
            assert "done" in await job.log(step=0, tail=1)
            return result, [s.value for s in statuses]

    with ThreadPoolExecutor(1) as thread:  # a loop of its own: the browser tests may leave one on this thread
        result, statuses = thread.submit(asyncio.run, scenario()).result(timeout=120)
    assert result == {"slept": 0.1} and statuses[-1] == "FINISHED"


def _cli(live: System, api: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:  # noqa: F811
    environ = {**env_for(live.settings), "JOBCTL_URL": api, "JOBCTL_TOKEN": TOKEN, **env}
    return subprocess.run(
        [sys.executable, "-m", "jobctl.cli", *args], env=environ, capture_output=True, text=True, timeout=120
    )


def test_cli_types_targets_and_submit_wait(live: System, api: str, project: str) -> None:  # noqa: F811
    types = _cli(live, api, "--json", "types")
    assert types.returncode == 0, types.stderr
    assert "export_table" in {t["name"] for t in json.loads(types.stdout)}
    assert "planned from the params" in _cli(live, api, "types").stdout

    put = _cli(live, api, "targets", "put", project, "orders", "--attr", 'columns=["id"]')
    assert put.returncode == 0 and "version 1" in put.stdout, put.stderr
    listed = json.loads(_cli(live, api, "targets", "list", project, "--json").stdout)
    assert [(t["name"], t["attributes"]) for t in listed] == [("orders", {"columns": ["id"]})]

    args = ["jobs", "submit", "-p", project, "-t", "export_table", "--target", "record:orders", "--wait"]
    done = _cli(live, api, *args, "--param", "rows=3", "--param", "row_s=0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {"rows": 3, "columns": ["id"]}

    failed = _cli(
        live,
        api,
        "jobs",
        "submit",
        "-p",
        project,
        "-t",
        "sleep",
        "--param",
        "fail_at=0",
        "--param",
        "steps=1",
        "--param",
        "seconds=0",
        "--wait",
    )
    assert failed.returncode == 1 and "failed on purpose" in failed.stderr

    deleted = _cli(live, api, "targets", "delete", project, "orders")
    assert deleted.returncode == 0 and "deleted record orders" in deleted.stdout


def test_cli_submit_wait_of_a_discarded_job_exits_1_with_the_reason(
    live: System,  # noqa: F811
    api: str,
    client: Client,
    project: str,
) -> None:
    environ = {**env_for(live.settings), "JOBCTL_URL": api, "JOBCTL_TOKEN": TOKEN}
    argv = [sys.executable, "-m", "jobctl.cli", "jobs", "submit", "-p", project, "-t", "sleep", "--wait"]
    with subprocess.Popen(
        [*argv, "--param", "seconds=60"], env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as waiting:
        running = wait_until(lambda: list(client.jobs(project=project, status="RUNNING")), 30, "the job to run")
        job = running[0].discard()
        out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 1 and out == ""
    assert f"jobctl: job {job.id} was discarded: discarded by admin" in err


def test_cli_default_url_follows_the_api_port(live: System, api: str) -> None:  # noqa: F811
    port = api.rsplit(":", 1)[1]
    environ = {k: v for k, v in env_for(live.settings).items() if k != "JOBCTL_URL"}
    environ.update(JOBCTL_API_PORT=port, JOBCTL_TOKEN=TOKEN)
    done = subprocess.run(
        [sys.executable, "-m", "jobctl.cli", "projects", "list", "--json"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)
