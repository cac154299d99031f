"""What every part of the store shares: the clock, new ids, the event row, and the fence of a worker's write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    insert,
)
from sqlalchemy.orm import Session

from jobctl.scheduler.store import models
from jobctl.scheduler.store.prepared import Prepared
from jobctl.states import JobStatus

S = JobStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def connection_of(reader: Session | Connection) -> Connection:
    """The connection a read runs on: a session's (in its transaction), or the connection itself (`Database.query`:
    outside any transaction)."""
    return reader.connection() if isinstance(reader, Session) else reader


def new_id() -> str:
    return uuid.uuid4().hex


#: An event row: parameters j (the job), now, actor, action, before, after, reason.
INSERT_EVENT = Prepared(
    insert(models.EVENTS).values(
        job_id=bindparam("j"),
        at=bindparam("now"),
        actor=bindparam("actor"),
        action=bindparam("action"),
        from_status=bindparam("before"),
        to_status=bindparam("after"),
        reason=bindparam("reason"),
    )
)


def fenced(job_id: Any, index: Any, fence: Any, status: JobStatus | None = None) -> tuple[Any, ...]:
    """The WHERE conditions that fence a write to step `index` of `job_id` to the attempt `fence` (values, or
    bind parameters for a prepared statement)."""
    conditions = (models.Step.job_id == job_id, models.Step.index == index, models.Step.fence == fence)
    return conditions if status is None else (*conditions, models.Step.status == status.value)
