"""The user's-path measurements against a real jobctl (SQLite, Redis, a prefork worker, the API over HTTP), at a
tiny scale: they finish, count what they submitted, and report failures instead of hiding them."""

from __future__ import annotations

import time

import pytest

from jobctl.bench import http_path, user_path
from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide
from jobctl.states import Action

pytestmark = pytest.mark.timeout(120)


def test_http_and_client_rounds_submit_and_wait_for_every_job(side: JobctlSide) -> None:
    assert side.api_url is not None
    project = side.project()
    assert http_path.http_round(side.api_url, ADMIN_TOKEN, project, 4) > 0
    assert side.count(project, "FINISHED") == 4
    other = side.project()
    assert http_path.client_round(side.api_url, ADMIN_TOKEN, other, 3) > 0
    assert side.count(other, "FINISHED") == 3


def test_latencies_count_each_answer_and_each_refusal(side: JobctlSide) -> None:
    assert side.api_url is not None
    project = side.project()
    headers = http_path.auth(ADMIN_TOKEN)
    good = http_path.post_latencies(side.api_url, "/api/v1/jobs", lambda: http_path.job_body(project), headers, 8, 2)
    assert (len(good.seconds), good.errors) == (8, 0)
    assert 0 < good.p(50) <= good.p(99)
    bad = http_path.post_latencies(side.api_url, "/api/v1/jobs", lambda: {"project": project}, headers, 4, 2)
    assert (len(bad.seconds), bad.errors) == (0, 4)  # 422s are failures, not latencies


def test_bulk_submits_every_job_and_waits_until_finished(side: JobctlSide) -> None:
    assert side.api_url is not None
    project = side.project()
    got = http_path.bulk(side.api_url, ADMIN_TOKEN, project, 2, 10)
    assert (got.jobs, got.requests) == (20, 2)
    assert side.count(project, "FINISHED") == 20
    assert 0 < got.submit_s <= got.finish_s


def test_user_path_rounds_rotate_the_order_and_pair_the_rates() -> None:
    order: list[str] = []

    def runner(name: str, rate: float) -> user_path.Contender:
        def run(jobs: int) -> float:
            order.append(name)
            return rate

        return user_path.Contender(name, run)

    got = user_path.measure([runner("a", 2.0), runner("b", 1.0)], rounds=2, jobs=10, warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a"]  # warm-up, then a first, then b first
    assert got.rates == {"a": [2.0, 2.0], "b": [1.0, 1.0]}
    assert got.ratio("a", "b") == 2.0


def test_waiting_for_quiet_waits_for_every_runnable_job(side: JobctlSide) -> None:
    project = side.project()
    job_id = side.submit(project, "sleep", {"steps": 2, "seconds": 0.3})
    began = time.monotonic()
    side.wait_quiet(timeout=30)
    assert side.status(job_id) == "FINISHED" and time.monotonic() - began >= 0.3
    held = side.submit(project, "bench_hold")  # never finishes by itself: the wait gives up, and says on what
    with pytest.raises(TimeoutError, match="previous measurement"):
        side.wait_quiet(timeout=0.5)
    side.svc.ops.operate(held, Action.DISCARD, "test")
    side.wait_quiet(timeout=30)
