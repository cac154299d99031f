"""The composition root: the one place the services are built - the database, Redis, the bus, the metrics,
the target kinds, the job types (built-in and plugins) and the operations service over the Celery executor.

Every process's entry point (`jobctl.processes`) calls `build()` once with the settings it read; the tests and the
benchmark call it too. Nothing here runs at import time except registering the built-in job types.
"""

from __future__ import annotations

import redis

from jobctl.scheduler.bus import RedisBus
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.outbox import Outbox
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.targets import TargetKinds
from jobctl.workers import jobtypes  # noqa: F401 - importing it registers the built-in job types
from jobctl.workers.executor import CeleryExecutor
from jobctl.workers.registry import Registry, load_plugins, registry
from jobctl.workers.services import Services


def job_types(settings: Settings) -> Registry:
    """The job types of this deployment: the built-in ones and those of the plugins in `settings.plugins`
    (`registry.PluginError` if one cannot be imported)."""
    load_plugins(settings.plugins)
    return registry


def build(settings: Settings, *, pool_size: int = 5, background_notifications: bool = False) -> Services:
    """Wire the services for one process; the caller closes them. Creates no tables: run `jobctl db upgrade` for
    that. With `background_notifications` (a worker's pool processes), notifications are sent by a thread of
    their own (`scheduler.outbox`): a step never waits for Redis."""
    types = job_types(settings)
    db = Database(settings.database_url, pool_size=pool_size)
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, retry_on_timeout=True
    )
    metrics = Metrics(client, settings.queue)
    bus = RedisBus(client, metrics, Outbox(client) if background_notifications else None)
    targets = TargetKinds(settings.file_root)
    ops = Operations(db, CeleryExecutor(settings, client), bus, targets, settings)
    return Services(settings, db, client, bus, targets, types, ops, metrics)
