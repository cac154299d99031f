"""Request and response models of the HTTP API (docs/contract.md §4). These are what `/openapi.json` documents.

Requests refuse unknown fields and bound every string; responses are built from the domain's records with
`from_record`. Times are ISO-8601 UTC (`...Z`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from enum import EnumType, StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    Strict,
    StrictBool,
    StringConstraints,
    model_validator,
)

from jobctl.scheduler.batch import MAX_BATCH, BatchItem
from jobctl.scheduler.failures import CODES, MAX_CODE
from jobctl.scheduler.records import (
    AuditRecord,
    EventRecord,
    JobRecord,
    ProjectRecord,
    StepRecord,
    TargetRecord,
    TokenRecord,
    UserRecord,
)
from jobctl.scheduler.store.jobs import SORTS
from jobctl.states import OPERATIONS, JobStatus

PROJECT_NAME = r"^[a-z0-9][a-z0-9_-]{0,63}$"
TARGET_KIND = r"^[a-z][a-z0-9_-]{0,31}$"


def _utc(value: datetime) -> datetime:
    """Aware UTC; a naive time is taken to be UTC already. A time whose UTC falls outside years 1-9999 is invalid."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC (years 1-9999)") from None


UTCTime = Annotated[datetime, AfterValidator(_utc)]


def _whole(value: Any) -> Any:
    """A JSON number with no fraction as the integer it is (`3.0` is 3: JSON has one number type, and JSON
    Schema's `integer` accepts it); anything else as it came, for the strict check after."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# Integers in request bodies: a JSON number without a fraction, never a string ("3"), a boolean or 3.5. (The
# bounds come before the conversion, so that the OpenAPI document states them as `minimum` and `maximum`.)
Priority = Annotated[int, Strict(), Field(ge=0, le=4), BeforeValidator(_whole)]
MaxRunning = Annotated[int, Strict(), Field(ge=1, le=100_000), BeforeValidator(_whole)]


class Request(BaseModel):
    """Base of request bodies: unknown fields are a 422, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------------------------------------ errors


class ErrorDetail(BaseModel):
    code: str = Field(description="machine-readable: not_found, invalid, conflict, unauthorized, forbidden, ...")
    message: str
    status: JobStatus | None = Field(None, description="409 for a refused operation: the job's current state")
    allowed: list[str] | None = Field(None, description="409 for a refused operation: operations allowed now")
    details: list[dict[str, Any]] | None = Field(None, description="422: each invalid field")
    refused: list[BatchResult] | None = Field(
        None, description="409 for a refused atomic batch: the jobs that refuse the action (nothing was changed)"
    )


class ErrorBody(BaseModel):
    """Every error answer. A refused operation (409) repeats `status` and `allowed` at the top level."""

    error: ErrorDetail
    status: JobStatus | None = None
    allowed: list[str] | None = None


# ------------------------------------------------------------------------------------------- users, me


class Me(BaseModel):
    name: str
    admin: bool
    roles: dict[str, str] = Field(description="project -> role (`viewer` or `operator`)")


USER_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
ProjectKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
#: A failure code, as the list filters by it (`scheduler.failures.MAX_CODE`).
ErrorCode = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CODE)]


class RoleName(StrEnum):
    """`viewer` reads a project; `operator` also submits, operates jobs and changes targets."""

    VIEWER = "viewer"
    OPERATOR = "operator"


class UserCreate(Request):
    name: str = Field(pattern=USER_NAME, max_length=64, description="letters, digits, _ . @ and -")
    admin: StrictBool = Field(False, description="an admin sees and operates every project")
    roles: dict[ProjectKey, RoleName] = Field(
        default_factory=dict, max_length=1000, description="project -> role; every project must exist"
    )


class User(BaseModel):
    name: str
    admin: bool
    disabled: bool = Field(description="a disabled user's every token is refused")
    roles: dict[str, RoleName] = Field(description="project -> role")

    @classmethod
    def from_record(cls, user: UserRecord) -> User:
        return cls(
            name=user.name,
            admin=user.admin,
            disabled=user.disabled,
            roles={p: RoleName(r) for p, r in user.roles.items()},
        )


