"""What the server answers, as typed models. Unknown fields are kept (a newer server may add some), so an
older client keeps working."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class JobStatus(StrEnum):
    """A job's (or a step's) state. DISCARDED and FINISHED are final: a job never leaves them."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    ERROR = "ERROR"
    DISCARDED = "DISCARDED"
    FINISHED = "FINISHED"

    @property
    def final(self) -> bool:
        return self in (JobStatus.DISCARDED, JobStatus.FINISHED)

    @property
    def ended(self) -> bool:
        """FINISHED, DISCARDED or ERROR: the job will not move on by itself."""
        return self.final or self is JobStatus.ERROR


class Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class JobTarget(Model):
    kind: str
    name: str
    version: str | None = None


class Step(Model):
    index: int
    name: str
    status: JobStatus
    progress: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    waiting_s: float = 0.0
    attempt: int = 0
    error: Any = None
    output: Any = None
    retry_at: datetime | None = None
    task_id: str | None = None
    flower_url: str | None = None


class Job(Model):
    id: str
    project: str
    type: str
    target: JobTarget | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = 3
    status: JobStatus
    progress: float = 0.0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    waiting_s: float = 0.0
    submitter: str = ""
    attempt: int = 1
    error: Any = None
    discard_reason: str | None = None
    result: Any = None
    allowed: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)


class JobPage(Model):
    items: list[Job]
    total: int
    page: int
    page_size: int


class JobUpdate(Model):
    """A live change of a job (a `job` event of the event stream)."""

    id: str
    project: str
    status: JobStatus
    progress: float = 0.0
    step: dict[str, Any] | None = None


class Event(Model):
    """One entry of a job's history: who changed what, when."""

    at: datetime
    actor: str
    action: str
    from_status: str | None = Field(None, alias="from")
    to_status: str | None = Field(None, alias="to")
    reason: str | None = None


class BatchResult(Model):
    id: str
    ok: bool
    status: JobStatus | None = None
    error: str | None = None


class Project(Model):
    name: str
    max_running: int | None = None
    created_at: datetime | None = None


class Me(Model):
    name: str
    admin: bool = False
    roles: dict[str, str] = Field(default_factory=dict)


class User(Model):
    name: str
    admin: bool = False
    roles: dict[str, str] = Field(default_factory=dict)


class NewUser(User):
    """A user just created, with its token: the server shows it only this once."""

    token: str


class Target(Model):
    """A `record` target: its version goes up by one on every change."""

    project: str | None = None
    kind: str
    name: str
    version: int | str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class TargetDeleted(Model):
    kind: str
    name: str
    discarded: list[str] = Field(default_factory=list)


class StepInfo(Model):
    name: str
    weight: float = 1.0


class JobType(Model):
    """A job type the server knows: its params' JSON Schema, its steps (None: planned from the params)."""

    name: str
    params_schema: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepInfo] | None = None
    target_kind: str | None = None
    exclusive: str | None = None


@dataclass(frozen=True)
class JobQuery:
    """The filters of the job list; None and empty fields are left out."""

    projects: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    type: str | None = None
    q: str | None = None
    period: str | None = None
    since: str | None = None
    until: str | None = None
    sort: str | None = None
    page: int = 1
    page_size: int = 50

    def params(self) -> list[tuple[str, str | int]]:
        """The query string as (name, value) pairs, repeating `project` and `status`."""
        pairs: list[tuple[str, str | int]] = [("project", p) for p in self.projects]
        pairs += [("status", str(s)) for s in self.statuses]
        for name in ("type", "q", "period", "since", "until", "sort"):
            value = getattr(self, name)
            if value:
                pairs.append((name, value))
        return [*pairs, ("page", self.page), ("page_size", self.page_size)]

    def as_filter(self) -> dict[str, Any]:
        """The same filters as the JSON `filter` of a batch."""
        found: dict[str, Any] = {}
        if self.projects:
            found["project"] = list(self.projects)
        if self.statuses:
            found["status"] = [str(s) for s in self.statuses]
        for name in ("type", "q", "period", "since", "until"):
            value = getattr(self, name)
            if value:
                found[name] = value
        return found
