"""The chaos suite's harness: the scale of a run and a live system that can read the side tables."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from jobctl.scheduler import keys
from tests.chaos import ledger
from tests.integration.system import Process, System, wait_until

FULL = os.environ.get("JOBCTL_CHAOS_FULL") == "1"
T = TypeVar("T")


def scale(quick: T, full: T) -> T:
    """The quick figure in the normal test run, the full one under `make chaos`."""
    return full if FULL else quick


class Chaos(System):
    """A dedicated live system whose database also holds the side tables (`tests.chaos.ledger`)."""

    def verdict(self) -> ledger.Verdict:
        return ledger.verdict(self.svc.db.engine)

    def overdue(self, slack_s: float) -> int:
        return ledger.overdue_running_steps(self.svc.db.engine, slack_s)

    def statuses(self, job_ids: list[str]) -> dict[str, int]:
        """How many of these jobs are in each status."""
        from jobctl.scheduler.store import models

        counts: dict[str, int] = {}
        with self.svc.db.read() as s:
            for start in range(0, len(job_ids), 500):
                chunk = job_ids[start : start + 500]
                rows = s.execute(
                    sa.select(models.Job.status, sa.func.count())
                    .where(models.Job.id.in_(chunk))
                    .group_by(models.Job.status)
                ).all()
                for status, count in rows:
                    counts[status] = counts.get(status, 0) + count
        return counts

    def invalid_paths(self, job_ids: list[str]) -> list[str]:
        """The jobs whose event history is not a path the transition table allows (`states.is_valid_path`)."""
        from jobctl.scheduler.store import models
        from jobctl.states import is_valid_path

        paths: dict[str, list[tuple[str | None, str | None, str]]] = {job_id: [] for job_id in job_ids}
        with self.svc.db.read() as s:
            for start in range(0, len(job_ids), 500):
                e = models.Event
                rows = s.execute(
                    sa.select(e.job_id, e.from_status, e.to_status, e.action)
                    .where(e.job_id.in_(job_ids[start : start + 500]))
                    .order_by(e.id)
                )
                for job_id, src, dst, action in rows:
                    paths[job_id].append((src, dst, action))
        return [job_id for job_id, path in paths.items() if not is_valid_path(path)]

    def spawn_worker(self, hostname: str, concurrency: int = 2) -> Process:
        """Start a worker without waiting for it to come up (`wait_up` waits); a crashed one's replacement."""
        proc = Process(
            hostname.split("@")[0],
            ["worker", "--concurrency", str(concurrency), "--hostname", hostname],
            self.settings,
            self.log_dir,
        )
        self.processes.append(proc)
        return proc

    def wait_up(self, *hostnames: str, timeout: float = 30) -> None:
        """Wait until these workers announce their capacity."""
        client = self.svc.redis
        wait_until(
            lambda: all(client.exists(keys.worker(self.settings.queue, h)) for h in hostnames),
            timeout,
            f"workers {', '.join(hostnames)} to come up",
        )

    def kill_all(self) -> None:
        """SIGKILL every process of the system: a chaos run needs no graceful shutdown, and teardown is quicker."""
        for proc in self.processes:
            proc.kill9()


def wait_all(check: Callable[[], bool], timeout: float, what: str, on_timeout: Callable[[], str]) -> float:
    """Poll `check` until true; return the seconds it took, or fail with `what` and `on_timeout()`'s details."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {on_timeout()}")
        time.sleep(0.1)
    return time.monotonic() - began


class OverdueSampler:
    """Samples `Chaos.overdue(slack_s)` every `period_s` in a background thread while a scenario runs (a `with`
    block). `stuck` sums the overdue steps over all samples (the report's "stuck"); `worst` is the largest one."""

    def __init__(self, live: Chaos, slack_s: float, period_s: float = 0.25) -> None:
        self.live = live
        self.slack_s = slack_s
        self.period_s = period_s
        self.samples = self.stuck = self.worst = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="overdue-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            try:
                overdue = self.live.overdue(self.slack_s)
            except Exception:  # a sample lost to a busy database is not a finding
                continue
            self.samples += 1
            self.stuck += overdue
            self.worst = max(self.worst, overdue)

    def __enter__(self) -> OverdueSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Checks:
    """A scenario's pass conditions, each with what its assertion says when it fails (a value, or a function
    giving it): `passed` is the report's verdict, `assert_all()` then fails the test at the first condition that
    does not hold, in the order added. One list, so a row and its test never judge by different conditions. The
    conditions every scenario has are methods."""

    def __init__(self, failure: str | None) -> None:
        self._checks: list[tuple[bool, object]] = []
        self.add(not failure, failure)  # the scenario's body ran to its end

    def add(self, holds: bool, message: object = None) -> Checks:
        self._checks.append((bool(holds), message))
        return self

    def none_stuck(self, sampler: OverdueSampler) -> Checks:
        return self.add(sampler.stuck == 0, f"{sampler.worst} steps RUNNING past their lease at worst")

    def nothing_twice(self, verdict: ledger.Verdict) -> Checks:
        """No step recorded, executed or dispatched twice."""
        twice = (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched)
        return self.add(twice == (0, 0, 0), verdict)

    def valid_paths(self, invalid: list[str]) -> Checks:
        return self.add(not invalid, f"event histories the transition table does not allow: {invalid[:5]}")

    @property
    def passed(self) -> bool:
        return all(holds for holds, _ in self._checks)

    def assert_all(self) -> None:
        for holds, message in self._checks:
            assert holds, message() if callable(message) else message