class UserUpdate(Request):
    """The fields to change; those left out keep their value. No enabled administrator may be left without one."""

    disabled: StrictBool | None = Field(None, description="true: every token of the user is refused from now on")
    admin: StrictBool | None = Field(None, description="an admin sees and operates every project")


TOKEN_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"


class TokenCreate(Request):
    name: str = Field(pattern=TOKEN_NAME, max_length=64, description="unique among the user's tokens")
    expires_at: UTCTime | None = Field(None, description="when the token stops working (in the future); none: never")

    @model_validator(mode="after")
    def _in_the_future(self) -> TokenCreate:
        if self.expires_at is not None and self.expires_at <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return self


class Token(BaseModel):
    """A token as it is listed: its name and first characters, never its value."""

    name: str
    prefix: str = Field(description="the token's first characters, to tell it by (empty for tokens older than this)")
    created_at: UTCTime
    last_used_at: UTCTime | None = Field(description="recorded at most once a minute")
    expires_at: UTCTime | None
    expired: bool

    @classmethod
    def from_record(cls, token: TokenRecord, now: datetime) -> Token:
        expired = token.expires_at is not None and token.expires_at <= now
        return cls(**{**token.__dict__, "expired": expired})


class TokenCreated(Token):
    token: str = Field(description="the bearer token; shown only in this answer, never again")


class UserCreated(User):
    token: str = Field(description="the user's bearer token; shown only in this answer, never again")


class RolesUpdate(RootModel[dict[ProjectKey, RoleName | None]]):
    """project -> the role to give (`viewer`, `operator`), or null to take the user's role there away.
    Projects not named keep the role the user holds in them."""

    root: dict[ProjectKey, RoleName | None] = Field(max_length=1000, examples=[{"sales": "operator", "hr": None}])


# --------------------------------------------------------------------------------------------- projects


class ProjectCreate(Request):
    name: str = Field(pattern=PROJECT_NAME, max_length=64, description="lower-case letters, digits, _ and -")
    max_running: MaxRunning | None = Field(None, description="RUNNING jobs allowed at once (unset: default)")


class ProjectUpdate(Request):
    max_running: MaxRunning | None = Field(description="RUNNING jobs allowed at once; null: the default")


class Project(BaseModel):
    name: str
    max_running: int | None
    created_at: UTCTime

    @classmethod
    def from_record(cls, project: ProjectRecord) -> Project:
        return cls(name=project.name, max_running=project.max_running, created_at=project.created_at)


# ---------------------------------------------------------------------------------------------- targets


class TargetPut(Request):
    attributes: dict[str, Any] = Field(default_factory=dict, description="any JSON; a change bumps the version")


class Target(BaseModel):
    project: str
    kind: str
    name: str
    version: int
    attributes: dict[str, Any]
    created_at: UTCTime
    updated_at: UTCTime

    @classmethod
    def from_record(cls, target: TargetRecord) -> Target:
        return cls(
            project=target.project,
            kind=target.kind,
            name=target.name,
            version=target.version,
            attributes=target.attributes,
            created_at=target.created_at,
            updated_at=target.updated_at,
        )


class TargetDeleted(BaseModel):
    project: str
    kind: str
    name: str
    discarded: list[str] = Field(description="ids of the non-final jobs auto-discarded with it")


# ------------------------------------------------------------------------------------------------- jobs


class TargetIn(Request):
    kind: str = Field(pattern=TARGET_KIND, max_length=32, examples=["file", "record"])
    name: str = Field(min_length=1, max_length=512, description="file: a path relative to the file root")


class JobSubmit(Request):
    project: str = Field(min_length=1, max_length=64)
    type: str = Field(min_length=1, max_length=64, examples=["sleep", "file_digest"])
    target: TargetIn | None = None
    params: dict[str, Any] | None = Field(None, description="validated by the job type")
    priority: Priority = Field(3, description="0 highest ... 4 lowest")


class JobEdit(Request):
    """New params for a PAUSED or ERROR job (`PATCH /api/v1/jobs/{id}`)."""

    params: dict[str, Any] = Field(
        description="the job's params, whole: validated by its type as at submission (its defaults filled in); they"
        " must plan the steps the job has. Its unfinished steps run with them once it is resumed"
    )


