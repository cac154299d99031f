"""The entry points of jobctl's long-running processes, called by the `jobctl` commands (`jobctl.cli.processes`):
the API (a uvicorn factory), the scheduler, a worker and Flower. Each gets its services from the wiring
(`jobctl.wiring`) and runs in the foreground until SIGINT or SIGTERM."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
from types import FrameType
from typing import TYPE_CHECKING

from jobctl import wiring
from jobctl.logs import configure
from jobctl.scheduler.loop import Scheduler
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.webhooks import Deliverer
from jobctl.workers import celery_app, entry

if TYPE_CHECKING:
    from fastapi import FastAPI


def api_app() -> FastAPI:
    """The HTTP API for uvicorn (`jobctl.processes:api_app`, factory=True): its lifespan reads the settings,
    refuses unsafe ones, builds the services (a connection for each of its threads, and two for the event loop's
    own reads) and closes them at shutdown.

    The API's modules (FastAPI, the routes, the schemas) are imported here and in `run_scheduler` (the webhooks'
    job JSON), never at the top: a worker process does not load them."""
    from jobctl.api.app import THREADS as API_THREADS
    from jobctl.api.app import create_app

    return create_app(build=functools.partial(wiring.build, pool_size=API_THREADS + 2))


def run_worker(
    settings: Settings, concurrency: int | None = None, hostname: str | None = None, loglevel: str = "INFO"
) -> None:
    """A prefork Celery worker consuming the step queue (`workers.entry.run_worker`)."""
    build = functools.partial(wiring.build, settings, pool_size=2, background_notifications=True)
    entry.run_worker(settings, wiring.job_types(settings), build, concurrency, hostname, loglevel)


def run_scheduler(settings: Settings) -> None:
    """The dispatch loop, and beside it the webhooks' deliverer (`scheduler.webhooks`); several may run against one
    database."""
    from jobctl.api.webhook_schemas import job_renderer  # the job JSON the API answers with

    configure(settings.log_format, "scheduler", settings.log_level)
    services = wiring.build(settings)
    registry = services.registry

    def retry_on_lost(job_type: str, attempt: int) -> bool:
        try:
            return registry.get(job_type).retry.retry_lost(attempt)
        except Exception:
            return False

    # Named like Celery's workers, so the events tell which of several schedulers dispatched a job.
    name = f"scheduler@{socket.gethostname()}:{os.getpid()}"[:64]
    scheduler = Scheduler(services.ops, services.bus, settings, retry_on_lost, name=name)
    deliverer = Deliverer.open(settings, job_renderer(services))  # webhooks: threads and connections of their own

    def _stop(signum: int, frame: FrameType | None) -> None:
        scheduler.stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger(__name__).info("scheduler %s started", name)
    deliverer.start()
    try:
        scheduler.run()
    finally:
        deliverer.stop()
        services.close()


def run_flower(settings: Settings, port: int | None = None, address: str = "127.0.0.1") -> None:
    """Flower on the step queue's broker, always behind basic auth, and read-only: Flower's own controls
    (revoke or terminate a task, apply one, shut down a worker, resize or restart its pool, change its queues or
    limits) answer 403. They would act behind jobctl's roles, history and fencing; jobctl's operations are the
    way to stop work (docs/contract.md §5.1)."""
    if not (settings.flower_user and settings.flower_password):
        raise SystemExit("Flower needs JOBCTL_FLOWER_USER and JOBCTL_FLOWER_PASSWORD (basic auth is required)")
    configure(settings.log_format, "flower", settings.log_level)
    require_login_for_metrics()
    app = celery_app.get_app(settings)
    app.start(
        [
            "flower",
            f"--port={port or settings.flower_port}",
            f"--address={address}",
            f"--basic-auth={settings.flower_user}:{settings.flower_password}",
            "--read_only=true",
        ]
    )


def require_login_for_metrics() -> None:
    """Make Flower's `/metrics` ask for the same login as every other page.

    Flower 2 serves its Prometheus page (task names, worker names, counts) without authentication even when
    basic auth is on (mher/flower#1342). Its login check is `get_current_user`, which answers 401 for missing
    or wrong credentials; `web.authenticated` makes the page call it. Idempotent."""
    from flower.views.monitor import Metrics  # Flower is loaded only by the process that runs it
    from tornado import web

    if not getattr(Metrics.get, "_jobctl_login", False):
        guarded = web.authenticated(Metrics.get)
        guarded._jobctl_login = True  # type: ignore[attr-defined]
        Metrics.get = guarded
