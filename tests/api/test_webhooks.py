"""Webhooks over the API (docs/contract.md §4.11): create, list and delete them, their secret answered once, the
422s of bad input (which change nothing), who may do what, the audit entries, the address guard outside
development, and the delivery log as the scheduler's tailer fills it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.api.app import create_app
from jobctl.api.webhook_schemas import job_json
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.webhook_tail import Tailer
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.api.conftest import ADMIN

URL = "https://hooks.example.com/jobctl?token=abc"


def _hooks(client: TestClient, project: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    answer = client.get(f"/api/v1/projects/{project}/webhooks", headers=headers)
    assert answer.status_code == 200, answer.text
    hooks: list[dict[str, Any]] = answer.json()
    return hooks


def _audit(client: TestClient, project: str) -> list[dict[str, Any]]:
    items = client.get("/api/v1/audit", params={"action": "webhook.", "page_size": 200}).json()["items"]
    return [e for e in reversed(items) if e["subject"].startswith(f"{project}/webhook/")]


def test_create_list_delete_and_the_secret_is_answered_once(client: TestClient, project: str) -> None:
    given = client.post(
        f"/api/v1/projects/{project}/webhooks",
        json={"url": URL, "statuses": ["FINISHED", "ERROR", "FINISHED"], "secret": "s3cret-given-by-me!"},
    )
    assert given.status_code == 201, given.text
    made = given.json()
    assert made["secret"] == "s3cret-given-by-me!"
    assert made["statuses"] == ["FINISHED", "ERROR"]  # each once, in the order given
    assert (made["project"], made["url"], made["created_by"]) == (project, URL, "admin")

    generated = client.post(
        f"/api/v1/projects/{project}/webhooks", json={"url": "http://127.0.0.1:9/x", "statuses": ["RUNNING"]}
    )
    assert generated.status_code == 201, generated.text
    secret = generated.json()["secret"]
    assert len(secret) >= 32 and secret != made["secret"]

    listed = _hooks(client, project)
    assert [h["id"] for h in listed] == [made["id"], generated.json()["id"]]
    assert all("secret" not in h for h in listed)
    assert "s3cret-given-by-me!" not in json.dumps(listed) and secret not in json.dumps(listed)

    assert client.delete(f"/api/v1/projects/{project}/webhooks/{made['id']}").status_code == 204
    assert [h["id"] for h in _hooks(client, project)] == [generated.json()["id"]]
    again = client.delete(f"/api/v1/projects/{project}/webhooks/{made['id']}")
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"


BAD_BODIES = [
    {"url": "ftp://files.example.com/x", "statuses": ["FINISHED"]},
    {"url": "http://", "statuses": ["FINISHED"]},
    {"url": "/only/a/path", "statuses": ["FINISHED"]},
    {"url": "hooks.example.com/x", "statuses": ["FINISHED"]},
    {"url": "http://hooks.example.com/" + "a" * 2025, "statuses": ["FINISHED"]},  # 2049 characters
    {"url": "http://hooks example.com/", "statuses": ["FINISHED"]},
    {"url": "http://hooks.example.com/\tx", "statuses": ["FINISHED"]},
    {"url": "http://hooks.example.com:99999/", "statuses": ["FINISHED"]},
    {"url": 5, "statuses": ["FINISHED"]},
    {"url": URL, "statuses": []},
    {"url": URL, "statuses": ["DONE"]},
    {"url": URL, "statuses": "FINISHED"},
    {"url": URL},
    {"statuses": ["FINISHED"]},
    {"url": URL, "statuses": ["FINISHED"], "secret": "too-short"},
    {"url": URL, "statuses": ["FINISHED"], "secret": "has spaces in it, sadly"},
    {"url": URL, "statuses": ["FINISHED"], "secret": "x" * 257},
    {"url": URL, "statuses": ["FINISHED"], "events": ["job"]},
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_input_is_422_and_creates_nothing(client: TestClient, project: str, body: dict[str, Any]) -> None:
    answer = client.post(f"/api/v1/projects/{project}/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "invalid"
    assert _hooks(client, project) == []


def test_a_url_of_2048_characters_is_accepted(client: TestClient, project: str) -> None:
    url = "http://hooks.example.com/" + "a" * 2023
    assert len(url) == 2048
    answer = client.post(f"/api/v1/projects/{project}/webhooks", json={"url": url, "statuses": ["PAUSED"]})
    assert answer.status_code == 201, answer.text


def test_operators_manage_webhooks_viewers_get_403_and_strangers_404(
    client: TestClient, project: str, user: Callable[..., dict[str, str]]
) -> None:
    operator, viewer, stranger = user({project: "operator"}), user({project: "viewer"}), user({})
    body = {"url": URL, "statuses": ["ERROR"]}
    made = client.post(f"/api/v1/projects/{project}/webhooks", json=body, headers=operator)
    assert made.status_code == 201, made.text
    hook = made.json()["id"]
    assert made.json()["created_by"] != "admin"
    assert [h["id"] for h in _hooks(client, project, operator)] == [hook]
    paths = [
        ("POST", f"/api/v1/projects/{project}/webhooks", body),
        ("GET", f"/api/v1/projects/{project}/webhooks", None),
        ("GET", f"/api/v1/projects/{project}/webhooks/{hook}/deliveries", None),
        ("DELETE", f"/api/v1/projects/{project}/webhooks/{hook}", None),
    ]
    for headers, status in ((viewer, 403), (stranger, 404)):
        for method, path, json_body in paths:
            answer = client.request(method, path, json=json_body, headers=headers)
            assert answer.status_code == status, (method, path, answer.text)
    assert [h["id"] for h in _hooks(client, project)] == [hook]  # nothing changed
    assert client.get("/api/v1/projects/no-such-project/webhooks").status_code == 404
    assert client.post("/api/v1/projects/no-such-project/webhooks", json=body).status_code == 404
    assert client.get(f"/api/v1/projects/{project}/webhooks/{'0' * 32}/deliveries").status_code == 404
    assert client.delete(f"/api/v1/projects/{project}/webhooks/{hook}", headers=operator).status_code == 204


def test_a_webhook_is_reached_only_through_its_own_project(client: TestClient, new_project: Callable[[], str]) -> None:
    mine, other = new_project(), new_project()
    hook = client.post(f"/api/v1/projects/{mine}/webhooks", json={"url": URL, "statuses": ["ERROR"]}).json()["id"]
    assert client.get(f"/api/v1/projects/{other}/webhooks/{hook}/deliveries").status_code == 404
    assert client.delete(f"/api/v1/projects/{other}/webhooks/{hook}").status_code == 404
    assert [h["id"] for h in _hooks(client, mine)] == [hook]


def test_changes_are_audited_without_the_secret(
    client: TestClient, project: str, user: Callable[..., dict[str, str]]
) -> None:
    secret = "audit-me-never-0123456789"
    url = "https://user:password@hooks.example.com:8443/in?token=hidden#frag"
    made = client.post(
        f"/api/v1/projects/{project}/webhooks", json={"url": url, "statuses": ["FINISHED"], "secret": secret}
    )
    assert made.status_code == 201, made.text
    hook = made.json()["id"]
    viewer = user({project: "viewer"})
    assert client.delete(f"/api/v1/projects/{project}/webhooks/{hook}", headers=viewer).status_code == 403
    assert client.delete(f"/api/v1/projects/{project}/webhooks/{hook}").status_code == 204
    entries = _audit(client, project)
    assert [(e["action"], e["outcome"]) for e in entries] == [
        ("webhook.create", "ok"),
        ("webhook.delete", "forbidden"),
        ("webhook.delete", "ok"),
    ]
    assert all(e["subject"] == f"{project}/webhook/{hook}" for e in entries)
    created = entries[0]
    assert created["actor"] == "admin"
    assert created["details"] == {"id": hook, "url": "https://hooks.example.com:8443/in", "statuses": ["FINISHED"]}
    assert entries[2]["details"]["url"] == "https://hooks.example.com:8443/in"
    text = json.dumps(entries)
    for hidden in (secret, "password", "hidden", "frag"):
        assert hidden not in text


# -- the address guard ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def production(settings: Settings) -> Iterator[TestClient]:
    """The API with `JOBCTL_ENV=production` (over the same database)."""
    built = build(settings.model_copy(update={"env": "production"}))
    try:
        with TestClient(create_app(built), headers=ADMIN) as test_client:
            yield test_client
    finally:
        built.close()


PRIVATE = [
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://10.1.2.3/hook",
    "https://172.16.0.1/hook",
    "http://192.168.1.10/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://0.0.0.0/hook",
    "http://100.64.0.1/hook",
    "http://[::1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://2130706433/hook",  # 127.0.0.1 as one number
]


@pytest.mark.parametrize("url", PRIVATE)
def test_production_refuses_private_addresses_and_records_the_refusal(
    production: TestClient, project: str, url: str
) -> None:
    answer = production.post(f"/api/v1/projects/{project}/webhooks", json={"url": url, "statuses": ["ERROR"]})
    assert answer.status_code == 422, answer.text
    assert "public address" in answer.json()["error"]["message"]
    assert _hooks(production, project) == []
    assert [(e["action"], e["outcome"]) for e in _audit(production, project)] == [("webhook.create", "invalid")]


def test_production_takes_a_public_address(production: TestClient, project: str) -> None:
    answer = production.post(
        f"/api/v1/projects/{project}/webhooks", json={"url": "https://93.184.215.14/hook", "statuses": ["ERROR"]}
    )
    assert answer.status_code == 201, answer.text


def test_production_allows_private_addresses_when_told_to(settings: Settings, project: str) -> None:
    built = build(settings.model_copy(update={"env": "production", "webhook_allow_private": True}))
    try:
        with TestClient(create_app(built), headers=ADMIN) as allowed:
            answer = allowed.post(
                f"/api/v1/projects/{project}/webhooks", json={"url": "http://127.0.0.1:9/x", "statuses": ["ERROR"]}
            )
            assert answer.status_code == 201, answer.text
    finally:
        built.close()


def test_development_allows_private_addresses(client: TestClient, project: str) -> None:
    answer = client.post(
        f"/api/v1/projects/{project}/webhooks", json={"url": "http://localhost:1/x", "statuses": ["ERROR"]}
    )
    assert answer.status_code == 201, answer.text


# -- the delivery log -----------------------------------------------------------------------------------------


def _tail(services: Services) -> None:
    """Run the scheduler's tailer until it has read every event (no scheduler runs over the API tests)."""
    tailer = Tailer(services.db, lambda job: job_json(job, services.settings.flower_base_url))
    while tailer.run_pass():
        pass