class JobBulk(Request):
    jobs: list[JobSubmit] = Field(min_length=1, max_length=1000, description="created all together, or none")


class JobTarget(BaseModel):
    kind: str
    name: str
    version: str | None = Field(description="the target's fingerprint when the job was submitted")


class StepError(BaseModel):
    """The failure that put a step in ERROR (docs/contract.md §2.8)."""

    code: str | None = Field(
        description="machine-readable: the step's own (`jobctl.StepFailed(code=...)`) or one of jobctl's"
        f" ({', '.join(f'`{code}`' for code in CODES)}); null only for a failure recorded before jobctl kept codes",
        examples=["timeout"],
    )
    message: str = Field(description="for people; paths under the file root are written relative to it")
    hint: str | None = Field(description="what to do about it, if known (the monitor's How to fix)")
    at: UTCTime | None = Field(description="when the step failed")


#: A value of a step's `info`: a JSON scalar.
InfoValue = str | int | float | bool | None


class Step(BaseModel):
    index: int
    name: str
    status: JobStatus
    progress: float = Field(description="0-100")
    started_at: UTCTime | None
    finished_at: UTCTime | None
    duration_s: float
    waiting_s: float
    attempt: int
    error: StepError | None = Field(description="the failure that put the step in ERROR; null otherwise")
    info: dict[str, InfoValue] = Field(
        default_factory=dict,
        description="small details the step reported with `ctx.info` (at most 50 keys, JSON scalars); {} for none",
    )
    output: dict[str, Any] | None = Field(None, description="what the step returned (FINISHED steps)")
    retry_at: UTCTime | None = Field(None, description="when a failed attempt is retried (the job waits PENDING)")
    task_id: str | None = Field(None, description="the Celery task id of the latest attempt")
    flower_url: str | None = Field(None, description="that attempt's page in Flower")

    @classmethod
    def from_record(cls, step: StepRecord, flower: str | None = None) -> Step:
        return cls(
            output=step.output,
            retry_at=step.retry_at,
            task_id=step.task_id,
            flower_url=f"{flower}/task/{step.task_id}" if flower and step.task_id else None,
            index=step.index,
            name=step.name,
            status=step.status,
            progress=step.progress,
            started_at=step.started_at,
            finished_at=step.finished_at,
            duration_s=step.duration_s,
            waiting_s=step.waiting_s,
            attempt=step.attempt,
            error=StepError(code=step.error_code, message=step.error, hint=step.error_hint, at=step.error_at)
            if step.error is not None
            else None,
            info=step.info or {},
        )


class Job(BaseModel):
    id: str
    project: str
    type: str
    target: JobTarget | None
    params: dict[str, Any]
    priority: int
    status: JobStatus
    progress: float = Field(description="0-100")
    created_at: UTCTime
    started_at: UTCTime | None
    finished_at: UTCTime | None
    duration_s: float = Field(description="time spent RUNNING, summed over attempts")
    waiting_s: float = Field(description="time spent waiting to run")
    submitter: str
    attempt: int
    error: str | None = Field(description="the message of the failure that put the job in ERROR")
    error_code: str | None = Field(
        None, description="that failure's code: its step's error's (`GET /jobs?error_code=` filters by it)"
    )
    waiting_for: str | None = Field(
        None,
        description="why a PENDING job has not started yet, e.g. `project limit 20/20`, `no live worker`, `retry at"
        " T`, `position 3 in the project's queue` (docs/contract.md §4.3); null for a job in another state, and in"
        " the answers of submissions",
        examples=["position 3 in the project's queue"],
    )
    discard_reason: str | None
    result: dict[str, Any] | None
    allowed: list[str] = Field(description="the operations the job's state allows now")
    steps: list[Step]

    @classmethod
    def from_record(
        cls,
        job: JobRecord,
        flower: str | None = None,
        steps: list[Step] | None = None,
        waiting_for: str | None = None,
    ) -> Job:
        """The job's JSON; with `flower` (Flower's base URL) each step links to its latest attempt there.
        `steps`: the JSON of `job.steps`, when the caller has it already (`from_records`); `waiting_for`: why the
        job, if PENDING, waits (`scheduler.store.waiting`)."""
        target = None
        if job.target is not None:
            target = JobTarget(kind=job.target.kind, name=job.target.name, version=job.target.version)
        return cls(
            id=job.id,
            project=job.project,
            type=job.type,
            target=target,
            params=job.params,
            priority=job.priority,
            status=job.status,
            progress=job.progress,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            duration_s=job.duration_s,
            waiting_s=job.waiting_s,
            submitter=job.submitter,
            attempt=job.attempt,
            error=job.error,
            error_code=job.error_code,
            waiting_for=waiting_for if job.status is JobStatus.PENDING else None,
            discard_reason=job.discard_reason,
            result=job.result,
            allowed=job.allowed,
            steps=[Step.from_record(s, flower) for s in job.steps] if steps is None else steps,
        )

    @classmethod
    def from_records(cls, jobs: Sequence[JobRecord], flower: str | None = None) -> list[Job]:
        """`from_record` of each job, where jobs that share their step records (a bulk submission's new jobs do)
        share one JSON of them too: 1,000 new jobs of 5 steps are 1,005 models, not 6,000."""
        shared: dict[int, list[Step]] = {}
        out = []
        for job in jobs:
            steps = shared.get(id(job.steps))
            if steps is None:
                steps = shared[id(job.steps)] = [Step.from_record(s, flower) for s in job.steps]
            out.append(cls.from_record(job, flower, steps))
        return out


