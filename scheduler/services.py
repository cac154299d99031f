"""`Services`: what a process's entry point hands to the code it runs - the settings, the adapters (database,
Redis, bus, metrics, target kinds), the operations service and the job types.

`jobctl.wiring.build` builds them. They are typed with the domain's protocols (`scheduler.executor.Bus`,
`JobTypes` below), so the HTTP API can take them without loading Celery or the worker runtime; the worker runtime
uses `workers.services.Services`, the same services with the job types' full interface.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from pydantic import BaseModel

from jobctl.scheduler.executor import Bus
from jobctl.scheduler.metrics import Metrics
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.records import StepSpec
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.targets import TargetKinds


class JobTypeInfo(Protocol):
    """What the API reads of a job type (`workers.registry.JobType` has it)."""

    @property
    def name(self) -> str: ...

    @property
    def params(self) -> type[BaseModel]: ...

    @property
    def target_kind(self) -> str | None: ...

    @property
    def target_required(self) -> bool: ...

    @property
    def target_allowed(self) -> bool: ...

    @property
    def exclusive(self) -> str | None: ...

    def step_list(self) -> list[StepSpec] | None:
        """The declared steps, or None when they are planned from the params."""
        ...

    def prepare(self, raw: dict[str, Any] | None) -> tuple[dict[str, Any], list[StepSpec]]:
        """The validated params and the steps of a job with params `raw`; `errors.Invalid` if refused."""
        ...


class JobTypes(Protocol):
    """The job types this deployment knows (`workers.registry.Registry` is one)."""

    def get(self, name: str) -> JobTypeInfo:
        """The job type called `name`; `errors.Invalid` if there is none."""
        ...

    def types(self) -> Sequence[JobTypeInfo]:
        """Every job type, by name."""
        ...

    def check_target(self, job_type: JobTypeInfo, target: tuple[str, str] | None) -> None:
        """`errors.Invalid` unless the target (kind, name) fits what the job type declares."""
        ...


@dataclass
class Services:
    """One process's services. The process that built them closes them (`close`)."""

    settings: Settings
    db: Database
    redis: redis.Redis
    bus: Bus
    targets: TargetKinds
    registry: JobTypes
    ops: Operations
    metrics: Metrics

    def close(self) -> None:
        """Release the database pool and the Redis connections."""
        self.db.dispose()
        self.redis.close()
