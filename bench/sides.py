"""The two systems under test, each started fresh as subprocesses with the same worker concurrency:

- `JobctlSide`: a jobctl scheduler and a prefork jobctl worker (and the API when asked) on a fresh database;
  the benchmark submits and operates jobs in-process through the same `Operations` service the API uses;
- `RawSide`: a prefork Celery worker of `bench.raw` with a Redis result backend.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from typing import Any

import httpx
import redis
from sqlalchemy import func, select

from jobctl.bench.env import JOBCTL_REDIS_DB, RAW_REDIS_DB
from jobctl.bench.procs import Procs, wait_for
from jobctl.scheduler import keys
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.wiring import build
from jobctl.workers.services import Services

LOGLEVEL = "WARNING"  # the same on both sides: Celery's per-task INFO lines are not what is measured
ADMIN_TOKEN = "bench-admin-token"


def _env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in settings.model_dump().items():
        if value is not None:
            env[f"JOBCTL_{key.upper()}"] = str(value)
    return env


class JobctlSide:
    """A live jobctl: scheduler + worker subprocesses, and services in this process to submit and operate."""

    def __init__(
        self, procs: Procs, database_url: str, redis_base: str, concurrency: int, *, engine: bool = True, **tuning: Any
    ) -> None:
        """Start the scheduler and worker (unless `engine` is False: the API alone is started on demand)."""
        self.procs = procs
        self.tag = uuid.uuid4().hex[:8]
        self.settings = Settings(
            database_url=database_url,
            redis_url=f"{redis_base}/{JOBCTL_REDIS_DB}",
            queue=f"bench-{self.tag}",
            plugins="jobctl.bench.jobtypes",
            admin_token=ADMIN_TOKEN,
            log_level=LOGLEVEL,
            **tuning,
        )
        self.env = _env(self.settings)
        self.svc: Services = build(self.settings)
        self.api_url: str | None = None
        self.api_proc: Any = None
        self.children: list[Any] = []
        self.worker_host = f"bench-{self.tag}@bench"
        if not engine:
            return
        self.children.append(self._cli("scheduler", ["scheduler"]))
        self.worker = self._cli(
            "worker",
            ["worker", "--concurrency", str(concurrency), "--hostname", self.worker_host, "--loglevel", LOGLEVEL],
        )
        self.children.append(self.worker)
        client = self.svc.redis
        wait_for(
            lambda: client.exists(keys.worker(self.settings.queue, self.worker_host)) or self._died(),
            60,
            "the jobctl worker to come up",
        )

    def _cli(self, name: str, args: list[str]) -> Any:
        return self.procs.start(f"jobctl-{name}-{self.tag}", [sys.executable, "-m", "jobctl.cli", *args], self.env)

    def _died(self) -> bool:
        for child in self.children:
            if child.poll() is not None:
                raise RuntimeError(f"a jobctl process died:\n{self.procs.tail(f'jobctl-worker-{self.tag}')}")
        return False

    def start_api(self, port: int, workers: int = 1) -> str:
        """Start `jobctl api --workers N` on `port` and return its base URL once /healthz answers.

        The process is kept as `api_proc` (the last one started) and its URL as `api_url`."""
        self.api_proc = self._cli(f"api-{port}", ["api", "--port", str(port), "--workers", str(workers)])
        self.children.append(self.api_proc)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            self._died()
            try:
                return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, 60, "the jobctl API to answer", interval=0.1)
        self.api_url = url
        return url

    def project(self, name: str | None = None, max_running: int | None = None) -> str:
        name = name or f"p{uuid.uuid4().hex[:8]}"
        with self.svc.db.write() as s:
            accounts.create_project(s, name, max_running)
        return name

    def submit(
        self, project: str, job_type: str, params: dict[str, Any] | None = None, target: tuple[str, str] | None = None
    ) -> str:
        """Submit a job through the operations service (what `POST /api/v1/jobs` calls); its id."""
        jt = self.svc.registry.get(job_type)
        validated, steps = jt.prepare(params)
        job = self.svc.ops.submit(
            project=project,
            job_type=job_type,
            steps=steps,
            params=validated,
            priority=3,
            submitter="bench",
            target=target,
        )
        return job.id

    def count(self, project: str, status: str) -> int:
        with self.svc.db.read() as s:
            pid = accounts.get_project(s, project).id
            return (
                s.scalar(
                    select(func.count())
                    .select_from(models.Job)
                    .where(models.Job.project_id == pid, models.Job.status == status)
                )
                or 0
            )

    def wait_quiet(self, timeout: float = 300) -> None:
        """Return once no job of any project is PENDING or RUNNING: what an earlier measurement left to run is
        done, and does not compete with the next one for the two cores."""

        def quiet() -> bool:
            with self.svc.db.read() as s:
                counts = jobs_store.count_jobs_by_project_status(s)
            return not any(n for (_, status), n in counts.items() if status in ("PENDING", "RUNNING"))

        wait_for(quiet, timeout, "the jobs of the previous measurement to finish", interval=0.1)

    def status(self, job_id: str) -> str:
        with self.svc.db.read() as s:
            return str(s.scalar(select(models.Job.status).where(models.Job.id == job_id)))

    def worker_rss_kib(self) -> int:
        from jobctl.bench.procs import tree_rss_kib

        return tree_rss_kib(self.worker.pid)

    def close(self) -> None:
        for child in reversed(self.children):
            self.procs.stop(child)
        self.svc.close()


class RawSide:
    """A plain Celery worker (`bench.raw`) with a Redis result backend, and its app in this process."""

    def __init__(self, procs: Procs, redis_base: str, concurrency: int) -> None:
        self.procs = procs
        self.tag = uuid.uuid4().hex[:8]
        self.url = f"{redis_base}/{RAW_REDIS_DB}"
        self.queue = f"bench-raw-{self.tag}"
        os.environ["BENCH_RAW_REDIS"] = self.url
        os.environ["BENCH_RAW_QUEUE"] = self.queue
        from jobctl.bench import raw

        raw.app.conf.update(broker_url=self.url, result_backend=self.url, task_default_queue=self.queue)
        self.app = raw.app
        self.raw = raw
        self.redis = redis.Redis.from_url(self.url)
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "jobctl.bench.raw",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={self.queue}",
            f"--hostname=raw-{self.tag}@bench",
            f"--loglevel={LOGLEVEL}",
            "--without-mingle",
            "--without-gossip",
        ]
        self.worker = procs.start(f"raw-worker-{self.tag}", argv, dict(os.environ))
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.worker.poll() is not None:
                raise RuntimeError(f"the raw Celery worker died:\n{self.procs.tail(f'raw-worker-{self.tag}')}")
            replies = self.app.control.ping(destination=[f"raw-{self.tag}@bench"], timeout=0.5)
            if replies:
                return
        raise TimeoutError("the raw Celery worker did not answer pings")

    def worker_rss_kib(self) -> int:
        from jobctl.bench.procs import tree_rss_kib

        return tree_rss_kib(self.worker.pid)

    def close(self) -> None:
        self.procs.stop(self.worker)
        self.redis.close()
