"""SQLAlchemy 2 typed ORM models. Only the store (`scheduler.store.*`) builds queries on them.

Invariants live in the schema: CHECK constraints on statuses, priorities and progress; unique names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from jobctl.states import JobStatus

STATUSES = ", ".join(f"'{s.value}'" for s in JobStatus)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on SQLite and PostgreSQL alike."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    max_running: Mapped[int | None]
    created_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("max_running IS NULL OR max_running >= 1", name="max_running"),)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    admin: Mapped[bool] = mapped_column(default=False)
    disabled: Mapped[bool] = mapped_column(default=False, server_default=false())  # every token refused
    created_at: Mapped[datetime]


class Token(Base):
    """A user's named bearer token: only its SHA-256 is kept, with the first characters to tell it by."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # the token's first characters ("" when not known)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]  # written at most once a minute (`accounts.USE_RECORDED_EVERY_S`)
    expires_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("user_id", "name"),)


class AuditEntry(Base):
    """Who changed which account, project, target, or ran a batch: from where, and how it ended."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str] = mapped_column(String(600))
    address: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Role(Base):
    __tablename__ = "roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))

    __table_args__ = (CheckConstraint("role IN ('viewer', 'operator')", name="role"),)


class Target(Base):
    """A `record` target registered through the API. Its version goes up by one on every change."""

    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(512))
    version: Mapped[int] = mapped_column(default=1)
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("project_id", "kind", "name", name="uq_targets_project_kind_name"),
        CheckConstraint("version >= 1", name="version"),
    )


class Job(Base):
    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(64))
    target_kind: Mapped[str | None] = mapped_column(String(32))
    target_name: Mapped[str | None] = mapped_column(String(512))
    target_version: Mapped[str | None] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    priority: Mapped[int] = mapped_column(default=3)
    status: Mapped[str] = mapped_column(String(16))
    submitter: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(default=1)
    error: Mapped[str | None] = mapped_column(Text)
    error_code: Mapped[str | None] = mapped_column(String(64))  # the code of `error`: the failing step's, or jobctl's
    discard_reason: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    waiting_s: Mapped[float] = mapped_column(Float, default=0.0)
    # When the job entered its current PENDING / RUNNING stretch; turned into waiting_s / duration_s on leaving.
    pending_since: Mapped[datetime | None]
    running_since: Mapped[datetime | None]
    # A PENDING job waiting for a step's retry delay is not dispatched before this (see docs/authoring.md).
    retry_at: Mapped[datetime | None]
    # Its job type is exclusive on the target: it does not start while another job on its target is RUNNING.
    exclusive: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime]

    __table_args__ = (
        CheckConstraint(f"status IN ({STATUSES})", name="status"),
        CheckConstraint("priority BETWEEN 0 AND 4", name="priority"),
        CheckConstraint("(target_kind IS NULL) = (target_name IS NULL)", name="target"),
        Index("ix_jobs_dispatch", "status", "project_id", "priority", "created_at", "id"),
        Index("ix_jobs_project_created", "project_id", "created_at"),
        Index("ix_jobs_project_status_created", "project_id", "status", "created_at"),
        Index("ix_jobs_created", "created_at"),
        Index("ix_jobs_target", "project_id", "target_kind", "target_name"),
    )


class Step(Base):
    __tablename__ = "steps"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column("idx", Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    status: Mapped[str] = mapped_column(String(16))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    attempt: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)  # the failure's message
    error_code: Mapped[str | None] = mapped_column(String(64))  # and its code, hint and time (structured failures)
    error_hint: Mapped[str | None] = mapped_column(Text)
    error_at: Mapped[datetime | None]
    info: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # small key-value details the step reported
    checkpoint: Mapped[dict[str, Any]] = mapped_column(default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # what the step returned, for later steps
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float] = mapped_column(Float, default=0.0)
    waiting_s: Mapped[float] = mapped_column(Float, default=0.0)
    ready_at: Mapped[datetime | None]  # when the step became the next one to run
    running_since: Mapped[datetime | None]
    # The current attempt: its fencing token (also the Celery task id), its worker and its lease.
    fence: Mapped[str | None] = mapped_column(String(36))
    task_id: Mapped[str | None] = mapped_column(String(36))  # the latest attempt's token, kept after it ends
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[datetime | None]
    dispatches: Mapped[int] = mapped_column(default=0)  # messages sent for the current attempt
    retry_at: Mapped[datetime | None]  # a failed attempt's retry is due then (its job waits PENDING until)
    # Attempts that failed (raised or timed out) since the job was submitted, resumed or restarted: what the job
    # type's Retry counts (pauses and lost workers do not).
    failures: Mapped[int] = mapped_column(default=0, server_default="0")

    __table_args__ = (
        CheckConstraint(f"status IN ({STATUSES})", name="status"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress"),
        CheckConstraint("weight > 0", name="weight"),
        Index("ix_steps_lease", "lease_until"),
    )


class Event(Base):
    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # structured facts, e.g. a params edit's old and new


class StepLog(Base):
    __tablename__ = "step_logs"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(32))
    step_index: Mapped[int]
    at: Mapped[datetime]
    line: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        ForeignKeyConstraint(["job_id", "step_index"], ["steps.job_id", "steps.idx"], ondelete="CASCADE"),
        Index("ix_step_logs_step", "job_id", "step_index", "id"),
    )


#: The tables themselves, for the Core statements of the hot path (`scheduler.handover`, `store.insert_job`).
JOBS: Table = Job.__table__  # type: ignore[assignment]
STEPS: Table = Step.__table__  # type: ignore[assignment]
EVENTS: Table = Event.__table__  # type: ignore[assignment]
PROJECTS: Table = Project.__table__  # type: ignore[assignment]


# -- webhooks (docs/contract.md §4.11; the sending is `scheduler.webhooks`) --------------------------------------


class Webhook(Base):
    """A project's webhook: the URL that is POSTed the events bringing a job into one of `statuses`. Its `secret`
    signs every delivery, so it is kept as given (unlike a token, which only has to be recognised)."""

    __tablename__ = "webhooks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2048))
    statuses: Mapped[list[str]] = mapped_column(JSON)
    secret: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))


class WebhookDelivery(Base):
    """One event for one webhook: its body (the exact bytes every attempt sends) and how sending it went. Known by
    (event, webhook, job): SQLite may give a deleted event's id to a new event, never of the same job."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the X-Jobctl-Delivery a receiver dedupes by
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event_id: Mapped[int]
    job_id: Mapped[str] = mapped_column(String(32))  # no foreign key: the delivery outlives a deleted job
    action: Mapped[str] = mapped_column(String(16))
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))
    event_at: Mapped[datetime]
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    # When a pending delivery is due; while an attempt is out, the end of its lease (claimed by `lease`).
    next_attempt_at: Mapped[datetime | None]
    lease: Mapped[str | None] = mapped_column(String(32))
    last_status: Mapped[int | None]  # the HTTP status of the last answer
    last_error: Mapped[str | None] = mapped_column(Text)  # why the last attempt failed (no answer, not 2xx, refused)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("event_id", "webhook_id", "job_id", name="uq_webhook_deliveries_event"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_next", "webhook_id", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_log", "webhook_id", "created_at"),
    )


class WebhookCursor(Base):
    """How far the events have been turned into deliveries: every event up to `event_id` was, but the `gaps`
    (ids not seen yet, by when they were first missed: a transaction may commit after a later one). `top_job` is
    the job of the event `event_id`, to notice that event deleted; `version` makes each pass's update conditional."""

    __tablename__ = "webhook_cursor"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    event_id: Mapped[int]
    top_job: Mapped[str | None] = mapped_column(String(32))
    gaps: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=0)