def test_the_delivery_log_shows_each_matching_event_once(
    client: TestClient, services: Services, project: str, user: Callable[..., dict[str, str]]
) -> None:
    hook = client.post(
        f"/api/v1/projects/{project}/webhooks", json={"url": URL, "statuses": ["PENDING", "DISCARDED"]}
    ).json()["id"]
    other = client.post(f"/api/v1/projects/{project}/webhooks", json={"url": URL, "statuses": ["FINISHED"]}).json()
    _tail(services)
    job = client.post("/api/v1/jobs", json={"project": project, "type": "sleep"}).json()
    assert client.post(f"/api/v1/jobs/{job['id']}/discard").status_code == 200
    _tail(services)
    _tail(services)  # reading again creates nothing more

    page = client.get(f"/api/v1/projects/{project}/webhooks/{hook}/deliveries").json()
    assert page["total"] == 2 and (page["page"], page["page_size"]) == (1, 50)
    newest, oldest = page["items"]
    assert (oldest["event"]["action"], oldest["event"]["from"], oldest["event"]["to"]) == ("submit", None, "PENDING")
    assert (newest["event"]["action"], newest["event"]["from"], newest["event"]["to"]) == (
        "discard",
        "PENDING",
        "DISCARDED",
    )
    for item in page["items"]:
        assert item["job_id"] == job["id"] and item["event"]["actor"] == "admin"
        assert (item["status"], item["attempts"], item["last_status"], item["last_error"]) == ("pending", 0, None, None)
        assert item["next_attempt_at"] is not None and item["delivered_at"] is None
    assert newest["id"] != oldest["id"]
    assert client.get(f"/api/v1/projects/{project}/webhooks/{other['id']}/deliveries").json()["total"] == 0

    operator = user({project: "operator"})
    by_status = client.get(
        f"/api/v1/projects/{project}/webhooks/{hook}/deliveries", params={"status": "delivered"}, headers=operator
    )
    assert by_status.status_code == 200 and by_status.json()["total"] == 0
    bad = client.get(f"/api/v1/projects/{project}/webhooks/{hook}/deliveries", params={"status": "lost"})
    assert bad.status_code == 422

    assert client.delete(f"/api/v1/projects/{project}/webhooks/{hook}").status_code == 204
    assert client.get(f"/api/v1/projects/{project}/webhooks/{hook}/deliveries").status_code == 404
