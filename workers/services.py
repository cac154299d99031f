"""The composition root: builds the database, Redis, the bus, the executor and the operations service.

Entry points (the API, the scheduler, each worker process, the CLI) call `build()` once with the settings
they read; nothing here runs at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

import redis

from jobctl.scheduler.bus import RedisBus
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.outbox import Outbox
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.targets import TargetKinds
from jobctl.workers.registry import Registry, load_plugins, registry


@dataclass
class Services:
    settings: Settings
    db: Database
    redis: redis.Redis
    bus: RedisBus
    targets: TargetKinds
    registry: Registry
    ops: Operations
    metrics: Metrics

    def close(self) -> None:
        self.db.dispose()
        self.redis.close()


def build(settings: Settings, *, pool_size: int = 5, background_notifications: bool = False) -> Services:
    """Wire the services for one process. Creates no tables: run `jobctl db upgrade` for that. With
    `background_notifications` (a worker's pool processes), notifications are sent by a thread of their own
    (`scheduler.outbox`): a step never waits for Redis."""
    from jobctl.workers.executor import CeleryExecutor

    load_plugins(settings.plugins)
    db = Database(settings.database_url, pool_size=pool_size)
    client = redis.Redis.from_url(
        settings.redis_url, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30, retry_on_timeout=True
    )
    metrics = Metrics(client, settings.queue)
    bus = RedisBus(client, metrics, Outbox(client) if background_notifications else None)
    targets = TargetKinds(settings.file_root)
    ops = Operations(db, CeleryExecutor(settings, client), bus, targets, settings)
    return Services(settings, db, client, bus, targets, registry, ops, metrics)
