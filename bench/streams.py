"""Live updates at scale: many `GET /api/v1/events` streams open on one API process, and how long a job's change
takes to reach every one of them.

The streams are held by one asyncio loop in this process (httpx). A stream counts as open once the server's
`: connected` comment has arrived (it is sent after the stream's subscription is in place). Each change is a
job submission (`POST /api/v1/jobs`); its latency on a stream is from the moment the POST was sent to the moment
that stream delivered the job's PENDING event - an upper bound, since it includes the POST itself.
"""

from __future__ import annotations

import asyncio
import json
import resource
import time
from dataclasses import dataclass, field

import httpx

from jobctl.bench.http_path import auth, job_body, run_apart
from jobctl.bench.procs import tree_rss_kib
from jobctl.bench.report import Row, ms
from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide
from jobctl.bench.stats import percentile

OPEN_TIMEOUT_S = 60.0
DELIVERY_TIMEOUT_S = 10.0


@dataclass
class Delivery:
    """What the streams saw: per stream, the arrival time of each job's PENDING event; streams that ended early."""

    arrivals: list[dict[str, float]] = field(default_factory=list)
    ended: int = 0
    opened: int = 0


async def _follow(client: httpx.AsyncClient, url: str, seen: dict[str, float], delivery: Delivery) -> None:
    try:
        async with client.stream("GET", url) as answer:
            answer.raise_for_status()
            event = None
            async for line in answer.aiter_lines():
                if line == ": connected":
                    delivery.opened += 1
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "job":
                    data = json.loads(line[6:])
                    if data.get("status") == "PENDING":
                        seen.setdefault(str(data["id"]), time.perf_counter())
    except (httpx.HTTPError, asyncio.CancelledError):
        pass
    delivery.ended += 1


async def _run(side: JobctlSide, streams: int, changes: int) -> tuple[Delivery, dict[str, float], int, int]:
    assert side.api_url is not None
    project = side.project()
    url = f"/api/v1/events?project={project}"
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    timeout = httpx.Timeout(30, read=None)
    delivery = Delivery()
    sent: dict[str, float] = {}
    rss_before = tree_rss_kib(side.api_proc.pid)
    async with httpx.AsyncClient(base_url=side.api_url, headers=auth(ADMIN_TOKEN), limits=limits, timeout=timeout) as c:
        tasks = []
        for _ in range(streams):
            seen: dict[str, float] = {}
            delivery.arrivals.append(seen)
            tasks.append(asyncio.create_task(_follow(c, url, seen, delivery)))
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while delivery.opened < streams and delivery.ended == 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{delivery.opened} of {streams} event streams opened in {OPEN_TIMEOUT_S:.0f} s")
            await asyncio.sleep(0.05)
        if delivery.ended:
            raise RuntimeError(f"{delivery.ended} event stream(s) ended while opening")
        rss_open = tree_rss_kib(side.api_proc.pid)
        async with httpx.AsyncClient(base_url=side.api_url, headers=auth(ADMIN_TOKEN), timeout=30) as poster:
            for _ in range(changes):
                began = time.perf_counter()
                answer = await poster.post("/api/v1/jobs", json=job_body(project))
                answer.raise_for_status()
                job_id = str(answer.json()["id"])
                sent[job_id] = began
                wait_until = time.monotonic() + DELIVERY_TIMEOUT_S
                while sum(job_id in seen for seen in delivery.arrivals) < streams and time.monotonic() < wait_until:
                    await asyncio.sleep(0.005)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return delivery, sent, rss_before, rss_open


def _raise_open_files(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def measure(side: JobctlSide, streams: int, changes: int) -> list[Row]:
    """Open `streams` event streams on the side's one API process, make `changes` changes one after another
    (each waits until every stream has it, at most 10 s) and report the delivery latency over every
    (stream, change) pair, the API process's memory, and how many deliveries were missing."""
    _raise_open_files(streams * 2 + 256)
    delivery, sent, rss_before, rss_open = run_apart(_run(side, streams, changes))
    latencies = [seen[job] - began for seen in delivery.arrivals for job, began in sent.items() if job in seen]
    missing = streams * len(sent) - len(latencies)
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    return [
        Row(
            f"live updates: {streams} event streams on one API process, a change to every stream",
            f"p50 {ms(p50)}, p99 {ms(p99)}",
            "—",
            f"p99 {ms(p99)}",
            "p99 ≤ 1 s, none missing",
            p99 <= 1.0 and missing == 0,
            f"{changes} changes (job submissions), timed from the POST's sending to the job's PENDING event on each "
            f"stream; {missing} of {streams * len(sent)} deliveries missing; API process RSS "
            f"{rss_before / 1024:.0f} MiB before, {rss_open / 1024:.0f} MiB with the streams open; the streams are "
            "held by one asyncio loop (httpx) in the benchmark's process",
        )
    ]
