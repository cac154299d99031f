"""The API under load: concurrent clients mixing the two reads an operator's screens and scripts make most -
`GET /api/v1/jobs` filtered by project and status, and `GET /api/v1/jobs/{id}` - for a fixed time, while the
workers run jobs; the same load on a bare FastAPI app (`bench.bare`) as the baseline.

The clients are asyncio tasks on one loop in this process (a thread of its own), each with its own keep-alive
connection (httpx), sending its next request as soon as the last one is answered. They share the machine's cores
with the server, as a load generator on the same host does.
"""

from __future__ import annotations

import asyncio
import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from jobctl.bench.http_path import auth, run_apart
from jobctl.bench.procs import Procs, wait_for
from jobctl.bench.stats import percentile

BACKGROUND_PENDING = 40  # the feeder keeps about this many jobs waiting, so the workers never run dry
FEED_EVERY_S = 0.5


@dataclass(frozen=True)
class Load:
    """What the clients saw in `wall_s` seconds: each answered request's latency, and the failures (an answer that
    is not 200, or none)."""

    seconds: list[float]
    errors: int
    wall_s: float

    @property
    def per_s(self) -> float:
        return len(self.seconds) / self.wall_s

    def p(self, q: float) -> float:
        return percentile(self.seconds, q)


def paths(project: str, ids: Sequence[str]) -> Callable[[int], str]:
    """The request mix: even requests list `project`'s RUNNING jobs (a page of 20), odd ones read one of `ids`."""
    listing = f"/api/v1/jobs?project={project}&status=RUNNING&page_size=20"

    def path(n: int) -> str:
        return listing if n % 2 == 0 else f"/api/v1/jobs/{ids[(n // 2) % len(ids)]}"

    return path


async def _load(url: str, headers: dict[str, str], path: Callable[[int], str], clients: int, duration: float) -> Load:
    counter = itertools.count()
    seconds: list[float] = []
    errors = [0]
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def client() -> None:
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30, limits=limits) as http:
            await http.get(path(0))  # the connection is open before the clock starts
            await started.wait()
            while time.perf_counter() < ends:
                began = time.perf_counter()
                try:
                    ok = (await http.get(path(next(counter)))).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    seconds.append(time.perf_counter() - began)
                else:
                    errors[0] += 1

    started = asyncio.Event()
    ends = float("inf")
    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.sleep(0.5)  # every client connected
    began = time.perf_counter()
    ends = began + duration
    started.set()
    await asyncio.gather(*tasks)
    return Load(seconds, errors[0], time.perf_counter() - began)


def load(url: str, token: str | None, path: Callable[[int], str], clients: int, duration: float) -> Load:
    """`clients` concurrent clients send GETs of `path(n)` to `url` for `duration` seconds; what they saw."""
    headers = auth(token) if token else {}
    return run_apart(_load(url, headers, path, clients, duration))


class Feeder:
    """Keeps the workers busy while the load runs: every `FEED_EVERY_S` it tops the project's PENDING jobs up to
    `BACKGROUND_PENDING` through `POST /api/v1/jobs/bulk` (jobs of `steps` steps of `seconds` each, the built-in
    `sleep` type); `stop()` ends it and discards what is left unfinished."""

    def __init__(self, api_url: str, token: str, project: str, steps: int = 5, seconds: float = 0.02) -> None:
        self.http = httpx.Client(base_url=api_url, headers=auth(token), timeout=30)
        self.project = project
        self.job = {"project": project, "type": "sleep", "params": {"steps": steps, "seconds": seconds}}
        self.submitted = 0
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="bench-feeder", daemon=True)

    def _pending(self) -> int:
        answer = self.http.get("/api/v1/jobs", params={"project": self.project, "status": "PENDING", "page_size": 1})
        answer.raise_for_status()
        return int(answer.json()["total"])

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if (short := BACKGROUND_PENDING - self._pending()) > 0:
                    answer = self.http.post("/api/v1/jobs/bulk", json={"jobs": [self.job] * short})
                    answer.raise_for_status()
                    self.submitted += short
                self._stop.wait(FEED_EVERY_S)
        except BaseException as exc:  # reported by stop()
            self._error = exc

    def start(self) -> Feeder:
        self._thread.start()
        return self

    def running_ids(self, at_least: int, timeout: float = 30) -> list[str]:
        """The ids of the project's jobs (newest first), once at least `at_least` exist and one is RUNNING."""

        def ready() -> list[str]:
            listed = self.http.get("/api/v1/jobs", params={"project": self.project, "page_size": 200}).json()
            running = any(item["status"] == "RUNNING" for item in listed["items"])
            return [item["id"] for item in listed["items"]] if running and listed["total"] >= at_least else []

        return wait_for(ready, timeout, "the background jobs to run", interval=0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        try:
            if self._error is not None:
                raise RuntimeError(f"the background feeder failed: {self._error}") from self._error
            for status in ("PENDING", "RUNNING"):
                self.http.post(
                    "/api/v1/jobs/batch",
                    json={"action": "discard", "filter": {"project": self.project, "status": status}},
                ).raise_for_status()
        finally:
            self.http.close()


def start_bare(procs: Procs, port: int) -> tuple[str, subprocess.Popen[bytes]]:
    """Start the bare FastAPI app (`bench.bare`) under uvicorn on `port`; its base URL once it answers, and its
    process (for `procs.stop`)."""
    argv = [sys.executable, "-m", "uvicorn", "jobctl.bench.bare:app", "--port", str(port), "--no-access-log"]
    proc = procs.start(f"bare-{port}", [*argv, "--log-level", "warning"])
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the bare FastAPI app exited:\n{procs.tail(f'bare-{port}')}")
        try:
            return httpx.get(f"{url}/api/v1/jobs", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(answers, 30, "the bare FastAPI app to answer", interval=0.1)
    return url, proc
