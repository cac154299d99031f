"""The `waiting_for` of the jobs an answer shows (docs/contract.md §4.3): the live workers' capacity read where
the dispatcher reads it, everything else in `scheduler.store.waiting` (which states the rules)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from jobctl.scheduler.errors import Unavailable
from jobctl.scheduler.records import JobRecord
from jobctl.scheduler.services import Services
from jobctl.scheduler.store import waiting
from jobctl.states import JobStatus

__all__ = ["CAPACITY_AGE_S", "limits", "waiting_for"]

#: How old a capacity read may be (the dispatcher's own, per API process): a worker's registration is seen as
#: late as that anyway (`JOBCTL_WORKER_TTL_S`).
CAPACITY_AGE_S = 1.0


def limits(services: Services) -> waiting.Limits:
    """The limits a dispatch pass would apply now; the capacity None if Redis cannot tell it."""
    try:
        capacity: int | None = services.ops.dispatcher.capacity(max_age=CAPACITY_AGE_S)
    except Unavailable:
        capacity = None
    settings = services.settings
    return waiting.Limits(capacity, settings.max_running, settings.project_max_running)


def waiting_for(services: Services, reader: Session | Connection, jobs: Sequence[JobRecord]) -> dict[str, str]:
    """Each PENDING job's reason, by id: nothing read for a page without one; else the capacity (Redis, at most
    once a second per process) and two statements (`scheduler.store.waiting`)."""
    if not any(job.status is JobStatus.PENDING for job in jobs):
        return {}
    return waiting.waiting_for(reader, jobs, limits(services))