class JobPage(BaseModel):
    items: list[Job]
    total: int = Field(description="how many jobs match, over all pages")
    page: int
    page_size: int


def _sort_members() -> dict[str, str]:
    """Each sort key of the store's `SORTS` (the one definition), ascending and, with a leading `-`, descending:
    `CREATED_AT = "created_at"`, `CREATED_AT_DESC = "-created_at"`, ..."""
    members: dict[str, str] = {}
    for key in SORTS:
        members[key.upper()] = key
        members[f"{key.upper()}_DESC"] = f"-{key}"
    return members


if TYPE_CHECKING:
    # The type checker's view: both enums are built at import from their one definition (below), so it cannot
    # list their members; any member name of JobSort it meets (`JobSort.CREATED_AT_DESC`) is taken as a member.

    class _SortMembers(EnumType):
        def __getattr__(cls, name: str) -> JobSort: ...

    class JobSort(StrEnum, metaclass=_SortMembers): ...

    class BatchAction(StrEnum): ...

else:
    JobSort = StrEnum("JobSort", _sort_members(), module=__name__)
    JobSort.__doc__ = "The list's sort orders (docs/contract.md §4.4); a leading `-` reverses."
    #: the user operations a batch may take (`jobctl.states.OPERATIONS`)
    BatchAction = StrEnum("BatchAction", {op.name: op.value for op in OPERATIONS}, module=__name__)


class Period(StrEnum):
    """Created within the last day (24 h), week (7 d), month (30 d), year (365 d), or at any time."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"
    ALL = "all"


class JobFilter(Request):
    """The list's query fields as JSON (see `GET /api/v1/jobs`); `project` and `status` take one value or a list."""

    project: ProjectKey | Annotated[list[ProjectKey], Field(max_length=100)] | None = Field(
        None, description="omitted: every visible project"
    )
    status: JobStatus | Annotated[list[JobStatus], Field(max_length=len(JobStatus))] | None = None
    type: str | None = Field(None, max_length=64)
    error_code: ErrorCode | Annotated[list[ErrorCode], Field(max_length=100)] | None = Field(
        None, description="jobs whose error has this code (or one of these)"
    )
    q: str | None = Field(None, min_length=1, max_length=512, description="job-id prefix or target-name substring")
    period: Period | None = None
    since: UTCTime | None = Field(None, description="created at or after (naive means UTC)")
    until: UTCTime | None = Field(None, description="created before (naive means UTC)")

    @property
    def projects(self) -> list[str] | None:
        return [self.project] if isinstance(self.project, str) else self.project

    @property
    def statuses(self) -> list[JobStatus]:
        if self.status is None:
            return []
        return [self.status] if isinstance(self.status, JobStatus) else self.status

    @property
    def error_codes(self) -> list[str]:
        if self.error_code is None:
            return []
        return [self.error_code] if isinstance(self.error_code, str) else self.error_code


