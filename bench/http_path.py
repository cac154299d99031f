"""The path a user takes: jobs submitted through the HTTP API - one `POST /api/v1/jobs` at a time, as a script or
a web app would, or through `jobctl.client` - and read back through the API until FINISHED; the latency of one
submission; bulk submission.

Every function here talks to a running `jobctl api` over HTTP and nothing else, so what it measures includes
the server, the network stack and the client, as a user sees them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from jobctl.bench.stats import percentile
from jobctl.client import Client

STEPS = 5
JOB_TYPE = "bench_noop"  # STEPS steps that do nothing (bench/jobtypes.py)
POLL_S = 0.01  # how often completion is read back: the same 10 ms as every other side of the benchmark


T = TypeVar("T")


def run_apart(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(coroutine)` on a thread and loop of its own: the caller's thread may run a loop already
    (Playwright's sync API in the test suite, a notebook), and asyncio.run refuses to start inside one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def job_body(project: str) -> dict[str, Any]:
    """The submission of one 5-step no-op job in `project`."""
    return {"project": project, "type": JOB_TYPE, "params": {"steps": STEPS}}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def count(http: httpx.Client, project: str, status: str) -> int:
    """How many of `project`'s jobs are in `status`, read through the list API (one request)."""
    answer = http.get("/api/v1/jobs", params={"project": project, "status": status, "page_size": 1})
    answer.raise_for_status()
    return int(answer.json()["total"])


def wait_finished(http: httpx.Client, project: str, jobs: int, deadline: float) -> None:
    """Poll the list API every `POLL_S` until `jobs` of `project`'s jobs are FINISHED; `RuntimeError` as soon as
    one is in ERROR, `TimeoutError` at `deadline` (a `time.monotonic()` value)."""
    while (done := count(http, project, "FINISHED")) < jobs:
        if count(http, project, "ERROR"):
            raise RuntimeError(f"a job of project {project!r} failed")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{done} of {jobs} jobs FINISHED before the deadline")
        time.sleep(POLL_S)


def http_round(api_url: str, token: str, project: str, jobs: int, timeout: float = 600) -> float:
    """Submit `jobs` jobs one `POST /api/v1/jobs` after another from one client, then read the list API until all
    are FINISHED. Jobs per second, from the first request to the answer that shows the last one FINISHED."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api_url, headers=auth(token), timeout=30) as http:
        body = job_body(project)
        began = time.perf_counter()
        for _ in range(jobs):
            answer = http.post("/api/v1/jobs", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"POST /api/v1/jobs answered {answer.status_code}: {answer.text[:200]}")
        wait_finished(http, project, jobs, deadline)
        return jobs / (time.perf_counter() - began)


def client_round(api_url: str, token: str, project: str, jobs: int, timeout: float = 600) -> float:
    """Submit `jobs` jobs with `jobctl.client.Client.submit`, one call after another, then wait for each one's
    `result()`, in order. Jobs per second, from the first call to the last result."""
    with Client(api_url, token, timeout=30) as client:
        began = time.perf_counter()
        handles = [client.submit(JOB_TYPE, project=project, params={"steps": STEPS}) for _ in range(jobs)]
        for handle in handles:
            handle.result(timeout=timeout)
        return jobs / (time.perf_counter() - began)


@dataclass(frozen=True)
class Latencies:
    """Request latencies (seconds) of one measurement, and how many requests failed."""

    seconds: list[float]
    errors: int

    def p(self, q: float) -> float:
        return percentile(self.seconds, q)


def post_latencies(
    url: str,
    path: str,
    body: Callable[[], Mapping[str, Any]],
    headers: Mapping[str, str],
    requests: int,
    clients: int,
) -> Latencies:
    """`requests` POSTs of `body()` to `url` + `path`, spread over `clients` concurrent clients (threads, each with
    its own keep-alive connection, after one warm-up request each); the latency of each, as its client saw it.
    A request that is not answered 2xx counts as an error (and not as a latency)."""
    per_client = max(1, requests // clients)
    seconds: list[float] = []
    errors = [0]
    lock = threading.Lock()
    ready = threading.Barrier(clients)

    def one_client() -> None:
        mine: list[float] = []
        failed = 0
        with httpx.Client(base_url=url, headers=dict(headers), timeout=30) as http:
            http.post(path, json=body())
            ready.wait()
            for _ in range(per_client):
                began = time.perf_counter()
                try:
                    answer = http.post(path, json=body())
                    ok = answer.is_success
                except httpx.HTTPError:
                    ok = False
                if ok:
                    mine.append(time.perf_counter() - began)
                else:
                    failed += 1
        with lock:
            seconds.extend(mine)
            errors[0] += failed

    threads = [threading.Thread(target=one_client, name=f"bench-client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Latencies(seconds, errors[0])


@dataclass(frozen=True)
class Bulk:
    """`jobs` jobs submitted as `requests` bulk requests: the time from the first request to the last answer, and
    from the first request to the last job FINISHED."""

    jobs: int
    requests: int
    submit_s: float
    finish_s: float

    @property
    def jobs_per_s(self) -> float:
        return self.jobs / self.finish_s


def bulk(api_url: str, token: str, project: str, requests: int, per_request: int, timeout: float = 900) -> Bulk:
    """Submit `requests` x `per_request` jobs through `POST /api/v1/jobs/bulk`, one request after another from one
    client, then read the list API until all are FINISHED."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=api_url, headers=auth(token), timeout=120) as http:
        body = {"jobs": [job_body(project)] * per_request}
        began = time.perf_counter()
        for _ in range(requests):
            answer = http.post("/api/v1/jobs/bulk", json=body)
            if answer.status_code != 201:
                raise RuntimeError(f"POST /api/v1/jobs/bulk answered {answer.status_code}: {answer.text[:200]}")
        submitted = time.perf_counter() - began
        wait_finished(http, project, requests * per_request, deadline)
        return Bulk(requests * per_request, requests, submitted, time.perf_counter() - began)
