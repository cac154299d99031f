"""A job's diagnostic bundle from a whole system whose settings hold secrets (docs/contract.md §4.13,
docs/security.md): none of them is anywhere in the zip.

The system has its own database - on PostgreSQL reached with a password in `JOBCTL_DATABASE_URL` (the test
server trusts local connections, so any password is accepted) - an admin token, a Flower password and a Flower
URL with a password in it; a real worker runs the job, a real API server (uvicorn) answers.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import env_for
from tests.e2e.browser import create_user
from tests.integration.system import System
from tests.secrets_check import remember

pytestmark = pytest.mark.integration

DB_PASSWORD = "s3cret-db-pw"
FLOWER_PASSWORD = "fl0wer-secret-password"
FLOWER_URL_PASSWORD = "fl0wer-url-secret"
ADMIN_TOKEN = "diagnostics-admin-token-0123456789"


def test_no_token_or_password_is_in_the_bundle(dedicated: Callable[..., System], backend: str) -> None:
    probe = dedicated()  # only for its fresh database's URL
    url = probe.settings.database_url
    if backend == "postgresql":
        assert url.startswith("postgresql+psycopg://postgres@")
        url = url.replace("postgres@", f"postgres:{DB_PASSWORD}@", 1)
    live = dedicated(
        database_url=url,
        admin_token=ADMIN_TOKEN,
        flower_password=FLOWER_PASSWORD,
        flower_url=f"http://flower:{FLOWER_URL_PASSWORD}@127.0.0.1:5555",
    )
    for secret in (DB_PASSWORD, FLOWER_PASSWORD, FLOWER_URL_PASSWORD, ADMIN_TOKEN):
        remember(secret)  # the session also fails if any of them reaches a log
    assert ADMIN_TOKEN in env_for(live.settings).values()
    live.start_scheduler()
    live.start_worker(concurrency=2, name="diag@worker-host")
    _, api = live.start_api()
    project = live.project()
    job = live.submit(project, params={"steps": 2, "seconds": 0.1})
    live.wait_status(job.id, "FINISHED", timeout=30)

    with httpx.Client(base_url=f"{api}/api/v1", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}) as admin:
        viewer = create_user(admin, {project: "viewer"})
        answer = httpx.get(
            f"{api}/api/v1/jobs/{job.id}/diagnostics", headers={"Authorization": f"Bearer {viewer}"}, timeout=10
        )
    assert answer.status_code == 200, answer.text
    with zipfile.ZipFile(io.BytesIO(answer.content)) as archive:
        files = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}

    secrets = [FLOWER_PASSWORD, FLOWER_URL_PASSWORD, ADMIN_TOKEN, viewer]
    if backend == "postgresql":
        secrets.append(DB_PASSWORD)
    for name, content in files.items():
        for secret in secrets:
            assert secret.encode() not in content, f"a secret of {len(secret)} characters is in {name}"

    settings = json.loads(files["settings.json"])
    assert settings["database_url"] == url.replace(DB_PASSWORD, "***")
    assert settings["flower_url"] == "http://flower:***@127.0.0.1:5555"
    assert settings["admin_token"] == settings["flower_password"] == "***"
    workers = json.loads(files["workers.json"])["workers"]
    assert workers == [
        {"name": "diag@worker-host", "host": "worker-host", "steps": [0, 1], "live": True, "processes": 2}
    ]
    assert json.loads(files["job.json"])["status"] == "FINISHED"
    assert b"done" in files["logs/0-sleep-1.log"] and b"done" in files["logs/1-sleep-2.log"]
