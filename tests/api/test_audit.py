"""The audit log (docs/contract.md §9, docs/security.md): every change to users, roles, tokens, projects and
targets, and every batch, is recorded with who, what, when, from where and how it ended - refusals included -
and nothing secret is ever written there. Only admins read it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.api.audit import Audit
from jobctl.api.auth import Caller
from jobctl.scheduler.errors import Conflict
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import utcnow


def _entries(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/audit", params={"page_size": 200, **params})
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def _about(client: TestClient, subject: str, **params: Any) -> list[tuple[str, str]]:
    """(action, outcome) of the entries about `subject` (or `subject/...`), oldest first."""
    found = [e for e in _entries(client, **params) if e["subject"] == subject or e["subject"].startswith(subject + "/")]
    return [(e["action"], e["outcome"]) for e in reversed(found)]


def test_every_account_change_is_recorded_with_actor_address_and_outcome(
    client: TestClient, project: str, unique: Callable[[str], str]
) -> None:
    name = unique("aud")
    started = datetime.now(UTC) - timedelta(seconds=1)
    created = client.post("/api/v1/users", json={"name": name, "roles": {project: "viewer"}})
    token = client.post(f"/api/v1/users/{name}/tokens", json={"name": "ci"}).json()["token"]
    client.put(f"/api/v1/users/{name}/roles", json={project: "operator"})
    client.patch(f"/api/v1/users/{name}", json={"disabled": True})
    client.delete(f"/api/v1/users/{name}/tokens/ci")
    client.delete(f"/api/v1/users/{name}/tokens/ci")  # refused: 404
    client.delete(f"/api/v1/users/{name}")
    assert _about(client, name) == [
        ("user.create", "ok"),
        ("token.create", "ok"),
        ("user.roles", "ok"),
        ("user.update", "ok"),
        ("token.revoke", "ok"),
        ("token.revoke", "not_found"),
        ("user.delete", "ok"),
    ]
    entries = [e for e in _entries(client) if e["subject"].startswith(name)]
    for entry in entries:
        assert entry["actor"] == "admin" and entry["address"] == "testclient"
        assert datetime.fromisoformat(entry["at"]) >= started
    by_action = {e["action"]: e for e in entries if e["outcome"] == "ok"}
    assert by_action["user.create"]["details"] == {"admin": False, "roles": {project: "viewer"}}
    assert by_action["user.roles"]["details"] == {"roles": {project: "operator"}}
    assert by_action["user.update"]["details"] == {"disabled": True}
    assert by_action["token.create"]["subject"] == f"{name}/ci"
    refused = next(e for e in entries if e["outcome"] == "not_found")
    assert "not found" in refused["details"]["error"]
    # nothing secret: neither token, nor its hash, nor its first characters
    text = json.dumps(entries)
    secrets = [created.json()["token"], token]
    for secret in secrets:
        for form in (secret, hashlib.sha256(secret.encode()).hexdigest(), secret[:8]):
            assert form not in text


def test_refused_changes_are_recorded_with_their_code(
    client: TestClient, user: Callable[..., dict[str, str]], project: str, unique: Callable[[str], str]
) -> None:
    operator = user({project: "operator"})
    me = client.get("/api/v1/me", headers=operator).json()["name"]
    victim = unique("vic")
    assert client.post("/api/v1/users", json={"name": victim}).status_code == 201
    assert client.patch(f"/api/v1/users/{victim}", json={"admin": True}, headers=operator).status_code == 403
    assert client.post("/api/v1/projects", json={"name": project}).status_code == 409
    mine = _entries(client, actor=me)
    assert [(e["action"], e["subject"], e["outcome"]) for e in mine] == [("user.update", victim, "forbidden")]
    assert mine[0]["details"]["admin"] is True and "administrators" in mine[0]["details"]["error"]
    assert ("project.create", "conflict") in _about(client, project)


def test_a_change_the_database_refuses_is_a_recorded_conflict(
    client: TestClient, services: Services, unique: Callable[[str], str]
) -> None:
    """Two requests creating one name at the same moment: the loser's insert breaks a unique key. `Audit.change`
    turns that into a 409 with the route's message, recorded as `conflict`, and nothing of the change remains."""
    name = unique("race")
    assert client.post("/api/v1/users", json={"name": name}).status_code == 201
    audit = Audit(services=services, caller=Caller(name="admin", admin=True), address="testclient")
    with (
        pytest.raises(Conflict, match="already exists"),
        audit.change("user.create", name, {"admin": True}, conflict=f"user {name!r} already exists") as change,
    ):
        change.s.add(models.User(name=name, admin=True, created_at=utcnow()))  # its check ran before the winner's
        change.s.flush()
    assert _about(client, name) == [("user.create", "ok"), ("user.create", "conflict")]
    users = {u["name"]: u for u in client.get("/api/v1/users").json()}
    assert users[name]["admin"] is False  # the loser changed nothing


