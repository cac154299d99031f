"""The worker process's entry point, called (with the wiring) by `jobctl.processes.run_worker`: it runs in
the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import socket
from collections.abc import Callable

from jobctl.logs import configure
from jobctl.scheduler.settings import Settings
from jobctl.workers import (
    control,  # noqa: F401 - importing it registers the stop command with Celery
    hooks,
    tasks,
)
from jobctl.workers.celery_app import get_app
from jobctl.workers.registry import Registry
from jobctl.workers.services import Services


def run_worker(
    settings: Settings,
    job_types: Registry,
    build: Callable[[], Services],
    concurrency: int | None = None,
    hostname: str | None = None,
    loglevel: str = "INFO",
) -> None:
    """A prefork Celery worker consuming the step queue: a step task for each of `job_types`; each pool
    process gets its own services from `build`, called after fork."""
    configure(settings.log_format, "worker", loglevel)
    app = get_app(settings)
    tasks.register(app, job_types)
    hooks.install(app, build)
    argv = [
        "--quiet",  # no banner: every line goes through logging (and is JSON when asked)
        "worker",
        "--pool=prefork",
        f"--queues={settings.queue}",
        f"--loglevel={loglevel}",
        "--without-mingle",
        "--without-gossip",
        "--events",
    ]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    argv.append(f"--hostname={hostname or f'jobctl@{socket.gethostname()}'}")
    app.worker_main(argv)
