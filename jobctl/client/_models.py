"""What the server answers, as typed models. Unknown fields are kept (a newer server may add some), so an
older client keeps working."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

# The one definition of the states, shared with the server: `jobctl.client.JobStatus` is `jobctl.states.JobStatus`
# (which imports nothing, so the client still loads no server module).
from jobctl.states import JobStatus


class Model(BaseModel):
    """The base of every answer: fields a newer server adds are kept (in `model_extra`), never refused."""

    model_config = ConfigDict(extra="allow")


class JobTarget(Model):
    """What a job works on, and the target's version when the job was submitted."""

    kind: str
    name: str
    version: str | None = None


class StepError(Model):
    """The failure that put a step in ERROR: its `code` (the step's own, or one of jobctl's: `exception`,
    `timeout`, `worker_lost`, ...), `message`, `hint` (what to do about it) and when it happened (`at`). From a
    server older than structured failures, only `message` is set."""

    code: str | None = None
    message: str = ""
    hint: str | None = None
    at: datetime | None = None


def _step_error(value: Any) -> Any:
    """A step's `error` as a `StepError`'s fields: an older server's plain message becomes the `message`."""
    return {"message": value} if isinstance(value, str) else value


class Step(Model):
    """One step of a job: its state, progress and times; `output` once it finished; `retry_at` while a failed
    attempt waits to be tried again; `error` once it failed for good; `info`, what it reported with `ctx.info`."""

    index: int
    name: str
    status: JobStatus
    progress: float = 0.0
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float = 0.0
    waiting_s: float = 0.0
    attempt: int = 0
    error: Annotated[StepError | None, BeforeValidator(_step_error)] = None
    info: Annotated[dict[str, Any], BeforeValidator(lambda value: value or {})] = Field(default_factory=dict)
    output: Any = None
    retry_at: datetime | None = None
    task_id: str | None = None
    flower_url: str | None = None


def _job_error(job: Any) -> Any:
    """A job's fields with its `error` as a message: an error object (`{code, message}`) is split into `error`
    (its message) and `error_code` (unless the job has one)."""
    if isinstance(job, dict) and isinstance(job.get("error"), dict):
        error = job["error"]
        return {"error_code": error.get("code"), **job, "error": error.get("message")}
    return job


class Job(Model):
    """A job as the server shows it (docs/contract.md, "the job"), every step included. `allowed`: the
    operations its state allows now; `error` and `error_code`, the message and code of the failure that put it
    in ERROR; `waiting_for`, why it has not started yet while it is PENDING (None from a submission's answer
    and from older servers)."""

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
    error: str | None = None
    error_code: str | None = None
    waiting_for: str | None = None
    discard_reason: str | None = None
    result: Any = None
    allowed: list[str] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _split_error(cls, data: Any) -> Any:
        return _job_error(data)


class JobPage(Model):
    """One page of the job list; `total` counts every matching job."""

    items: list[Job]
    total: int
    page: int
    page_size: int


class JobUpdate(Model):
    """A live change of a job (a `job` event of the event stream): its status and progress, and the step that
    changed (`{index, name, status, progress}`) when one did."""

    id: str
    project: str
    status: JobStatus
    progress: float = 0.0
    step: dict[str, Any] | None = None


class Event(Model):
    """One entry of a job's history: who changed what, when (an `edit` of its params keeps its status)."""

    at: datetime
    actor: str
    action: str
    from_status: str | None = Field(None, alias="from")
    to_status: str | None = Field(None, alias="to")
    reason: str | None = None
    details: dict[str, Any] | None = None  # structured facts: an `edit`'s `{old, new}` params


class BatchResult(Model):
    """One job's outcome in a batch: `ok`, its `status` now (null once deleted, or for a job the caller cannot
    see) and, when refused, the `error` saying why."""

    id: str
    ok: bool
    status: JobStatus | None = None
    error: str | None = None


class Project(Model):
    """A project; `max_running` None: the server's default limit."""

    name: str
    max_running: int | None = None
    created_at: datetime | None = None


class Me(Model):
    """The caller: an admin (every project), or a role per project (`viewer` or `operator`)."""

    name: str
    admin: bool = False
    roles: dict[str, str] = Field(default_factory=dict)


class User(Model):
    """A user, their role per project, and whether they are `disabled` (a disabled user's tokens are refused;
    False from a server that does not know of disabling)."""

    name: str
    admin: bool = False
    disabled: bool = False
    roles: dict[str, str] = Field(default_factory=dict)


class NewUser(User):
    """A user just created, with its token (named `default`): the server shows it only this once."""

    token: str


class Token(Model):
    """One of a user's API tokens, never its value: its `name` (unique per user), `prefix` (its first
    characters, to recognise it by), when it was created and last used, and when it expires (None: never).
    `expired`: it is refused from now on."""

    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None = None
    expires_at: datetime | None = None
    expired: bool = False


class NewToken(Token):
    """A token just created, with its value: the server shows it only this once."""

    token: str


