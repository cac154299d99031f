"""A live system spread over several hosts: the scheduler (and the API) in the root namespace, each worker in a
network namespace of its own (`tests.chaos.hosts.netns`), all on the run's own PostgreSQL and Redis
(`tests.chaos.hosts.servers`)."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import models
from tests.chaos import fencing
from tests.chaos.harness import Chaos
from tests.chaos.hosts.netns import Host, Network
from tests.chaos.hosts.servers import Servers
from tests.conftest import env_for
from tests.integration.system import Process

SQLITE_REASON = (
    "several hosts share one database over the network; SQLite is a file, and SQLite on a network filesystem is "
    "not supported (its file locks are not reliable there), so a SQLite file shared across hosts is not a setup "
    "jobctl runs in (docs/reliability.md, 'Several hosts')"
)


class HostProcess(Process):
    """A `jobctl` process started inside a host's network namespace (in its own process group, as `Process`)."""

    def __init__(self, name: str, args: list[str], settings: Settings, log_dir: Path, host: Host) -> None:
        self.name = name
        self.host = host
        self.log_path = log_dir / f"{name}.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            host.command([sys.executable, "-m", "jobctl.cli", *args]),
            env=env_for(settings),
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


class Cluster(Chaos):
    """A `Chaos` system whose workers run on hosts of `network`; `servers` are the run's PostgreSQL and Redis."""

    def __init__(self, settings: Settings, log_dir: Path, network: Network, servers: Servers) -> None:
        super().__init__(settings, log_dir)
        self.network = network
        self.servers = servers
        self.workers: dict[str, HostProcess] = {}  # by Celery hostname

    def spawn_on(self, host: Host, hostname: str, concurrency: int = 2, **overrides: object) -> HostProcess:
        """Start a worker on `host` (its settings changed by `overrides`, e.g. a relay's database URL)."""
        settings = self.settings.model_copy(update=overrides) if overrides else self.settings
        proc = HostProcess(
            hostname.split("@")[0],
            ["worker", "--concurrency", str(concurrency), "--hostname", hostname],
            settings,
            self.log_dir,
            host,
        )
        self.processes.append(proc)
        self.workers[hostname] = proc
        return proc

    def self_fences(self, hostname: str) -> list[fencing.SelfFence]:
        """The self-fences the worker `hostname` logged so far."""
        return fencing.self_fences(self.workers[hostname].log_path)

    def running_on(self, hostname: str, min_progress: float = 0.0) -> list[tuple[str, int, str]]:
        """(job, step, fence) of the steps RUNNING on worker `hostname`, at least `min_progress` percent done."""
        with self.svc.db.read() as s:
            rows = s.execute(
                sa.select(models.Step.job_id, models.Step.index, models.Step.fence).where(
                    models.Step.status == "RUNNING",
                    models.Step.worker == hostname,
                    models.Step.progress >= min_progress,
                )
            ).all()
        return [(r[0], r[1], r[2] or "") for r in rows]

    def finished_on_since(self, hostname: str, since: datetime) -> int:
        """How many steps worker `hostname` finished after `since` (it takes work)."""
        with self.svc.db.read() as s:
            return int(
                s.scalar(
                    sa.select(sa.func.count())
                    .select_from(models.Step)
                    .where(
                        models.Step.worker == hostname,
                        models.Step.status == "FINISHED",
                        models.Step.finished_at > since,
                    )
                )
                or 0
            )

    def step_state(self, steps: list[tuple[str, int]]) -> list[tuple[str, str | None, datetime | None]]:
        """(status, worker, finished at) of each of these (job, step)."""
        out = []
        with self.svc.db.read() as s:
            for job_id, index in steps:
                row = s.execute(
                    sa.select(models.Step.status, models.Step.worker, models.Step.finished_at).where(
                        models.Step.job_id == job_id, models.Step.index == index
                    )
                ).one()
                at = row[2] if row[2] is None or row[2].tzinfo else row[2].replace(tzinfo=UTC)
                out.append((row[0], row[1], at))
        return out
