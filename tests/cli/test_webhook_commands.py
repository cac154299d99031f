"""`jobctl webhooks ...` against a real in-process API (the fixtures of test_client_commands.py): create prints
the secret last and only then, list never shows it, the delivery log as the scheduler's tailer fills it, and a
refusal exits 1 with the server's message."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jobctl.api.webhook_schemas import job_json
from jobctl.client import Client
from jobctl.scheduler.webhook_tail import Tailer
from jobctl.workers.services import Services
from tests.cli.test_client_commands import admin, cli, flat, http, no_client_environment, project, services, submit

__all__ = ["admin", "cli", "http", "no_client_environment", "project", "services"]  # the fixtures used here


def test_create_list_deliveries_and_delete(cli: Callable[..., Any], services: Services, project: str) -> None:
    made = cli("webhooks", "create", project, "https://ops.example.com/in", "--status", "pending", "--status", "PAUSED")
    assert made.exit_code == 0, made.output
    lines = made.stdout.strip().splitlines()
    assert lines[0].startswith("created webhook ") and lines[0].endswith("PENDING,PAUSED to https://ops.example.com/in")
    hook_id, secret = lines[0].split()[2], lines[-1]
    assert len(secret) >= 32

    listed = cli("webhooks", "list", project)
    assert listed.exit_code == 0 and hook_id in listed.stdout and "PENDING," in listed.stdout
    assert secret not in listed.stdout
    as_json = json.loads(cli("webhooks", "list", project, "--json").stdout)
    assert [(h["id"], h["url"]) for h in as_json] == [(hook_id, "https://ops.example.com/in")]
    assert "secret" not in as_json[0]

    job = submit(cli, project)
    tailer = Tailer(services.db, lambda j: job_json(j, None))
    while tailer.run_pass():
        pass
    log = cli("webhooks", "deliveries", project, hook_id)
    assert log.exit_code == 0, log.output
    assert (
        job[:12] in log.stdout
        and "submit → PENDING" in log.stdout
        and "pending" in log.stdout
        and log.stdout.strip().endswith("1 of 1 deliveries (page 1)")
    )
    page = json.loads(cli("webhooks", "deliveries", project, hook_id, "--json").stdout)
    assert page["total"] == 1 and page["items"][0]["event"]["to"] == "PENDING"

    deleted = cli("webhooks", "delete", project, hook_id)
    assert deleted.exit_code == 0 and deleted.stdout.strip() == f"deleted webhook {hook_id} in {project}"
    assert json.loads(cli("webhooks", "list", project, "--json").stdout) == []


def test_a_refusal_exits_1_with_the_servers_message(cli: Callable[..., Any], admin: Client, project: str) -> None:
    bad = cli("webhooks", "create", project, "ftp://files.example.com/", "--status", "ERROR")
    assert bad.exit_code == 1 and "http:// or https://" in flat(bad.output)
    viewer = admin.create_user(f"v{project}", roles={project: "viewer"}).token
    refused = cli("webhooks", "list", project, token=viewer)
    assert refused.exit_code == 1 and "operator role" in flat(refused.output)
    gone = cli("webhooks", "delete", project, "0" * 32)
    assert gone.exit_code == 1 and "not found" in flat(gone.output)
