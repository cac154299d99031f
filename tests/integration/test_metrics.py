"""`/metrics` on a live system: counters and histograms move by exactly what happened (issue 7, acceptance 3)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from jobctl.api.app import create_app
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer test-admin-token"}


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_move_by_what_happened(dedicated: Callable[..., System]) -> None:
    live = dedicated()
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()
    with TestClient(create_app(live.svc), headers=ADMIN) as client:
        assert TestClient(create_app(live.svc)).get("/metrics").status_code == 401
        before = scrape(client)

        def delta(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0.0) - before.get(key, 0.0)

        jobs = [live.submit(project, params={"steps": 2, "seconds": 0.2}) for _ in range(3)]
        for job in jobs:
            live.wait_status(job.id, "FINISHED")
        long = live.submit(project, params={"steps": 1, "seconds": 60})
        live.wait_step_running(long.id, 0)
        live.op(long.id, "pause")
        wait_until(
            lambda: scrape(client).get(("jobctl_stop_latency_seconds_count", ()), 0) >= 1, 5, "the stop to be measured"
        )
        after = scrape(client)

    assert delta("jobctl_jobs", project=project, status="FINISHED") == 3
    assert delta("jobctl_jobs", project=project, status="PAUSED") == 1
    assert delta("jobctl_transitions_total", action="submit") == 4
    assert delta("jobctl_transitions_total", action="dispatch") == 4
    assert delta("jobctl_transitions_total", action="finish") == 3
    assert delta("jobctl_transitions_total", action="pause") == 1
    assert delta("jobctl_step_duration_seconds_count") == 6  # 3 jobs x 2 finished steps; the paused one not
    assert 6 * 0.2 <= delta("jobctl_step_duration_seconds_sum") < 6 * 0.2 + 3
    assert delta("jobctl_step_waiting_seconds_count") == 7  # every step attempt that started
    assert delta("jobctl_dispatch_latency_seconds_count") == 4
    assert delta("jobctl_stop_latency_seconds_count") == 1
    assert (
        after[("jobctl_stop_latency_seconds_bucket", (("le", "1.0"),))]
        - before.get(("jobctl_stop_latency_seconds_bucket", (("le", "1.0"),)), 0)
        == 1
    )  # stopped within a second
    assert after[("jobctl_workers_alive", ())] == 1 and after[("jobctl_worker_processes", ())] == 1
    assert after[("jobctl_queue_depth", ())] == 0
