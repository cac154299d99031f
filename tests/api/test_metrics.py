"""`/metrics` by caller: an admin gets every family; anyone else only the job counts and the queue depth of their
own projects - the histograms, counters, broker queue and workers are the whole system's."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobctl.api.app import create_app
from jobctl.workers.services import Services


def _families(client: TestClient, token: str | None = None) -> dict[str, list[dict[str, str]]]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    return {f.name: [s.labels for s in f.samples] for f in text_string_to_metric_families(answer.text)}


def test_a_viewer_sees_only_their_projects_counts(
    client: TestClient, services: Services, new_project: Callable[[], str], unique: Callable[[str], str]
) -> None:
    mine, other = new_project(), new_project()
    for project in (mine, other):
        client.post("/api/v1/jobs", json={"project": project, "type": "sleep"}).raise_for_status()
    made = client.post("/api/v1/users", json={"name": unique("viewer"), "roles": {mine: "viewer"}})
    assert made.status_code == 201, made.text
    with TestClient(create_app(services)) as anonymous:
        seen = _families(anonymous, made.json()["token"])
    assert set(seen) == {"jobctl_jobs", "jobctl_queue_depth"}
    assert {labels["project"] for labels in seen["jobctl_jobs"]} == {mine}
    admin = _families(client)
    assert {mine, other} <= {labels["project"] for labels in admin["jobctl_jobs"]}
    everything = ("jobctl_transitions", "jobctl_step_duration_seconds", "jobctl_workers_alive", "jobctl_event_streams")
    assert set(everything) <= set(admin), sorted(admin)
