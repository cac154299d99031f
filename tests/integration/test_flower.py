"""Flower against a live worker, through its HTTP API with basic auth, read-only (its controls answer 403)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration


def test_flower_shows_step_tasks_and_stopped_attempts(dedicated: Callable[..., System]) -> None:
    live = dedicated()
    flower, base = live.start_flower()
    auth = (live.settings.flower_user or "", live.settings.flower_password or "")
    with open(f"/proc/{flower.popen.pid}/cmdline", "rb") as cmdline:  # what `ps` shows: never the password
        assert auth[1].encode() not in cmdline.read()
    wrong = (auth[0], auth[1] + "x")
    for page in ("/", "/api/tasks", "/api/workers", "/metrics", "/tasks", "/broker"):  # basic auth everywhere
        assert httpx.get(f"{base}{page}", timeout=5).status_code == 401, page
        assert httpx.get(f"{base}{page}", auth=wrong, timeout=5).status_code == 401, page
    metrics = httpx.get(f"{base}/metrics", auth=auth, timeout=5)
    assert metrics.status_code == 200 and "flower_" in metrics.text
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()

    def tasks() -> dict[str, dict[str, Any]]:
        response = httpx.get(f"{base}/api/tasks", auth=auth, timeout=5)
        assert response.status_code == 200, response.text
        return response.json()

    job = live.submit(project, params={"steps": 2, "seconds": 0.2})
    live.wait_status(job.id, "FINISHED")
    finished = wait_until(
        lambda: [t for t in tasks().values() if job.id in str(t.get("args")) and t.get("state") == "SUCCESS"],
        10,
        "Flower to see the finished steps",
    )
    assert {t["name"] for t in finished} == {"jobctl.step.sleep"}
    assert len(finished) == 2

    long = live.submit(project, params={"steps": 1, "seconds": 60})
    running = live.wait_step_running(long.id, 0)
    fence = running.steps[0].fence
    assert fence is not None and running.steps[0].worker is not None
    worker = running.steps[0].worker
    for control in (  # Flower's controls would act behind jobctl's roles, history and fencing: read-only
        f"/api/task/revoke/{fence}?terminate=true&signal=SIGKILL",
        f"/api/task/abort/{fence}",
        "/api/task/async-apply/jobctl.cleanup",
        "/api/task/apply/jobctl.cleanup",
        "/api/task/send-task/jobctl.cleanup",
        "/api/task/timeout/jobctl.step.sleep?hard=1",
        "/api/task/rate-limit/jobctl.step.sleep?ratelimit=1",
        f"/api/worker/shutdown/{worker}",
        f"/api/worker/pool/restart/{worker}",
        f"/api/worker/pool/grow/{worker}?n=1",
        f"/api/worker/pool/shrink/{worker}?n=1",
        f"/api/worker/pool/autoscale/{worker}?min=1&max=2",
        f"/api/worker/queue/add-consumer/{worker}?queue=other",
        f"/api/worker/queue/cancel-consumer/{worker}?queue={live.settings.queue}",
    ):
        refused = httpx.post(f"{base}{control}", auth=auth, json={}, timeout=5)
        assert refused.status_code == 403 and "Read only" in refused.text, (control, refused.status_code, refused.text)
    assert httpx.post(f"{base}/api/task/revoke/{fence}", timeout=5).status_code == 401  # and the login first
    assert live.job(long.id).status.value == "RUNNING" and live.job(long.id).steps[0].fence == fence
    assert httpx.get(f"{base}/api/workers", auth=auth, timeout=5).status_code == 200  # reading still works
    live.op(long.id, "pause")
    stopped = wait_until(
        lambda: (tasks().get(fence or "") or {}).get("state") in ("REVOKED", "FAILURE") and tasks()[fence or ""],
        10,
        "Flower to show the stopped attempt in a final state",
    )
    assert stopped["name"] == "jobctl.step.sleep" and long.id in str(stopped["args"])


def test_flower_sees_a_long_step_started_in_the_process_that_took_its_job(dedicated: Callable[..., System]) -> None:
    """A job the pool process takes itself (its previous job finished) runs without a Celery message; its
    task events are held to go together, but a step that runs on is shown STARTED within about a second."""
    live = dedicated()
    _flower, base = live.start_flower()
    auth = (live.settings.flower_user or "", live.settings.flower_password or "")
    live.start_scheduler()
    live.start_worker(concurrency=1)
    project = live.project()
    first = live.submit(project, params={"steps": 1, "seconds": 0.5})
    taken = live.submit(project, params={"steps": 1, "seconds": 60})  # waits for the only slot
    live.wait_status(first.id, "FINISHED")
    fence = live.wait_step_running(taken.id, 0).steps[0].fence or ""

    def state() -> str | None:
        response = httpx.get(f"{base}/api/tasks", auth=auth, timeout=5)
        return (response.json().get(fence) or {}).get("state")

    wait_until(lambda: state() == "STARTED", 10, "Flower to show the running step STARTED")
    assert live.job(taken.id).status.value == "RUNNING"
    live.op(taken.id, "discard")
