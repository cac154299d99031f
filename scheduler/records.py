"""Records are values: frozen dataclasses built from rows, never live ORM objects."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from jobctl.states import JobStatus, allowed_operations


class StepRow(Protocol):
    """A step's row as the store reads and changes it: the ORM object, or a plain row of the hand-over's
    (`store.handover`), with the same attribute names (`store.models.Step`)."""

    job_id: str
    index: int
    name: str
    weight: float
    status: str
    progress: float
    attempt: int
    error: str | None
    error_code: str | None
    error_hint: str | None
    error_at: datetime | None
    info: dict[str, Any] | None
    checkpoint: dict[str, Any]
    output: dict[str, Any] | None
    started_at: datetime | None
    finished_at: datetime | None
    running_since: datetime | None
    ready_at: datetime | None
    retry_at: datetime | None
    lease_until: datetime | None
    duration_s: float
    waiting_s: float
    fence: str | None
    task_id: str | None
    worker: str | None
    dispatches: int
    failures: int


class JobRow(Protocol):
    """A job's row as the store reads and changes it (the ORM object or a plain row; `store.models.Job`)."""

    id: str
    project_id: int
    type: str
    target_kind: str | None
    target_name: str | None
    target_version: str | None
    params: dict[str, Any]
    priority: int
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    pending_since: datetime | None
    running_since: datetime | None
    duration_s: float
    waiting_s: float
    submitter: str
    attempt: int
    error: str | None
    error_code: str | None
    discard_reason: str | None
    result: dict[str, Any] | None


def _elapsed(total: float, since: datetime | None, now: datetime) -> float:
    return total + ((now - since).total_seconds() if since else 0.0)


@dataclass(frozen=True)
class StepRecord:
    index: int
    name: str
    weight: float
    status: JobStatus
    progress: float
    attempt: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    waiting_s: float
    fence: str | None
    worker: str | None
    task_id: str | None = None  # the latest attempt's Celery task id, also after it ended
    output: dict[str, Any] | None = None  # what the step returned (FINISHED steps)
    retry_at: datetime | None = None  # when a failed attempt's retry is due (the job waits PENDING until then)
    # The failure that put the step in ERROR, with `error` (its message): its code, its hint and when it failed.
    error_code: str | None = None
    error_hint: str | None = None
    error_at: datetime | None = None
    info: dict[str, Any] | None = None  # what the step reported with `ctx.info`

    @classmethod
    def from_row(cls, row: StepRow, now: datetime) -> StepRecord:
        """The step as `row` holds it at `now` (its running and waiting times include the current stretch)."""
        status = JobStatus(row.status)
        waiting = row.waiting_s
        if row.ready_at is not None and status in (JobStatus.PENDING,) and row.started_at is None:
            waiting = _elapsed(row.waiting_s, row.ready_at, now)
        return cls(
            index=row.index,
            name=row.name,
            weight=row.weight,
            status=status,
            progress=100.0 if status is JobStatus.FINISHED else row.progress,
            attempt=row.attempt,
            error=row.error,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_s=_elapsed(row.duration_s, row.running_since, now),
            waiting_s=waiting,
            fence=row.fence,
            worker=row.worker,
            task_id=row.task_id,
            output=row.output,
            retry_at=row.retry_at if status is JobStatus.PENDING else None,  # a stale one is not cleared
            error_code=row.error_code,
            error_hint=row.error_hint,
            error_at=row.error_at,
            info=row.info,
        )


@dataclass(frozen=True)
class TargetRef:
    kind: str
    name: str
    version: str | None


@dataclass(frozen=True)
class JobRecord:
    id: str
    project: str
    type: str
    target: TargetRef | None
    params: dict[str, Any]
    priority: int
    status: JobStatus
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float
    waiting_s: float
    submitter: str
    attempt: int
    error: str | None
    discard_reason: str | None
    result: dict[str, Any] | None
    steps: tuple[StepRecord, ...] = field(default=())
    error_code: str | None = None  # the code of `error`: its step's failure's (`scheduler.failures`)

    @property
    def progress(self) -> float:
        """Weighted mean of the steps' progress; a FINISHED step counts 100 (docs/contract.md §2)."""
        total = sum(s.weight for s in self.steps)
        if not total:
            return 100.0 if self.status is JobStatus.FINISHED else 0.0
        return round(sum(s.weight * s.progress for s in self.steps) / total, 2)

    @property
    def allowed(self) -> list[str]:
        return allowed_operations(self.status)

    @property
    def current_step(self) -> StepRecord | None:
        """The first step that is not FINISHED, if any."""
        return next((s for s in self.steps if s.status is not JobStatus.FINISHED), None)

    @classmethod
    def from_row(cls, row: JobRow, project: str, steps: Sequence[StepRow], now: datetime) -> JobRecord:
        """The job as `row` and its `steps` hold it at `now` (times include the current stretch)."""
        target = TargetRef(row.target_kind, row.target_name or "", row.target_version) if row.target_kind else None
        return cls(
            id=row.id,
            project=project,
            type=row.type,
            target=target,
            params=dict(row.params or {}),
            priority=row.priority,
            status=JobStatus(row.status),
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            duration_s=_elapsed(row.duration_s, row.running_since, now),
            waiting_s=_elapsed(row.waiting_s, row.pending_since, now),
            submitter=row.submitter,
            attempt=row.attempt,
            error=row.error,
            discard_reason=row.discard_reason,
            result=row.result,
            steps=tuple(StepRecord.from_row(s, now) for s in sorted(steps, key=lambda s: s.index)),
            error_code=row.error_code,
        )


@dataclass(frozen=True)
class ProjectRecord:
    id: int
    name: str
    max_running: int | None
    created_at: datetime


@dataclass(frozen=True)
class TargetRecord:
    project: str
    kind: str
    name: str
    version: int
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class EventRecord:
    id: int
    job_id: str
    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str | None
    reason: str | None
    details: dict[str, Any] | None = None  # structured facts, e.g. a params edit's old and new params


@dataclass(frozen=True)
class UserRecord:
    id: int
    name: str
    admin: bool
    roles: dict[str, str]
    disabled: bool = False


@dataclass(frozen=True)
class TokenRecord:
    """One of a user's named tokens, as it is listed: never its value or hash."""

    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the audit log: who did what to which subject, from where, and how it ended."""

    at: datetime
    actor: str
    action: str
    subject: str
    address: str | None
    outcome: str
    details: dict[str, Any]


@dataclass(frozen=True)
class StepSpec:
    """What a job type declares about one of its steps, as the domain needs it."""

    name: str
    weight: float = 1.0


@dataclass(frozen=True)
class Dispatch:
    """A step attempt the store has claimed and the executor must now send."""

    job_id: str
    job_type: str
    step_index: int
    step_name: str
    fence: str