def test_projects_targets_and_batches_are_recorded(client: TestClient, project: str) -> None:
    client.patch(f"/api/v1/projects/{project}", json={"max_running": 4})
    client.put(f"/api/v1/projects/{project}/targets/record/orders", json={"attributes": {"v": 1}})
    job = client.post("/api/v1/jobs", json={"project": project, "type": "sleep"}).json()
    batch = client.post("/api/v1/jobs/batch", json={"action": "discard", "ids": [job["id"], "0" * 32]})
    assert batch.status_code == 200
    atomic = client.post("/api/v1/jobs/batch", json={"action": "pause", "ids": [job["id"]], "atomic": True})
    assert atomic.status_code == 409
    client.delete(f"/api/v1/projects/{project}/targets/record/orders")
    client.delete(f"/api/v1/projects/{project}")
    assert _about(client, project) == [
        ("project.create", "ok"),
        ("project.update", "ok"),
        ("target.put", "ok"),
        ("target.delete", "ok"),
        ("project.delete", "ok"),
    ]
    batches = [e for e in _entries(client, action="jobs.batch") if job["id"] in e["details"].get("ids", [])]
    assert [(e["outcome"], e["subject"]) for e in reversed(batches)] == [("ok", "2 job(s)"), ("conflict", "1 job(s)")]
    done, refused = reversed(batches)
    assert done["details"] == {
        "action": "discard",
        "atomic": False,
        "ids": [job["id"], "0" * 32],
        "count": 2,
        "done": 1,
        "refused": 1,
    }
    assert refused["details"]["refused"] == 1 and refused["details"]["atomic"] is True
    by_filter = client.post("/api/v1/jobs/batch", json={"action": "delete", "filter": {"project": [project]}})
    assert by_filter.status_code == 404  # the project is gone
    [entry] = [e for e in _entries(client, action="jobs.batch") if e["details"].get("filter") == {"project": [project]}]
    assert entry["outcome"] == "not_found" and entry["subject"] == "filter"


def test_the_log_filters_pages_and_is_for_admins_only(
    client: TestClient, user: Callable[..., dict[str, str]], unique: Callable[[str], str]
) -> None:
    before = datetime.now(UTC)
    names = [unique("page") for _ in range(3)]
    for name in names:
        assert client.post("/api/v1/users", json={"name": name}).status_code == 201
    recent = client.get("/api/v1/audit", params={"action": "user.create", "since": before.isoformat()}).json()
    assert [e["subject"] for e in recent["items"]][:3] == names[::-1]  # newest first
    assert recent["total"] >= 3 and recent["page"] == 1 and recent["page_size"] == 50
    paged = client.get(
        "/api/v1/audit", params={"action": "user.create", "since": before.isoformat(), "page": 2, "page_size": 1}
    ).json()
    assert paged["items"][0]["subject"] == recent["items"][1]["subject"] and paged["total"] == recent["total"]
    kinds = {e["action"] for e in _entries(client, action="user.", since=before.isoformat())}
    assert kinds == {"user.create"}
    assert _entries(client, actor="nobody-at-all") == []
    for bad in ({"page": 0}, {"page_size": 201}, {"since": "yesterday"}, {"action": "Drop Table"}, {"actor": "a b"}):
        assert client.get("/api/v1/audit", params=bad).status_code == 422, bad
    assert client.get("/api/v1/audit", headers=user()).status_code == 403