class AuditEntry(Model):
    """One entry of the audit log: `at` what time `actor` did `action` (`user.create`, `token.revoke`,
    `project.delete`, ...) to `subject`, from `address`, and its `outcome`: `ok`, or the error code it was
    refused with (`forbidden`, `conflict`, ...). `details`: what the request asked for, as the server records it."""

    at: datetime
    actor: str
    action: str
    subject: str | None = None
    address: str | None = None
    outcome: str = "ok"
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(Model):
    """One page of the audit log, newest first; `total` counts every matching entry."""

    items: list[AuditEntry]
    total: int
    page: int
    page_size: int


class Target(Model):
    """A `record` target: its version goes up by one on every change."""

    project: str | None = None
    kind: str
    name: str
    version: int | str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)


class TargetDeleted(Model):
    """A deleted target, and the ids of the unfinished jobs its deletion discarded."""

    kind: str
    name: str
    discarded: list[str] = Field(default_factory=list)


class StepInfo(Model):
    """A step a job type declares, and its weight in the job's progress."""

    name: str
    weight: float = 1.0


class JobType(Model):
    """A job type the server knows: its params' JSON Schema, its steps (None: planned from the params)."""

    name: str
    params_schema: dict[str, Any] = Field(default_factory=dict)
    steps: list[StepInfo] | None = None
    target_kind: str | None = None
    exclusive: str | None = None


class TypeStats(Model):
    """One job type in a `Stats` window: its jobs, how many FINISHED, and the median and 95th percentile of the
    running (`duration_*`) and waiting (`waiting_*`) times of those finished jobs, in seconds (None: none
    finished)."""

    type: str
    jobs: int
    finished: int
    duration_p50_s: float | None = None
    duration_p95_s: float | None = None
    waiting_p50_s: float | None = None
    waiting_p95_s: float | None = None


class DayStats(Model):
    """One UTC day: the jobs that FINISHED on it, and the jobs in ERROR that failed on it."""

    day: date
    finished: int = 0
    failed: int = 0


class Stats(Model):
    """Statistics of the jobs created in a window (`Client.stats`): counts by status (all six), type and project;
    `types` slowest first; `daily` oldest first, days without a finished or failed job left out."""

    since: datetime | None = None
    until: datetime | None = None
    total: int
    by_status: dict[str, int]
    by_type: dict[str, int] = Field(default_factory=dict)
    by_project: dict[str, int] = Field(default_factory=dict)
    types: list[TypeStats] = Field(default_factory=list)
    daily: list[DayStats] = Field(default_factory=list)


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
    error_codes: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()  # only these jobs (at most 200)

    def params(self) -> list[tuple[str, str | int]]:
        """The query string as (name, value) pairs, repeating `project`, `status`, `error_code` and `id`."""
        pairs: list[tuple[str, str | int]] = [("project", p) for p in self.projects]
        pairs += [("status", str(s)) for s in self.statuses]
        pairs += [("error_code", c) for c in self.error_codes]
        pairs += [("id", i) for i in self.ids]
        for name in ("type", "q", "period", "since", "until", "sort"):
            value = getattr(self, name)
            if value:
                pairs.append((name, value))
        return [*pairs, ("page", self.page), ("page_size", self.page_size)]

    def following(self, page: JobPage) -> JobQuery | None:
        """The query of the page after `page` (the answer to this query), or None if that was the last."""
        if not page.items or self.page * self.page_size >= page.total:
            return None
        return replace(self, page=self.page + 1)

    def as_filter(self) -> dict[str, Any]:
        """The same filters as the JSON `filter` of a batch."""
        found: dict[str, Any] = {}
        if self.projects:
            found["project"] = list(self.projects)
        if self.statuses:
            found["status"] = [str(s) for s in self.statuses]
        if self.error_codes:
            found["error_code"] = list(self.error_codes)
        for name in ("type", "q", "period", "since", "until"):
            value = getattr(self, name)
            if value:
                found[name] = value
        return found


# -- webhooks (docs/contract.md §4.11) ---------------------------------------------------------------------------


class Webhook(Model):
    """A project's webhook: where the changes of its jobs into `statuses` are POSTed. Never its secret."""

    id: str
    project: str | None = None
    url: str
    statuses: list[JobStatus]
    created_at: datetime | None = None
    created_by: str | None = None


class NewWebhook(Webhook):
    """A webhook just created, with its `secret`: shown only in this answer."""

    secret: str


class DeliveryEvent(Model):
    """The event a delivery reports."""

    id: int | None = None
    action: str
    from_status: str | None = Field(None, alias="from")
    to_status: str | None = Field(None, alias="to")
    at: datetime
    actor: str


class Delivery(Model):
    """One delivery of a webhook: `status` is `pending`, `delivered` or `failed`; `last_status` the HTTP status of
    the last answer, `last_error` why the last attempt failed."""

    id: str
    job_id: str
    event: DeliveryEvent
    status: str
    attempts: int = 0
    last_status: int | None = None
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    created_at: datetime | None = None


class DeliveryPage(Model):
    """One page of a webhook's delivery log, newest first; `total` counts every matching delivery."""

    items: list[Delivery]
    total: int
    page: int
    page_size: int
