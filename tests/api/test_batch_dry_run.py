"""`POST /api/v1/jobs/batch` with `"dry_run": true` (docs/contract.md §4.5): the answer the batch would get, and
nothing changed - no state, no event, no announcement - but an audit entry saying it was a dry run.

Each case runs the dry run, then the real batch over the same jobs, and holds them to the same outcomes: the
allowed-or-refused rule is one (`store.transitions.check_allowed`). No worker runs here: RUNNING and ERROR jobs
are made straight through the store, as the scheduler and a worker would leave them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.scheduler.operations import Operations
from jobctl.scheduler.store import transitions
from jobctl.states import OPERATIONS, Action
from jobctl.workers.services import Services
from tests.api.test_batch import BATCH, MISSING, Recorder, snapshot, submit


def every_state(client: TestClient, services: Services, project: str) -> list[str]:
    """One job of `project` in each of PENDING, RUNNING, PAUSED, ERROR and DISCARDED, in that order."""
    pending, running, paused, error = (submit(client, project) for _ in range(4))
    discarded = submit(client, project, "DISCARDED")
    with services.db.write() as s:
        for job_id in (running, paused, error):
            transitions.transition(s, job_id, Action.DISPATCH, "test")
        transitions.transition(s, paused, Action.PAUSE, "test")
        transitions.transition(s, error, Action.FAIL, "test", "step 0 failed")
    return [pending, running, paused, error, discarded]


def unchanging(client: TestClient, job_ids: list[str]) -> list[Any]:
    """What a dry run must leave as it is: each job (minus its growing times) and its events."""
    shots = []
    for job_id in job_ids:
        status, job, events = snapshot(client, job_id)
        if job is not None:
            job = {k: v for k, v in job.items() if k not in ("duration_s", "waiting_for")}
            job["steps"] = [{k: v for k, v in s.items() if k != "duration_s"} for s in job["steps"]]
        shots.append((status, job, events))
    return shots


@pytest.mark.parametrize("action", [op.value for op in OPERATIONS])
def test_a_dry_run_answers_what_the_batch_then_does_and_changes_nothing(
    action: str, client: TestClient, services: Services, new_project: Callable[[], str]
) -> None:
    project = new_project()
    ids = [*every_state(client, services, project), MISSING]
    before = unchanging(client, ids)

    dry = client.post(BATCH, json={"action": action, "ids": ids, "dry_run": True})
    assert dry.status_code == 200, dry.text
    assert unchanging(client, ids) == before  # no state, no event

    real = client.post(BATCH, json={"action": action, "ids": ids})
    assert real.status_code == 200, real.text
    assert dry.json()["results"] == real.json()["results"]
    changed = [r for r in real.json()["results"] if r["ok"]]
    assert changed  # every operation is allowed from one of these states
    assert dry.json()["preview"] == {"changed": len(changed), "refused": len(ids) - len(changed), "projects": [project]}
    assert "preview" not in real.json()


def test_a_dry_run_by_filter_counts_the_jobs_and_projects_it_would_change(
    client: TestClient, services: Services, new_project: Callable[[], str]
) -> None:
    projects = sorted(new_project() for _ in range(3))
    by_project = {p: every_state(client, services, p) for p in projects}
    everything = [i for ids in by_project.values() for i in ids]
    before = unchanging(client, everything)
    body = {"action": "discard", "filter": {"project": projects}, "dry_run": True}

    answer = client.post(BATCH, json=body).json()
    assert answer["preview"] == {"changed": 12, "refused": 3, "projects": projects}  # 4 non-final jobs each
    assert [r["id"] for r in answer["results"]] == sorted(everything, key=everything.index)  # oldest first
    assert unchanging(client, everything) == before

    only_paused = client.post(BATCH, json={**body, "filter": {"project": projects, "status": "PAUSED"}}).json()
    assert only_paused["preview"] == {"changed": 3, "refused": 0, "projects": projects}
    one_project = client.post(BATCH, json={**body, "action": "resume", "filter": {"project": projects[1]}}).json()
    assert one_project["preview"] == {"changed": 2, "refused": 3, "projects": [projects[1]]}  # PAUSED and ERROR
    nothing = client.post(BATCH, json={**body, "filter": {"project": projects, "until": "2000-01-01T00:00:00Z"}})
    assert nothing.json() == {"results": [], "preview": {"changed": 0, "refused": 0, "projects": []}}
    assert unchanging(client, everything) == before


def test_an_atomic_dry_run_is_refused_as_the_batch_would_be(
    client: TestClient, services: Services, project: str
) -> None:
    ids = every_state(client, services, project)
    before = unchanging(client, ids)
    dry = client.post(BATCH, json={"action": "pause", "ids": ids, "atomic": True, "dry_run": True})
    real = client.post(BATCH, json={"action": "pause", "ids": ids, "atomic": True})
    assert dry.status_code == real.status_code == 409
    assert dry.json()["error"]["refused"] == real.json()["error"]["refused"]
    assert [r["status"] for r in dry.json()["error"]["refused"]] == ["PAUSED", "ERROR", "DISCARDED"]
    assert unchanging(client, ids) == before

    fine = client.post(BATCH, json={"action": "discard", "ids": ids[:4], "atomic": True, "dry_run": True})
    assert fine.status_code == 200 and fine.json()["preview"]["changed"] == 4
    assert unchanging(client, ids) == before


def test_a_dry_run_announces_nothing(client: TestClient, services: Services, project: str) -> None:
    ids = every_state(client, services, project)
    recorder = Recorder()
    ops = Operations(services.db, recorder, recorder, services.targets, services.settings)
    preview = ops.preview_batch([*ids, MISSING], Action.DISCARD)
    assert [(i.ok, i.status.value if i.status else None) for i in preview.items] == [
        (True, "DISCARDED"),
        (True, "DISCARDED"),
        (True, "DISCARDED"),
        (True, "DISCARDED"),
        (False, "DISCARDED"),
        (False, None),
    ]
    assert preview.projects == [project]
    assert recorder.calls == []  # no announcement, no stop, no cleanup, no wake-up


def test_a_dry_run_is_held_to_the_batchs_permissions_and_hides_what_the_caller_cannot_see(
    client: TestClient, user: Callable[..., dict[str, str]], new_project: Callable[[], str]
) -> None:
    a, b = new_project(), new_project()
    mine, theirs = submit(client, a), submit(client, b)
    operator = user({a: "operator"})
    answer = client.post(BATCH, headers=operator, json={"action": "pause", "ids": [mine, theirs], "dry_run": True})
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {"id": mine, "ok": True, "status": "PAUSED", "error": None},
            {"id": theirs, "ok": False, "status": None, "error": f"job {theirs!r} not found"},
        ],
        "preview": {"changed": 1, "refused": 1, "projects": [a]},  # b is not named
    }
    viewer = user({a: "viewer"})
    refused = client.post(BATCH, headers=viewer, json={"action": "pause", "ids": [mine], "dry_run": True})
    assert refused.status_code == 403
    both = user({a: "operator", b: "operator"})
    several = client.post(BATCH, headers=both, json={"action": "pause", "filter": {}, "dry_run": True})
    assert several.status_code == 403 and "several projects" in several.json()["error"]["message"]
    assert [snapshot(client, i)[1]["status"] for i in (mine, theirs)] == ["PENDING", "PENDING"]


def test_a_dry_run_is_in_the_audit_log_as_one(client: TestClient, project: str) -> None:
    job = submit(client, project)
    client.post(BATCH, json={"action": "discard", "ids": [job, MISSING], "dry_run": True})
    client.post(BATCH, json={"action": "pause", "ids": [job], "atomic": True, "dry_run": True})
    client.post(BATCH, json={"action": "discard", "filter": {"project": project}, "dry_run": True})
    client.post(BATCH, json={"action": "discard", "ids": [job]})
    entries = client.get("/api/v1/audit", params={"action": "jobs.batch", "page_size": 200}).json()["items"]
    mine = [
        e
        for e in reversed(entries)
        if job in e["details"].get("ids", []) or e["details"].get("filter") == {"project": project}
    ]
    assert [(e["outcome"], e["details"].get("dry_run")) for e in mine] == [
        ("ok", True),
        ("ok", True),
        ("ok", True),
        ("ok", None),  # the real batch says nothing of dry runs
    ]
    assert mine[0]["details"] == {
        "action": "discard",
        "atomic": False,
        "dry_run": True,
        "ids": [job, MISSING],
        "count": 2,
        "would_change": 1,
        "refused": 1,
    }
    assert mine[1]["details"]["would_change"] == 1 and mine[1]["details"]["atomic"] is True
    assert mine[2]["details"]["filter"] == {"project": project} and mine[2]["details"]["would_change"] == 1
    assert mine[3]["details"]["done"] == 1 and "would_change" not in mine[3]["details"]


@pytest.mark.parametrize("flag", ["true", 1, None, {"yes": True}])
def test_dry_run_takes_a_boolean_only(client: TestClient, flag: Any) -> None:
    response = client.post(BATCH, json={"action": "pause", "ids": [MISSING], "dry_run": flag})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid"


def test_the_openapi_document_states_the_dry_run(client: TestClient) -> None:
    schemas = client.app.openapi()["components"]["schemas"]  # type: ignore[attr-defined]
    assert schemas["JobBatch"]["properties"]["dry_run"]["type"] == "boolean"
    assert "description" in schemas["JobBatch"]["properties"]["dry_run"]
    answer = schemas["BatchAnswer"]
    assert "preview" in answer["properties"] and answer["required"] == ["results"]
    assert set(schemas["BatchPreview"]["required"]) == {"changed", "refused", "projects"}