JobIdItem = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class JobBatch(Request):
    """The jobs are `ids`, or every job matching `filter` (exactly one of the two), at most 1000."""

    action: BatchAction
    ids: list[JobIdItem] | None = Field(None, min_length=1, max_length=MAX_BATCH)
    filter: JobFilter | None = None
    atomic: StrictBool = Field(False, description="true: change nothing unless every job allows the action (else 409)")
    dry_run: StrictBool = Field(
        False,
        description="true: change nothing, and answer as the batch would - each job's outcome (ok with the state it"
        " would be left in, or refused with the reason) - plus a `preview`; recorded in the audit log all the same",
    )

    @model_validator(mode="after")
    def _one_selection(self) -> JobBatch:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give exactly one of ids and filter")
        return self


class BatchResult(BaseModel):
    """One job's outcome. Done: `status` is its new state (null once deleted). Refused: `status` is its current
    state (null for a job that does not exist for the caller) and `error` says why."""

    id: str
    ok: bool
    status: JobStatus | None = None
    error: str | None = None

    @classmethod
    def from_item(cls, item: BatchItem) -> BatchResult:
        return cls(id=item.id, ok=item.ok, status=item.status, error=item.error)


class BatchPreview(BaseModel):
    """What a dry run found: how many jobs would take the action, and in which projects."""

    changed: int = Field(description="how many jobs would take the action (`ok` in `results`)")
    refused: int = Field(description="how many would refuse it, or do not exist for the caller")
    projects: list[str] = Field(description="the projects of the jobs that would take it, by name")


class BatchAnswer(BaseModel):
    results: list[BatchResult] = Field(description="one per job, in the order of `ids` (filter: oldest first)")
    preview: BatchPreview | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="only in the answer of a dry run (`dry_run: true`), which changed nothing",
    )


class Event(BaseModel):
    """One change of a job: who did what, from which state to which (an `edit` of its params keeps its state)."""

    model_config = ConfigDict(populate_by_name=True)

    at: UTCTime
    actor: str
    action: str
    from_: JobStatus | None = Field(alias="from")
    to: JobStatus | None
    reason: str | None
    details: dict[str, Any] | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="structured facts about the change, only when it has some: an `edit`'s `{old, new}` params",
    )

    @classmethod
    def from_record(cls, event: EventRecord) -> Event:
        return cls(
            at=event.at,
            actor=event.actor,
            action=event.action,
            from_=JobStatus(event.from_status) if event.from_status else None,
            to=JobStatus(event.to_status) if event.to_status else None,
            reason=event.reason,
            details=event.details,
        )


# ----------------------------------------------------------------------------------------------- health


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(description="`ok` or `unavailable`")
    checks: dict[str, str] = Field(description="database / redis -> `ok` or what failed")


# ------------------------------------------------------------------------------------------------ types


class JobList(BaseModel):
    items: list[Job]


class StepInfo(BaseModel):
    name: str
    weight: float


class JobTypeInfo(BaseModel):
    name: str
    params_schema: dict[str, Any] = Field(description="the JSON Schema of the type's params")
    steps: list[StepInfo] | None = Field(description="the declared steps; null when planned from the params")
    target_kind: str | None = Field(
        description='the kind of target every job needs; "any": a target of any kind is optional; null: none'
    )
    exclusive: str | None = Field(description='"target": one RUNNING job per target')


# ------------------------------------------------------------------------------------------------ audit


class AuditItem(BaseModel):
    at: UTCTime
    actor: str = Field(description="the user who made the request")
    action: str = Field(description="what was done, such as `user.update`, `token.revoke` or `jobs.batch`")
    subject: str = Field(description="what it was done to: a user, `user/token`, a project, `project/kind/name`")
    address: str | None = Field(description="the client's address as the server saw it")
    outcome: str = Field(description="`ok`, or the error code it was refused with (`forbidden`, `conflict`, ...)")
    details: dict[str, Any]

    @classmethod
    def from_record(cls, entry: AuditRecord) -> AuditItem:
        return cls(**entry.__dict__)


class AuditPage(BaseModel):
    items: list[AuditItem]
    total: int = Field(description="how many entries match, over all pages")
    page: int
    page_size: int
