"""Service entry points, called by the CLI: each runs in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import socket
from types import FrameType

from jobctl.scheduler.settings import Settings
from jobctl.workers.logs import configure


def run_worker(
    settings: Settings, concurrency: int | None = None, hostname: str | None = None, loglevel: str = "INFO"
) -> None:
    """A prefork Celery worker consuming the step queue."""
    from jobctl.workers import hooks
    from jobctl.workers.celery_app import get_app

    configure(settings.log_format, "worker", loglevel)
    app = get_app(settings)
    hooks.install(app)
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


def run_scheduler(settings: Settings) -> None:
    """The dispatch loop; several may run against one PostgreSQL database."""
    from jobctl.scheduler.loop import Scheduler
    from jobctl.workers.services import build

    configure(settings.log_format, "scheduler", settings.log_level)
    services = build(settings)
    registry = services.registry

    def retry_on_lost(job_type: str, attempt: int) -> bool:
        try:
            return registry.get(job_type).retry.retry_lost(attempt)
        except Exception:
            return False

    # Named like Celery's workers, so the events tell which of several schedulers dispatched a job.
    name = f"scheduler@{socket.gethostname()}:{os.getpid()}"[:64]
    scheduler = Scheduler(services.ops, services.bus, settings, retry_on_lost, name=name)

    def _stop(signum: int, frame: FrameType | None) -> None:
        scheduler.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger(__name__).info("scheduler %s started", name)
    try:
        scheduler.run()
    finally:
        services.close()


def run_flower(settings: Settings, port: int | None = None, address: str = "127.0.0.1") -> None:
    """Flower on the step queue's broker, always behind basic auth."""
    from jobctl.workers.celery_app import get_app

    if not (settings.flower_user and settings.flower_password):
        raise SystemExit("Flower needs JOBCTL_FLOWER_USER and JOBCTL_FLOWER_PASSWORD (basic auth is required)")
    configure(settings.log_format, "flower", settings.log_level)
    require_login_for_metrics()
    app = get_app(settings)
    app.start(
        [
            "flower",
            f"--port={port or settings.flower_port}",
            f"--address={address}",
            f"--basic-auth={settings.flower_user}:{settings.flower_password}",
        ]
    )


def require_login_for_metrics() -> None:
    """Make Flower's `/metrics` ask for the same login as every other page.

    Flower 2 serves its Prometheus page (task names, worker names, counts) without authentication even when
    basic auth is on (mher/flower#1342). Its login check is `get_current_user`, which answers 401 for missing
    or wrong credentials; `web.authenticated` makes the page call it. Idempotent."""
    from flower.views.monitor import Metrics
    from tornado import web

    if not getattr(Metrics.get, "_jobctl_login", False):
        guarded = web.authenticated(Metrics.get)
        guarded._jobctl_login = True  # type: ignore[attr-defined]
        Metrics.get = guarded
