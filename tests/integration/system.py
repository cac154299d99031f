"""A live jobctl system for integration tests: real scheduler and prefork worker subprocesses.

Processes are started through the `jobctl` CLI in their own process groups, so a test can `kill -9` a whole
worker (main process and pool) the way a machine crash would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis

from jobctl.scheduler import keys
from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.states import Action
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.conftest import env_for

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float, what: str, interval: float = 0.02) -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Process:
    def __init__(self, name: str, args: list[str], settings: Settings, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "jobctl.cli", *args],
            env=env_for(settings),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill9(self) -> None:
        """SIGKILL the whole process group, like a machine losing power."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGTERM)
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
            except ProcessLookupError:
                pass
        # pool processes left behind by a killed main process
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.log.close()

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


class System:
    """Services for the test process plus the scheduler and worker subprocesses of one settings."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.svc: Services = build(settings)
        self.processes: list[Process] = []

    # -- processes ------------------------------------------------------------------------------------------

    def start_scheduler(self, name: str = "scheduler") -> Process:
        proc = Process(name, ["scheduler"], self.settings, self.log_dir)
        self.processes.append(proc)
        return proc

    def start_worker(self, concurrency: int = 2, name: str | None = None) -> Process:
        hostname = name or f"w{uuid.uuid4().hex[:6]}@test"
        proc = Process(
            hostname.split("@")[0],
            ["worker", "--concurrency", str(concurrency), "--hostname", hostname],
            self.settings,
            self.log_dir,
        )
        self.processes.append(proc)
        client: redis.Redis = self.svc.redis
        wait_until(
            lambda: client.exists(keys.worker(self.settings.queue, hostname)) or proc.popen.poll() is not None,
            30,
            f"worker {hostname} to come up",
        )
        assert proc.popen.poll() is None, f"worker died:\n{proc.tail()}"
        return proc

    def start_api(self) -> tuple[Process, str]:
        """A `jobctl api` server on a free port, once /healthz answers; returns it and its base URL."""
        return self._start_http("api", "/healthz")

    def start_flower(self) -> tuple[Process, str]:
        """`jobctl flower` on a free port, once it answers; returns it and its base URL."""
        return self._start_http("flower", "/healthcheck")

    def _start_http(self, command: str, health: str) -> tuple[Process, str]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        proc = Process(command, [command, "--port", str(port)], self.settings, self.log_dir)
        self.processes.append(proc)
        url = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            if proc.popen.poll() is not None:
                raise AssertionError(f"{command} died:\n{proc.tail()}")
            try:
                return httpx.get(f"{url}{health}", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, 30, f"{command} to answer on port {port}", interval=0.1)
        return proc, url

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.svc.close()

    def logs(self) -> str:
        return "\n\n".join(f"--- {p.name}\n{p.tail()}" for p in self.processes)

    # -- jobs ----------------------------------------------------------------------------------------------------

    def project(self, max_running: int | None = None) -> str:
        name = f"p{uuid.uuid4().hex[:8]}"
        with self.svc.db.write() as s:
            accounts.create_project(s, name, max_running)
        return name

    def submit(
        self,
        project: str,
        job_type: str = "sleep",
        params: dict[str, Any] | None = None,
        target: tuple[str, str] | None = None,
        priority: int = 3,
    ) -> JobRecord:
        jt = self.svc.registry.get(job_type)
        validated, steps = jt.prepare(params)
        self.svc.registry.check_target(jt, target)
        return self.svc.ops.submit(
            project=project,
            job_type=job_type,
            steps=steps,
            params=validated,
            priority=priority,
            submitter="test",
            target=target,
            exclusive=jt.exclusive is not None,
        )

    def job(self, job_id: str) -> JobRecord:
        with self.svc.db.read() as s:
            return jobs_store.get_job(s, job_id)

    def op(self, job_id: str, action: str) -> JobRecord | None:
        return self.svc.ops.operate(job_id, Action(action), "test")

    def events(self, job_id: str) -> list[tuple[str | None, str | None, str]]:
        with self.svc.db.read() as s:
            return [(e.from_status, e.to_status, e.action) for e in jobs_store.job_events(s, job_id)]

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 15) -> JobRecord:
        def check() -> JobRecord | None:
            job = self.job(job_id)
            return job if job.status.value in statuses else None

        try:
            return wait_until(check, timeout, f"job {job_id} to be {'/'.join(statuses)}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it is {self.job(job_id).status}\n{self.logs()}") from None

    def wait_step_running(self, job_id: str, index: int, min_progress: float = 0.0, timeout: float = 15) -> JobRecord:
        def check() -> JobRecord | None:
            job = self.job(job_id)
            step = job.steps[index]
            return job if step.status.value == "RUNNING" and step.progress >= min_progress else None

        return wait_until(check, timeout, f"step {index} of job {job_id} to run past {min_progress}%")

    def settle(self, project: str) -> None:
        """Discard whatever the project still has going, so it holds no worker slot after the test."""
        with self.svc.db.read() as s:
            proj = accounts.get_project(s, project)
            items, _ = jobs_store.list_jobs(s, jobs_store.JobQuery(project_ids=[proj.id], page_size=200))
        for job in items:
            if not job.status.final:
                with contextlib.suppress(Exception):
                    self.op(job.id, "discard")
