"""`jobctl jobs edit` and `jobctl jobs diagnose` (docs/contract.md §5.2), and the client calls under them and
under a batch's dry run (`Client.edit_params`, `JobHandle.edit`, `diagnostics`, `batch(dry_run=True)`, sync and
async; docs/contract.md §8.2), against the API in this process."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from jobctl.client import AsyncClient, Conflict, Invalid
from jobctl.client import Client as JobctlClient
from tests.cli.test_client_commands import (  # noqa: F401 - fixtures
    TOKEN,
    admin,
    cli,
    flat,
    http,
    no_client_environment,
    project,
    services,
    submit,
)


def paused(cli: Callable[..., Any], admin: JobctlClient, project: str) -> str:  # noqa: F811
    job_id = submit(cli, project, "--param", "steps=2", "--param", "seconds=0.5")
    admin.operate(job_id, "pause")
    return job_id


def test_edit_changes_the_params_given_over_the_current_ones(
    cli: Callable[..., Any],  # noqa: F811
    admin: JobctlClient,  # noqa: F811
    project: str,  # noqa: F811
) -> None:
    job_id = paused(cli, admin, project)
    result = cli("jobs", "edit", job_id[:12], "--param", "seconds=2", "--param", "fail_at=1")
    assert result.exit_code == 0, result.output
    assert flat(result.stdout) == f"{job_id} params edited: fail_at null -> 1; seconds 0.5 -> 2.0, still PAUSED"
    assert f"jobctl jobs resume {job_id}" in flat(result.stderr)
    params = admin.get_job(job_id).params
    assert (params["steps"], params["seconds"], params["fail_at"]) == (2, 2.0, 1)

    from_json = cli("jobs", "edit", job_id, "--params-json", '{"seconds": 3}', "--json")
    assert from_json.exit_code == 0, from_json.output
    assert json.loads(from_json.stdout)["params"]["seconds"] == 3.0 and admin.get_job(job_id).params["fail_at"] == 1

    replaced = cli("jobs", "edit", job_id, "--replace", "--params-json", '{"steps": 2}')
    assert replaced.exit_code == 0, replaced.output
    params = admin.get_job(job_id).params
    assert (params["seconds"], params["fail_at"]) == (1.0, None)  # the type's defaults again
    same = cli("jobs", "edit", job_id, "--param", "steps=2")
    assert same.exit_code == 0 and "params unchanged" in same.stdout

    events = [e for e in admin.job(job_id).events() if e.action == "edit"]
    assert len(events) == 3 and events[0].details is not None and events[0].details["new"]["fail_at"] == 1


def test_edit_is_refused_readably(
    cli: Callable[..., Any],  # noqa: F811
    admin: JobctlClient,  # noqa: F811
    project: str,  # noqa: F811
) -> None:
    pending = submit(cli, project)
    refused = cli("jobs", "edit", pending, "--param", "seconds=2")
    assert refused.exit_code == 1 and "cannot edit a job that is PENDING" in refused.stderr
    job_id = paused(cli, admin, project)
    for args, message in (
        (("--param", "seconds=-1"), "invalid params for job type 'sleep': seconds"),
        (("--param", "steps=5"), "these params plan other steps"),
        (("--param", "colour=red"), "colour"),
    ):
        result = cli("jobs", "edit", job_id, *args)
        assert result.exit_code == 1 and message in flat(result.stderr), (args, result.output)
    assert admin.get_job(job_id).params["seconds"] == 0.5
    nothing = cli("jobs", "edit", job_id)
    assert nothing.exit_code == 2 and "--param key=value or --params-json" in flat(nothing.output)


def test_diagnose_writes_the_bundle_and_prints_its_path(
    cli: Callable[..., Any],  # noqa: F811
    admin: JobctlClient,  # noqa: F811
    project: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = paused(cli, admin, project)
    target = tmp_path / "out.zip"
    result = cli("jobs", "diagnose", job_id[:10], "-o", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().splitlines()[-1] == str(target)
    with zipfile.ZipFile(target) as archive:
        job = json.loads(archive.read(f"job-{job_id}-diagnostics/job.json"))
        settings = archive.read(f"job-{job_id}-diagnostics/settings.json").decode()
    assert job["id"] == job_id and job["status"] == "PAUSED"
    assert TOKEN not in settings

    monkeypatch.chdir(tmp_path)
    default = cli("jobs", "diagnose", job_id)
    assert default.exit_code == 0 and default.stdout.strip() == f"job-{job_id}-diagnostics.zip"
    assert zipfile.is_zipfile(tmp_path / f"job-{job_id}-diagnostics.zip")
    missing = cli("jobs", "diagnose", "f" * 32)
    assert missing.exit_code == 1 and "not found" in missing.stderr
    unwritable = cli("jobs", "diagnose", job_id, "-o", str(tmp_path / "no" / "such" / "dir.zip"))
    assert unwritable.exit_code == 1 and "cannot write" in unwritable.stderr


def test_the_sync_client_edits_diagnoses_and_previews_a_batch(admin: JobctlClient, project: str) -> None:  # noqa: F811
    handle = admin.submit("sleep", project=project, params={"steps": 2})
    with pytest.raises(Conflict) as refused:
        handle.edit({"steps": 2, "seconds": 3})
    assert refused.value.status == "PENDING" and refused.value.allowed == ["pause", "discard"]
    handle.pause()
    assert handle.edit({"steps": 2, "seconds": 3}).params["seconds"] == 3.0 and handle.status == "PAUSED"
    with pytest.raises(Invalid, match="plan other steps"):
        admin.edit_params(handle.id, {"steps": 1})
    assert handle.events()[-1].details == {"old": {**handle.params, "seconds": 1.0}, "new": handle.params}

    with zipfile.ZipFile(io.BytesIO(handle.diagnostics())) as archive:
        assert f"job-{handle.id}-diagnostics/manifest.json" in archive.namelist()

    preview = admin.batch("resume", ids=[handle.id], dry_run=True)
    assert [(r.ok, r.status) for r in preview] == [(True, "PENDING")]
    assert handle.refresh().status == "PAUSED"  # nothing changed
    assert [r.status for r in admin.batch("resume", ids=[handle.id])] == ["PENDING"]


def test_the_async_client_does_the_same(http: TestClient, admin: JobctlClient, project: str) -> None:  # noqa: F811
    job_id = admin.submit("sleep", project=project, params={"steps": 2}).id
    admin.operate(job_id, "pause")

    async def go() -> tuple[float, bytes, list[bool], str]:
        transport = httpx.ASGITransport(app=http.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
            client = AsyncClient(token=TOKEN, http=raw)
            handle = await client.job(job_id)
            edited = await handle.edit({"steps": 2, "seconds": 4})
            bundle = await edited.diagnostics()
            preview = await client.batch("discard", filter={"project": project}, dry_run=True)
            job = await client.edit_params(job_id, {"steps": 2, "seconds": 5})
            return edited.params["seconds"], bundle, [r.ok for r in preview], str(job.params["seconds"])

    with ThreadPoolExecutor(1) as thread:  # a loop of its own, whatever runs in this one (Playwright's may)
        seconds, bundle, preview, last = thread.submit(asyncio.run, go()).result()
    assert seconds == 4.0 and zipfile.is_zipfile(io.BytesIO(bundle))
    assert preview == [True] and admin.get_job(job_id).status == "PAUSED" and last == "5.0"
