"""A job's diagnostic bundle, `GET /api/v1/jobs/{id}/diagnostics` (docs/contract.md §4.13), and the redaction of
the settings it holds (`api.bundle`).

No worker runs here: the job's log lines and the workers that ran its steps are written straight to the store
(and the workers' registry in Redis), as a worker would leave them. A whole system, with a database password,
is tests/integration/test_diagnostics.py.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from jobctl.api.bundle import MASK, PACKAGES, public_settings, redact_url, scrub, versions
from jobctl.scheduler import keys
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import utcnow
from jobctl.workers.services import Services

FILES = {"manifest.json", "job.json", "events.json", "job-type.json", "workers.json", "settings.json", "versions.json"}


# ------------------------------------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://jobctl:s3cret@db:5432/jobctl", "postgresql+psycopg://jobctl:***@db:5432/jobctl"),
        ("postgresql+psycopg://jobctl@db/jobctl", "postgresql+psycopg://jobctl@db/jobctl"),  # no password
        ("redis://:p%40ss@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:p@ss:w@rd@host:6379", "redis://user:***@host:6379"),  # a raw @ in the password
        ("rediss://default:pw@host/1?ssl_cert_reqs=none", "rediss://default:***@host/1?ssl_cert_reqs=none"),
        (
            "postgresql://db/jobctl?user=u&password=pw&sslmode=require",
            "postgresql://db/jobctl?user=u&password=***&sslmode=require",
        ),
        ("http://flower:fl0wer@127.0.0.1:5555/", "http://flower:***@127.0.0.1:5555/"),
        ("sqlite:///./jobctl.db", "sqlite:///./jobctl.db"),
        ("not a url", "not a url"),
        ("", ""),
    ],
)
def test_a_url_keeps_everything_but_its_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_any_url_in_a_text_loses_its_password() -> None:
    text = "GET http://flower:pw@127.0.0.1:5555/task/x from redis://:p@ss@h:1/0, then postgresql+psycopg://u:pw@h/db"
    assert (
        scrub(text)
        == "GET http://flower:***@127.0.0.1:5555/task/x from redis://:***@h:1/0, then postgresql+psycopg://u:***@h/db"
    )
    for untouched in ("mail a@b.c at 12:30@x", "sqlite:///x", "http://user@host/", "https://host:8443/a@b"):
        assert scrub(untouched) == untouched


@pytest.mark.parametrize(
    ("flower_url", "link"),
    [
        ("https://ops:url-Passw0rd@flower.example/", "https://flower.example"),
        ("http://ops@[::1]:5555/flower", "http://[::1]:5555/flower"),
        ("https://flower.example:8443/f/", "https://flower.example:8443/f"),
        (None, "http://127.0.0.1:5555"),
    ],
)
def test_the_flower_link_in_every_job_never_holds_a_login(flower_url: str | None, link: str) -> None:
    """`flower_base_url` is the link in each job's JSON and in the monitor: a JOBCTL_FLOWER_URL with a user and
    password gives it without them (the browser asks for Flower's login)."""
    assert Settings(flower_url=flower_url, flower_port=5555).flower_base_url == link


def test_the_public_settings_hold_every_setting_and_no_secret(tmp_path: Path) -> None:
    settings = Settings(
        database_url="postgresql+psycopg://jobctl:db-Passw0rd@db:5432/jobctl",
        redis_url="redis://:redis-Passw0rd@cache:6379/2",
        admin_token="an-admin-token-of-some-length",
        flower_user="flower",
        flower_password="a-flower-passw0rd",
        flower_url="https://ops:url-Passw0rd@flower.example",
        cors_origins="https://a.example,https://b.example",
        file_root=tmp_path,
    )
    public = public_settings(settings)
    assert set(public) == set(Settings.model_fields)  # every setting, by name
    assert public["admin_token"] == MASK and public["flower_password"] == MASK
    assert public["database_url"] == "postgresql+psycopg://jobctl:***@db:5432/jobctl"
    assert public["redis_url"] == "redis://:***@cache:6379/2"
    assert public["flower_url"] == "https://ops:***@flower.example"
    assert public["cors_origins"] == "https://a.example,https://b.example"
    assert public["flower_user"] == "flower" and public["file_root"] == str(tmp_path) and public["lease_s"] == 15.0
    text = json.dumps(public)
    for secret in (
        "db-Passw0rd",
        "redis-Passw0rd",
        "an-admin-token-of-some-length",
        "a-flower-passw0rd",
        "url-Passw0rd",
    ):
        assert secret not in text
    unset = public_settings(Settings(admin_token=None, flower_password=None))
    assert unset["admin_token"] is None and unset["flower_password"] is None  # unset is told from set


def test_the_versions_are_jobctls_pythons_and_the_dependencies() -> None:
    found = versions()
    assert set(found) == {"python", *PACKAGES}
    assert all(isinstance(found[name], str) and found[name] for name in found)


# ------------------------------------------------------------------------------------------------ the route


def submit(client: TestClient, project: str) -> dict[str, Any]:
    response = client.post("/api/v1/jobs", json={"project": project, "type": "sleep", "params": {"steps": 2}})
    assert response.status_code == 201, response.text
    job: dict[str, Any] = response.json()
    return job


def ran(services: Services, job_id: str, index: int, worker: str, lines: list[str]) -> None:
    """What a worker leaves of step `index`: its name on the step, and log lines."""
    with services.db.write() as s:
        s.execute(
            update(models.Step).where(models.Step.job_id == job_id, models.Step.index == index).values(worker=worker)
        )
        rows = [{"job_id": job_id, "step_index": index, "at": utcnow(), "line": line} for line in lines]
        s.execute(insert(models.StepLog), rows)


def unzip(answer: Any) -> dict[str, str]:
    """The zip's files by their name inside its one folder, as text."""
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        names = archive.namelist()
        folders = {name.split("/", 1)[0] for name in names}
        assert len(folders) == 1, names
        return {name.split("/", 1)[1]: archive.read(name).decode("utf-8") for name in names}


def test_the_bundle_holds_the_job_its_events_logs_type_workers_settings_and_versions(
    client: TestClient, services: Services, project: str, user: Callable[..., dict[str, str]]
) -> None:
    job = submit(client, project)
    client.post(f"/api/v1/jobs/{job['id']}/pause")
    live, gone = "w-diag@host-a", "w-gone@host-b"
    ran(services, job["id"], 0, live, ["reading", "done"])
    ran(services, job["id"], 1, gone, ["ünïcode line"])
    services.redis.set(keys.worker(services.settings.queue, live), 3, ex=60)
    viewer = user({project: "viewer"})

    answer = client.get(f"/api/v1/jobs/{job['id']}/diagnostics", headers=viewer)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["content-disposition"] == f'attachment; filename="job-{job["id"]}-diagnostics.zip"'
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        assert archive.testzip() is None
        assert {name.split("/", 1)[0] for name in archive.namelist()} == {f"job-{job['id']}-diagnostics"}
    files = unzip(answer)
    assert set(files) == FILES | {"logs/0-sleep-1.log", "logs/1-sleep-2.log"}

    manifest = json.loads(files["manifest.json"])
    assert manifest["job"] == job["id"] and set(manifest["files"]) == set(files)
    shown = client.get(f"/api/v1/jobs/{job['id']}").json()
    bundled = json.loads(files["job.json"])
    assert {k: v for k, v in bundled.items() if k != "waiting_s"} == {
        k: v for k, v in shown.items() if k != "waiting_s"
    }
    assert json.loads(files["events.json"]) == client.get(f"/api/v1/jobs/{job['id']}/events").json()
    assert files["logs/0-sleep-1.log"] == "reading\ndone\n" and files["logs/1-sleep-2.log"] == "ünïcode line\n"
    [sleep] = [t for t in client.get("/api/v1/types").json() if t["name"] == "sleep"]
    assert json.loads(files["job-type.json"]) == sleep

    workers = json.loads(files["workers.json"])
    assert workers["workers"] == [
        {"name": live, "host": "host-a", "steps": [0], "live": True, "processes": 3},
        {"name": gone, "host": "host-b", "steps": [1], "live": False, "processes": None},
    ]
    assert "no pid or version" in workers["note"]
    settings = json.loads(files["settings.json"])
    assert set(settings) == set(Settings.model_fields) and settings["queue"] == services.settings.queue
    assert settings["admin_token"] == MASK and settings["flower_password"] == MASK
    assert json.loads(files["versions.json"]) == versions()

    everything = "\n".join(files.values())
    for secret in (services.settings.admin_token, services.settings.flower_password, viewer["Authorization"][7:]):
        assert secret and secret not in everything


def test_a_job_of_a_type_this_server_does_not_know_still_has_its_bundle(
    client: TestClient, services: Services, project: str
) -> None:
    job = submit(client, project)
    with services.db.write() as s:
        s.execute(update(models.Job).where(models.Job.id == job["id"]).values(type="retired"))
    files = unzip(client.get(f"/api/v1/jobs/{job['id']}/diagnostics"))
    assert json.loads(files["job-type.json"]) == {
        "name": "retired",
        "error": json.loads(files["job-type.json"])["error"],
    }
    assert "unknown job type 'retired'" in json.loads(files["job-type.json"])["error"]
    assert json.loads(files["workers.json"])["workers"] == []  # no step ran
    assert files["logs/0-sleep-1.log"] == ""


def test_whoever_cannot_see_the_job_gets_404(
    client: TestClient,
    anonymous: TestClient,
    project: str,
    new_project: Callable[[], str],
    user: Callable[..., dict[str, str]],
) -> None:
    job = submit(client, project)
    outsider = user({new_project(): "operator"})
    for headers, status in ((outsider, 404), ({"Authorization": "Bearer nope-nope-nope"}, 401)):
        answer = anonymous.get(f"/api/v1/jobs/{job['id']}/diagnostics", headers=headers)
        assert answer.status_code == status and answer.headers["content-type"] == "application/json"
    assert client.get(f"/api/v1/jobs/{'0' * 32}/diagnostics").status_code == 404


def test_the_openapi_document_states_the_zip(client: TestClient) -> None:
    route = client.app.openapi()["paths"]["/api/v1/jobs/{job_id}/diagnostics"]["get"]  # type: ignore[attr-defined]
    ok = route["responses"]["200"]
    assert ok["content"] == {"application/zip": {"schema": {"type": "string", "format": "binary"}}}
    assert "Content-Disposition" in ok["headers"] and "settings.json (no secrets)" in ok["description"]
    assert route["responses"]["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
