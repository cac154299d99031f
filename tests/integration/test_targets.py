"""Targets on a live system: file_digest, and auto-discard when a target goes or changes (acceptance 7, 8)."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from jobctl.api.app import create_app
from jobctl.states import JobStatus, is_valid_path
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer test-admin-token"}


@pytest.fixture(scope="module")
def api(system: System) -> Iterator[TestClient]:
    with TestClient(create_app(system.svc), headers=ADMIN) as client:
        yield client


def test_file_digest_records_the_sha256(system: System, project: str, file_root: Path) -> None:
    name = f"in/{uuid.uuid4().hex}.bin"
    path = file_root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    data = os.urandom(3 * (1 << 20) + 12345)
    path.write_bytes(data)

    job = system.submit(project, "file_digest", target=("file", name))
    assert [s.name for s in job.steps] == ["stat", "digest", "record"]
    done = system.wait_status(job.id, "FINISHED")
    assert done.result == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


@pytest.mark.parametrize("change", ["delete", "modify"])
def test_file_deleted_or_changed_while_digesting_discards_the_job(
    system: System, project: str, file_root: Path, change: str
) -> None:
    name = f"big-{uuid.uuid4().hex}.bin"
    path = file_root / name
    with open(path, "wb") as handle:  # sparse: large to hash, cheap to make
        handle.truncate(16 << 30)
    try:
        job = system.submit(project, "file_digest", target=("file", name))
        system.wait_step_running(job.id, 1, min_progress=0.5, timeout=20)
        changed_at = time.monotonic()
        if change == "delete":
            path.unlink()
        else:
            with open(path, "ab") as handle:
                handle.write(b"x")
        gone = system.wait_status(job.id, "DISCARDED", timeout=2.5)
        assert time.monotonic() - changed_at < 2.0
        assert gone.discard_reason and name in gone.discard_reason
        assert ("no longer exists" if change == "delete" else "changed") in gone.discard_reason
        assert gone.steps[1].status is JobStatus.DISCARDED
        assert system.events(job.id)[-1] == ("RUNNING", "DISCARDED", "auto-discard")
    finally:
        path.unlink(missing_ok=True)


def test_target_outside_the_file_root_is_refused(api: TestClient, project: str, file_root: Path) -> None:
    outside = file_root.parent / "outside.txt"
    outside.write_text("secret")
    (file_root / "escape-link").unlink(missing_ok=True)
    (file_root / "escape-link").symlink_to(outside)
    for name in ["../outside.txt", str(outside), "escape-link", "a/../../outside.txt"]:
        response = api.post(
            "/api/v1/jobs", json={"project": project, "type": "file_digest", "target": {"kind": "file", "name": name}}
        )
        assert response.status_code == 422, (name, response.text)
    assert api.get("/api/v1/jobs", params={"project": project}).json()["total"] == 0


def _rows(system: System, job_id: str) -> list[dict[str, object]]:
    with system.svc.db.engine.connect() as conn:
        job = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM jobs WHERE id = :i"), {"i": job_id})]
        steps = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM steps WHERE job_id = :i"), {"i": job_id})]
    return job + steps


def test_deleting_a_record_target_discards_its_unfinished_jobs(system: System, api: TestClient) -> None:
    project = system.project(max_running=1)
    record = f"table-{uuid.uuid4().hex[:6]}"
    assert api.put(
        f"/api/v1/projects/{project}/targets/record/{record}", json={"attributes": {"v": 1}}
    ).status_code in (200, 201)
    target = ("record", record)
    finished = system.submit(project, params={"steps": 1, "seconds": 0}, target=target)
    system.wait_status(finished.id, "FINISHED")
    error = system.submit(project, params={"steps": 1, "seconds": 0, "fail_at": 0}, target=target)
    system.wait_status(error.id, "ERROR")
    running = system.submit(project, params={"steps": 1, "seconds": 60}, target=target)
    system.wait_step_running(running.id, 0)
    pending = system.submit(project, params={"steps": 1, "seconds": 60}, target=target)
    paused = system.submit(project, params={"steps": 1, "seconds": 60}, target=target)
    system.op(paused.id, "pause")
    assert system.job(pending.id).status is JobStatus.PENDING
    finished_rows = _rows(system, finished.id)

    started = time.monotonic()
    response = api.delete(f"/api/v1/projects/{project}/targets/record/{record}")
    assert response.status_code in (200, 204), response.text
    for job in (pending, running, paused, error):
        gone = system.wait_status(job.id, "DISCARDED", timeout=1.0)
        assert gone.discard_reason and record in gone.discard_reason and "no longer exists" in gone.discard_reason
        assert is_valid_path(system.events(job.id))
    assert time.monotonic() - started < 1.0
    assert _rows(system, finished.id) == finished_rows  # FINISHED jobs stay untouched

    # The running step was really stopped: its attempt no longer holds the worker's process.
    wait_until(lambda: system.job(running.id).steps[0].fence is None, 2, "the running attempt to be released")


def test_changing_a_record_target_discards_jobs_pinned_to_the_old_version(system: System, api: TestClient) -> None:
    project = system.project()
    record = f"table-{uuid.uuid4().hex[:6]}"
    api.put(f"/api/v1/projects/{project}/targets/record/{record}", json={"attributes": {"v": 1}})
    job = system.submit(project, params={"steps": 1, "seconds": 60}, target=("record", record))
    system.wait_step_running(job.id, 0)
    api.put(f"/api/v1/projects/{project}/targets/record/{record}", json={"attributes": {"v": 1}})  # no change
    assert system.job(job.id).status is JobStatus.RUNNING
    api.put(f"/api/v1/projects/{project}/targets/record/{record}", json={"attributes": {"v": 2}})
    gone = system.wait_status(job.id, "DISCARDED", timeout=1.0)
    assert gone.discard_reason and "changed" in gone.discard_reason


def test_a_step_error_names_the_file_relative_to_the_file_root(system: System, project: str, file_root: Path) -> None:
    """A step's error is shown to every viewer of the project: it names the target, never the server's paths."""
    name = f"dir-{uuid.uuid4().hex}"
    (file_root / name).mkdir()
    job = system.submit(project, "file_digest", target=("file", name))
    failed = system.wait_status(job.id, "ERROR", timeout=30)
    error = failed.steps[1].error or ""
    assert "IsADirectoryError" in error and f"'{name}'" in error, error
    assert str(file_root.resolve()) not in error and str(file_root.absolute()) not in error


def test_paths_under_the_file_root_are_written_relative_to_it(tmp_path: Path) -> None:
    from jobctl.workers.runtime import relative_to_file_root

    root = tmp_path / "data"
    text = f"cannot open '{root.resolve()}/a/b.txt' (nor {root.absolute()}/c); '/etc/passwd' stays"
    assert relative_to_file_root(text, root) == "cannot open 'a/b.txt' (nor c); '/etc/passwd' stays"
