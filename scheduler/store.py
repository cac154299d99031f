"""The store owns the SQL. Every function takes the caller's session; the caller owns the transaction.

`transition` is the one place a job's status changes: it locks the row, checks the transition table,
applies the action's effects on the job and its steps, and writes the event row, all in the caller's
transaction. Worker-side writes (`start_step`, `heartbeat`, `complete_step`, ...) are fenced: they only
touch a step whose current attempt token is the caller's.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    column,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    union_all,
    update,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, aliased

from jobctl.scheduler import models
from jobctl.scheduler.errors import Conflict, Invalid, NotFound
from jobctl.scheduler.prepared import Prepared, Writes
from jobctl.scheduler.records import (
    Dispatch,
    EventRecord,
    JobRecord,
    ProjectRecord,
    StepRecord,
    StepSpec,
    TargetRecord,
    TargetRef,
    UserRecord,
)
from jobctl.states import NON_FINAL, Action, JobStatus, allowed_from, allowed_operations, target_of

S = JobStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# --------------------------------------------------------------------------------------------- projects


def create_project(session: Session, name: str, max_running: int | None) -> ProjectRecord:
    """A new project; `Conflict` if the name is taken."""
    if session.scalar(select(models.Project.id).where(models.Project.name == name)) is not None:
        raise Conflict(f"project {name!r} already exists")
    row = models.Project(name=name, max_running=max_running, created_at=utcnow())
    session.add(row)
    session.flush()
    return _project(row)


def get_project(session: Session, name: str) -> ProjectRecord:
    """The project called `name`; `NotFound` otherwise."""
    conn = session.connection()
    rows = _PROJECT.fetch(conn, {"name": name})
    if not rows:
        raise NotFound(f"project {name!r} not found")
    return ProjectRecord(**_PROJECT.reader(conn.dialect, ["id", "name", "max_running", "created_at"])(rows[0]))


_PROJECT = Prepared(
    select(models.Project.id, models.Project.name, models.Project.max_running, models.Project.created_at).where(
        models.Project.name == bindparam("name")
    )
)


def list_projects(session: Session, names: Iterable[str] | None = None) -> list[ProjectRecord]:
    """All projects (or those named), by name."""
    query = select(models.Project).order_by(models.Project.name)
    if names is not None:
        query = query.where(models.Project.name.in_(list(names)))
    return [_project(r) for r in session.scalars(query)]


def _project(row: models.Project) -> ProjectRecord:
    return ProjectRecord(id=row.id, name=row.name, max_running=row.max_running, created_at=row.created_at)


# ------------------------------------------------------------------------------------------------ users


def count_users(session: Session) -> int:
    """How many users exist (0 before the first admin is bootstrapped)."""
    return session.scalar(select(func.count()).select_from(models.User)) or 0


def create_user(session: Session, name: str, token_hash: str, admin: bool) -> int:
    """A new user; `Conflict` if the name is taken. Returns the user's id."""
    if session.scalar(select(models.User.id).where(models.User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    row = models.User(name=name, token_hash=token_hash, admin=admin, created_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def user_by_token_hash(session: Session, token_hash: str) -> UserRecord | None:
    """The user holding the token with this hash, with their roles; None if no one does."""
    row = session.scalar(select(models.User).where(models.User.token_hash == token_hash))
    if row is None:
        return None
    return UserRecord(id=row.id, name=row.name, admin=row.admin, roles=roles_of(session, row.id))


def roles_of(session: Session, user_id: int) -> dict[str, str]:
    """The user's role in each project they hold one in, by project name."""
    rows = session.execute(
        select(models.Project.name, models.Role.role)
        .join(models.Role, models.Role.project_id == models.Project.id)
        .where(models.Role.user_id == user_id)
    )
    return {name: role for name, role in rows}


def get_user(session: Session, name: str) -> UserRecord:
    """The user called `name`, with their roles; `NotFound` otherwise."""
    row = session.scalar(select(models.User).where(models.User.name == name))
    if row is None:
        raise NotFound(f"user {name!r} not found")
    return UserRecord(id=row.id, name=row.name, admin=row.admin, roles=roles_of(session, row.id))


def list_users(session: Session) -> list[UserRecord]:
    """Every user with their roles, by name."""
    roles: dict[int, dict[str, str]] = {}
    for user_id, project, role in session.execute(
        select(models.Role.user_id, models.Project.name, models.Role.role).join(
            models.Project, models.Project.id == models.Role.project_id
        )
    ):
        roles.setdefault(user_id, {})[project] = role
    rows = session.scalars(select(models.User).order_by(models.User.name))
    return [UserRecord(id=r.id, name=r.name, admin=r.admin, roles=roles.get(r.id, {})) for r in rows]


ROLES = ("viewer", "operator")


def set_roles(session: Session, user_id: int, roles: Mapping[str, str | None]) -> dict[str, str]:
    """Give the user `role` in each named project, or take their role away where it is None; other projects
    keep what the user holds there. `Invalid` (and nothing changed) if a project does not exist or a role is
    not `viewer` or `operator`. Returns the user's roles afterwards."""
    bad_roles = sorted({r for r in roles.values() if r is not None and r not in ROLES})
    if bad_roles:
        raise Invalid(f"unknown role(s) {', '.join(map(repr, bad_roles))}; use viewer or operator")
    ids = {p.name: p.id for p in list_projects(session, list(roles))}
    unknown = sorted(set(roles) - set(ids))
    if unknown:
        raise Invalid(f"unknown project(s): {', '.join(map(repr, unknown))}")
    held = {
        r.project_id: r
        for r in session.scalars(
            select(models.Role).where(models.Role.user_id == user_id, models.Role.project_id.in_(list(ids.values())))
        )
    }
    for project, role in roles.items():
        row = held.get(ids[project])
        if role is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(models.Role(user_id=user_id, project_id=ids[project], role=role))
        else:
            row.role = role
    session.flush()
    return roles_of(session, user_id)


# ---------------------------------------------------------------------------------------------- targets


def put_record_target(
    session: Session, project_id: int, project: str, kind: str, name: str, attributes: dict[str, Any]
) -> tuple[TargetRecord, bool]:
    """Create the target, or change it (version + 1) if its attributes differ. Returns (target, changed)."""
    now = utcnow()
    row = session.scalar(
        select(models.Target)
        .where(models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name)
        .with_for_update()
    )
    changed = False
    if row is None:
        row = models.Target(
            project_id=project_id,
            kind=kind,
            name=name,
            version=1,
            attributes=attributes,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    elif row.attributes != attributes:
        row.attributes = attributes
        row.version += 1
        row.updated_at = now
        changed = True
    session.flush()
    return _target(row, project), changed


def list_targets(session: Session, project_id: int, project: str) -> list[TargetRecord]:
    rows = session.scalars(
        select(models.Target)
        .where(models.Target.project_id == project_id)
        .order_by(models.Target.kind, models.Target.name)
    )
    return [_target(r, project) for r in rows]


def delete_target(session: Session, project_id: int, kind: str, name: str) -> None:
    """Remove a registered target; `NotFound` if there is none."""
    result = session.execute(
        delete(models.Target).where(
            models.Target.project_id == project_id, models.Target.kind == kind, models.Target.name == name
        )
    )
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound(f"target {kind}/{name} not found")


def _target(row: models.Target, project: str) -> TargetRecord:
    return TargetRecord(
        project=project,
        kind=row.kind,
        name=row.name,
        version=row.version,
        attributes=dict(row.attributes),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# ------------------------------------------------------------------------------------------------- jobs


_INSERT_JOB = Prepared(insert(models.JOBS))
STEPS_PER_INSERT = 64  # rows of a multi-row steps INSERT (a job's first ones go with the job's own INSERT)
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


def insert_job(
    session: Session,
    *,
    project_id: int,
    job_type: str,
    steps: Sequence[StepSpec],
    params: dict[str, Any],
    priority: int,
    submitter: str,
    target: tuple[str, str, str] | None,
    project: str = "",
    exclusive: bool = False,
) -> JobRecord:
    """A new PENDING job with all its steps PENDING, and its `submit` event. Returns the job as written
    (`project`: the project's name, for the record). Three INSERT statements (one on PostgreSQL), no read."""
    now = utcnow()
    job: dict[str, Any] = {
        "id": new_id(),
        "project_id": project_id,
        "type": job_type,
        "params": params,
        "priority": priority,
        "status": S.PENDING.value,
        "submitter": submitter,
        "attempt": 1,
        "created_at": now,
        "updated_at": now,
        "pending_since": now,
        "started_at": None,
        "finished_at": None,
        "running_since": None,
        "duration_s": 0.0,
        "waiting_s": 0.0,
        "error": None,
        "discard_reason": None,
        "result": None,
        "target_kind": target[0] if target else None,
        "target_name": target[1] if target else None,
        "target_version": target[2] if target else None,
        "retry_at": None,
        "exclusive": exclusive,
    }
    rows = [
        {
            "job_id": job["id"],
            "index": i,
            "name": spec.name,
            "weight": spec.weight,
            "status": S.PENDING.value,
            "progress": 0.0,
            "attempt": 0,
            "error": None,
            "checkpoint": {},
            "output": None,
            "started_at": None,
            "finished_at": None,
            "duration_s": 0.0,
            "waiting_s": 0.0,
            "ready_at": now if i == 0 else None,
            "running_since": None,
            "fence": None,
            "task_id": None,
            "worker": None,
            "lease_until": None,
            "dispatches": 0,
            "retry_at": None,
            "failures": 0,
        }
        for i, spec in enumerate(steps)
    ]
    conn = session.connection()  # prepared Core statements: the ORM's bulk insert costs more than the rest
    columns = [{("idx" if k == "index" else k): v for k, v in r.items()} for r in rows]
    chunks = [columns[at : at + STEPS_PER_INSERT] for at in range(0, len(columns), STEPS_PER_INSERT)]
    event = {"j": job["id"], "now": now, "actor": submitter, "action": Action.SUBMIT.value, "reason": None}
    params = {**job, **_numbered(chunks[0]), **event, "before": None, "after": S.PENDING.value}
    if _submission(len(chunks[0])).run(conn, params) != (1, len(chunks[0]), 1):
        raise RuntimeError(f"job {job['id']} was not written whole")
    for chunk in chunks[1:]:
        _insert_steps(len(chunk)).run(conn, _numbered(chunk))
    return JobRecord.from_row(SimpleNamespace(**job), project, [SimpleNamespace(**r) for r in rows], now)


def _numbered(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of `_insert_steps(len(rows))` for `rows`: column `c` of row `r` as `c_r`."""
    return {f"{column}_{r}": value for r, row in enumerate(rows) for column, value in row.items()}


@functools.cache
def _insert_steps(rows: int) -> Prepared:
    """One INSERT of `rows` steps; the value of column `c` of row `r` is parameter `c_r`."""
    return Prepared(
        insert(models.STEPS).values(
            [{c.name: bindparam(f"{c.name}_{r}", type_=c.type) for c in models.STEPS.columns} for r in range(rows)]
        )
    )


@functools.cache
def _submission(steps: int) -> Writes:
    """A new job's writes: the job, its first `steps` steps (`_insert_steps`), its `submit` event - one
    statement on PostgreSQL."""
    return Writes(_INSERT_JOB, _insert_steps(steps), INSERT_EVENT)


# --------------------------------------------------------------------------------------- many jobs at once


@dataclass(frozen=True)
class NewJob:
    """One job for `insert_jobs`: its project (id, and name for the record), type, planned steps, validated params,
    priority, pinned target (kind, name, version) and whether its type is exclusive on that target."""

    project_id: int
    project: str
    job_type: str
    steps: Sequence[StepSpec]
    params: dict[str, Any]
    priority: int = 3
    target: tuple[str, str, str] | None = None
    exclusive: bool = False


def insert_jobs(session: Session, jobs: Sequence[NewJob], submitter: str) -> list[JobRecord]:
    """New PENDING jobs, each with all its steps PENDING and its `submit` event, written exactly as `insert_job`
    writes one; returned as written, in the order given. However many there are: three INSERT ... SELECT
    statements, each reading its rows from one JSON parameter (one statement on PostgreSQL).

    The jobs are created one microsecond apart, in the order given, so that they are dispatched (priority, then
    age) and listed in that order as if they had been submitted one after another."""
    conn = session.connection()
    writes = _bulk_submission(conn.dialect.name)
    if len(jobs) == 1 or writes is None:  # one job (or another database): insert_job's own statement
        return [
            insert_job(
                session,
                project_id=j.project_id,
                job_type=j.job_type,
                steps=j.steps,
                params=j.params,
                priority=j.priority,
                submitter=submitter,
                target=j.target,
                project=j.project,
                exclusive=j.exclusive,
            )
            for j in jobs
        ]
    start = utcnow()
    stored = _stored_time(conn.dialect)
    times = [start + timedelta(microseconds=n) for n in range(len(jobs))]
    ids = [new_id() for _ in jobs]
    job_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    for job_id, at, job in zip(ids, times, jobs, strict=True):
        when = stored(at)
        target = job.target or (None, None, None)
        job_rows.append(
            {
                "id": job_id,
                "project_id": job.project_id,
                "type": job.job_type,
                "params": job.params,
                "priority": job.priority,
                "target_kind": target[0],
                "target_name": target[1],
                "target_version": target[2],
                "exclusive": job.exclusive,
                "at": when,
            }
        )
        step_rows.extend(
            {"job_id": job_id, "idx": i, "name": s.name, "weight": s.weight, "ready_at": None if i else when}
            for i, s in enumerate(job.steps)
        )
    params = {
        "jobs": json.dumps(job_rows, separators=(",", ":")),
        "steps": json.dumps(step_rows, separators=(",", ":")),
        "submitter": submitter,
    }
    if writes.run(conn, params) != (len(jobs), len(step_rows), len(jobs)):
        raise RuntimeError(f"{len(jobs)} jobs were not written whole")
    steps: dict[tuple[StepSpec, ...], tuple[StepRecord, ...]] = {}
    records = []
    for job_id, at, job in zip(ids, times, jobs, strict=True):
        specs = tuple(job.steps)
        if specs not in steps:
            steps[specs] = _new_steps(specs)
        records.append(_new_record(job_id, at, job, submitter, steps[specs]))
    return records


def _new_record(job_id: str, at: datetime, job: NewJob, submitter: str, steps: tuple[StepRecord, ...]) -> JobRecord:
    """What `JobRecord.from_row` reads back from a job `insert_jobs` has just written (built without the rows)."""
    return JobRecord(
        id=job_id,
        project=job.project,
        type=job.job_type,
        target=TargetRef(*job.target) if job.target else None,
        params=dict(job.params),
        priority=job.priority,
        status=S.PENDING,
        created_at=at,
        started_at=None,
        finished_at=None,
        duration_s=0.0,
        waiting_s=0.0,
        submitter=submitter,
        attempt=1,
        error=None,
        discard_reason=None,
        result=None,
        steps=steps,
    )


def _new_steps(specs: Sequence[StepSpec]) -> tuple[StepRecord, ...]:
    """The records of a new job's steps, all PENDING (values: jobs with the same steps may share them)."""
    return tuple(
        StepRecord(
            index=i,
            name=spec.name,
            weight=spec.weight,
            status=S.PENDING,
            progress=0.0,
            attempt=0,
            error=None,
            started_at=None,
            finished_at=None,
            duration_s=0.0,
            waiting_s=0.0,
            fence=None,
            worker=None,
        )
        for i, spec in enumerate(specs)
    )


def _stored_time(dialect: Dialect) -> Callable[[datetime], str]:
    """A function giving an aware time as its column's value, as JSON text: what the ORM would store on SQLite
    (where times are strings compared as such), an ISO time that PostgreSQL's `timestamp` reads."""
    process = models.UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    if dialect.name == "sqlite":
        assert process is not None
        return lambda at: str(process(at))
    return lambda at: at.astimezone(UTC).replace(tzinfo=None).isoformat(" ")


def _json_rows(dialect: str, param: str, columns: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The objects of the JSON array in parameter `param` as rows (a FROM clause), and their fields named in
    `columns` (name -> SQL type) as typed column expressions; None on a database without a way to do it."""
    if dialect == "postgresql":
        rows = (
            func.json_to_recordset(cast(bindparam(param, type_=Text), JSON))
            .table_valued(*(column(name, kind) for name, kind in columns.items()))
            .render_derived(with_types=True)
        )
        return rows, {name: rows.c[name] for name in columns}
    each = func.json_each(bindparam(param, type_=Text)).table_valued("value")
    return each, {
        name: type_coerce(func.json_extract(each.c.value, f"$.{name}"), kind) for name, kind in columns.items()
    }


@functools.cache
def _bulk_submission(dialect: str) -> Writes | None:
    """`insert_jobs`' writes on this database (None: not PostgreSQL or SQLite): the jobs from parameter `jobs`,
    their steps from `steps` (JSON arrays of objects), an event per job by `submitter`."""
    if dialect not in ("postgresql", "sqlite"):
        return None
    time = models.UTCDateTime()
    jobs, j = _json_rows(
        dialect,
        "jobs",
        {
            "id": String,
            "project_id": Integer,
            "type": String,
            "params": JSON,
            "priority": Integer,
            "target_kind": String,
            "target_name": String,
            "target_version": String,
            "exclusive": Boolean,
            "at": time,
        },
    )
    steps, s = _json_rows(
        dialect, "steps", {"job_id": String, "idx": Integer, "name": String, "weight": Float, "ready_at": time}
    )
    pending = literal(S.PENDING.value)
    zero = literal(0.0, Float)
    submitter = bindparam("submitter", type_=String)
    job_columns = {
        **{name: j[name] for name in ("id", "project_id", "type", "params", "priority")},
        **{name: j[name] for name in ("target_kind", "target_name", "target_version", "exclusive")},
        "status": pending,
        "submitter": submitter,
        "attempt": literal(1),
        "created_at": j["at"],
        "updated_at": j["at"],
        "pending_since": j["at"],
        "duration_s": zero,
        "waiting_s": zero,
    }
    step_columns = {
        **{name: s[name] for name in ("job_id", "idx", "name", "weight", "ready_at")},
        "status": pending,
        "progress": zero,
        "attempt": literal(0),
        "checkpoint": literal({}, JSON),
        "duration_s": zero,
        "waiting_s": zero,
        "dispatches": literal(0),
        "failures": literal(0),
    }
    event_columns = {
        "job_id": j["id"],
        "at": j["at"],
        "actor": submitter,
        "action": literal(Action.SUBMIT.value),
        "to_status": pending,
    }
    return Writes(
        *(
            Prepared(insert(table).from_select(list(values), select(*values.values()).select_from(source)))
            for table, values, source in (
                (models.JOBS, job_columns, jobs),
                (models.STEPS, step_columns, steps),
                (models.EVENTS, event_columns, jobs),
            )
        )
    )


def get_job(session: Session, job_id: str) -> JobRecord:
    """The job with its steps; `NotFound` otherwise."""
    records = load_jobs(session, [job_id])
    if not records:
        raise NotFound(f"job {job_id!r} not found")
    return records[0]


def load_jobs(session: Session, job_ids: Sequence[str]) -> list[JobRecord]:
    """The jobs with these ids, with their steps, in the order given (missing ids are skipped)."""
    if not job_ids:
        return []
    now = utcnow()
    rows = session.execute(
        select(models.Job, models.Project.name)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(models.Job.id.in_(list(job_ids)))
    ).all()
    steps: dict[str, list[models.Step]] = {}
    for step in session.scalars(select(models.Step).where(models.Step.job_id.in_(list(job_ids)))):
        steps.setdefault(step.job_id, []).append(step)
    by_id = {job.id: JobRecord.from_row(job, project, steps.get(job.id, []), now) for job, project in rows}
    return [by_id[i] for i in job_ids if i in by_id]


@dataclass(frozen=True)
class JobQuery:
    """The list API's query (docs/contract.md §4), already validated."""

    project_ids: Sequence[int] | None = None  # None: no project restriction
    statuses: Sequence[JobStatus] = ()
    type: str | None = None
    q: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: str = "-created_at"
    page: int = 1
    page_size: int = 50


SORTS = {
    "created_at": (models.Job.created_at,),
    "duration": (models.Job.duration_s,),
    "status": (models.Job.status,),
    "project": (models.Project.name,),
    "type": (models.Job.type,),
}


def list_jobs(session: Session, query: JobQuery) -> tuple[list[JobRecord], int]:
    """One page of the jobs matching `query`, and how many match in all."""
    where = _job_filter(query)
    total = (
        session.scalar(
            select(func.count())
            .select_from(models.Job)
            .join(models.Project, models.Project.id == models.Job.project_id)
            .where(*where)
        )
        or 0
    )
    key = query.sort.lstrip("-")
    if key not in SORTS:
        raise Invalid(f"unknown sort {query.sort!r}; use one of {', '.join(sorted(SORTS))} (with - to reverse)")
    descending = query.sort.startswith("-")
    order: list[Any] = [c.desc() if descending else c.asc() for c in SORTS[key]]
    order.append(models.Job.created_at.desc() if descending or key != "created_at" else models.Job.created_at.asc())
    order.append(models.Job.id.desc() if descending else models.Job.id.asc())
    ids_query = (
        select(models.Job.id)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(*where)
        .order_by(*order)
        .limit(query.page_size)
        .offset((query.page - 1) * query.page_size)
    )
    ids = list(session.scalars(ids_query))
    return load_jobs(session, ids), total


def _job_filter(query: JobQuery) -> list[Any]:
    where: list[Any] = []
    if query.project_ids is not None:
        where.append(models.Job.project_id.in_(list(query.project_ids)))
    if query.statuses:
        where.append(models.Job.status.in_([s.value for s in query.statuses]))
    if query.type:
        where.append(models.Job.type == query.type)
    if query.q:
        # Case-insensitive on both backends (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
        escaped = query.q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where.append(
            or_(
                models.Job.id.like(f"{escaped}%", escape="\\"),
                func.lower(models.Job.target_name).like(f"%{escaped}%", escape="\\"),
            )
        )
    if query.since:
        where.append(models.Job.created_at >= query.since)
    if query.until:
        where.append(models.Job.created_at < query.until)
    return where


def count_jobs_by_project_status(session: Session) -> dict[tuple[str, str], int]:
    """How many jobs each (project, status) pair has."""
    rows = session.execute(
        select(models.Project.name, models.Job.status, func.count())
        .join(models.Job, models.Job.project_id == models.Project.id)
        .group_by(models.Project.name, models.Job.status)
    )
    return {(project, status): n for project, status, n in rows}


def project_of_job(session: Session, job_id: str) -> str:
    """The name of the job's project; `NotFound` if there is no such job."""
    name = session.scalar(
        select(models.Project.name)
        .join(models.Job, models.Job.project_id == models.Project.id)
        .where(models.Job.id == job_id)
    )
    if name is None:
        raise NotFound(f"job {job_id!r} not found")
    return name


def projects_of_jobs(session: Session, job_ids: Sequence[str]) -> dict[str, str]:
    """job id -> project name, for those of `job_ids` that exist."""
    if not job_ids:
        return {}
    rows = session.execute(
        select(models.Job.id, models.Project.name)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(models.Job.id.in_(list(job_ids)))
    )
    return {job_id: project for job_id, project in rows}


def matching_job_ids(session: Session, query: JobQuery, limit: int) -> list[str]:
    """Ids of up to `limit` jobs matching `query`'s filters (its sort and paging are ignored), oldest first."""
    rows = session.scalars(
        select(models.Job.id)
        .join(models.Project, models.Project.id == models.Job.project_id)
        .where(*_job_filter(query))
        .order_by(models.Job.created_at, models.Job.id)
        .limit(limit)
    )
    return list(rows)


def job_events(session: Session, job_id: str) -> list[EventRecord]:
    rows = session.scalars(select(models.Event).where(models.Event.job_id == job_id).order_by(models.Event.id))
    return [
        EventRecord(
            id=r.id,
            job_id=r.job_id,
            at=r.at,
            actor=r.actor,
            action=r.action,
            from_status=r.from_status,
            to_status=r.to_status,
            reason=r.reason,
        )
        for r in rows
    ]


def step_log(session: Session, job_id: str, index: int, tail: int | None) -> list[str]:
    """The step's log lines, oldest first; the last `tail` of them if given."""
    if (
        session.scalar(select(models.Step.index).where(models.Step.job_id == job_id, models.Step.index == index))
        is None
    ):
        raise NotFound(f"job {job_id!r} has no step {index}")
    query = select(models.StepLog.line).where(models.StepLog.job_id == job_id, models.StepLog.step_index == index)
    if tail is not None:
        lines = list(session.scalars(query.order_by(models.StepLog.id.desc()).limit(tail)))
        return lines[::-1]
    return list(session.scalars(query.order_by(models.StepLog.id)))


def jobs_of_target(session: Session, project_id: int, kind: str, name: str) -> list[str]:
    """Ids of the non-final jobs working on this target."""
    return list(
        session.scalars(
            select(models.Job.id).where(
                models.Job.project_id == project_id,
                models.Job.target_kind == kind,
                models.Job.target_name == name,
                models.Job.status.in_([s.value for s in NON_FINAL]),
            )
        )
    )


def targeted_jobs(session: Session) -> list[tuple[str, int, str, str, str | None]]:
    """(job id, project id, kind, name, version) of every non-final job that has a target."""
    rows = session.execute(
        select(
            models.Job.id,
            models.Job.project_id,
            models.Job.target_kind,
            models.Job.target_name,
            models.Job.target_version,
        ).where(models.Job.status.in_([s.value for s in NON_FINAL]), models.Job.target_kind.is_not(None))
    )
    return [(r[0], r[1], r[2] or "", r[3] or "", r[4]) for r in rows]


def purge_final_jobs(session: Session, before: datetime, limit: int = 500) -> int:
    """Delete up to `limit` final jobs that finished before `before`. Returns how many."""
    ids = list(
        session.scalars(
            select(models.Job.id)
            .where(models.Job.status.in_([S.FINISHED.value, S.DISCARDED.value]), models.Job.finished_at < before)
            .limit(limit)
        )
    )
    if ids:
        session.execute(delete(models.Job).where(models.Job.id.in_(ids)))
    return len(ids)


# ------------------------------------------------------------------------------------------ transitions


@dataclass(frozen=True)
class Transition:
    """What `transition` did: the job's status before and after, and the attempt it stopped."""

    job_id: str
    job_type: str
    project: str
    action: Action
    before: JobStatus
    after: JobStatus | None
    stopped_fence: str | None
    dispatch: Dispatch | None = None
    waited_s: float | None = None  # dispatch: how long the job had been PENDING
    job: JobRecord | None = None  # the job as the transition left it (None once deleted)
    stopped_running: bool = False  # the stopped attempt had started (its code may still be unwinding)


def transition(
    session: Session,
    job_id: str,
    action: Action,
    actor: str,
    reason: str | None = None,
    *,
    queue_lease_s: float = 60.0,
    error: str | None = None,
    retry_in: float = 0.0,
    failure: bool = False,
) -> Transition:
    """Take `action` on the job, or raise `Conflict` (409) and change nothing.

    Locks the job row, checks the transition table, applies the action's effects on the job and its steps
    and writes the event, in the caller's transaction. The result carries the job as it left it.
    """
    job = session.scalar(select(models.Job).where(models.Job.id == job_id).with_for_update())
    if job is None:
        raise NotFound(f"job {job_id!r} not found")
    before = JobStatus(job.status)
    if before not in allowed_from(action):
        raise Conflict(
            f"cannot {action.value} a job that is {before.value}",
            status=before.value,
            allowed=allowed_operations(before),
        )
    after = target_of(action)
    project = session.scalar(select(models.Project.name).where(models.Project.id == job.project_id)) or ""
    now = utcnow()
    steps = list(
        session.scalars(
            select(models.Step).where(models.Step.job_id == job_id).order_by(models.Step.index).with_for_update()
        )
    )
    current = next((s for s in steps if s.status != S.FINISHED.value), None)
    running = current is not None and current.status == S.RUNNING.value  # its attempt had started
    stopped = _stop_attempt(current, now) if action in _STOPPING else None
    dispatch: Dispatch | None = None
    job.retry_at = None  # a retry delay ends with any change of state but the one that starts it
    if current is not None:
        current.retry_at = None
        if failure:  # an attempt of the step failed: what the job type's Retry counts
            current.failures += 1

    if action is Action.DELETE:
        session.execute(delete(models.Job).where(models.Job.id == job_id))
        return Transition(job_id, job.type, project, action, before, None, stopped, stopped_running=running)

    assert after is not None
    waited = (now - job.pending_since).total_seconds() if before is S.PENDING and job.pending_since else None
    account_time(job, before, after, now)
    if action is Action.PAUSE:
        if current is not None and current.status == S.RUNNING.value:
            current.status = S.PAUSED.value
        if current is not None:
            current.ready_at = None
    elif action is Action.RESUME:
        job.error = None
        if current is not None:
            current.failures = 0  # a person asked for it again: the retry policy starts afresh
            current.status = S.PENDING.value
            current.error = None
            current.ready_at = now
    elif action is Action.RESTART:
        job.attempt += 1
        job.error = job.result = job.started_at = job.finished_at = None
        job.duration_s = job.waiting_s = 0.0
        job.pending_since = now
        session.execute(delete(models.StepLog).where(models.StepLog.job_id == job_id))
        for step in steps:
            _reset_step(step, ready=step.index == 0, now=now)
        if retry_in > 0:  # held until the cleanup of the earlier run is done (`release_restart_hold`)
            job.retry_at = now + timedelta(seconds=retry_in)
    elif action in (Action.DISCARD, Action.AUTO_DISCARD):
        job.discard_reason = reason if action is Action.AUTO_DISCARD else (reason or f"discarded by {actor}")
        for step in steps:
            if step.status != S.FINISHED.value:
                step.status = S.DISCARDED.value
                step.ready_at = None
    elif action is Action.DISPATCH:
        if current is None:  # nothing left to run: cannot happen through the API, but stay consistent
            after = S.FINISHED
            account_time(job, S.RUNNING, S.FINISHED, now)
        else:
            dispatch = _claim_attempt(job, current, now, queue_lease_s)
    elif action is Action.RETRY:
        assert current is not None
        stopped = _stop_attempt(current, now)  # the lost attempt, in case it still runs somewhere
        current.status = S.PENDING.value
        current.ready_at = now
        dispatch = _claim_attempt(job, current, now, queue_lease_s)
    elif action is Action.RETRY_LATER:
        assert current is not None
        _stop_attempt(current, now)
        current.status = S.PENDING.value
        current.ready_at = now
        job.retry_at = current.retry_at = now + timedelta(seconds=retry_in)
    elif action is Action.FAIL:
        job.error = error or reason
        if current is not None:
            _stop_attempt(current, now)
            current.status = S.ERROR.value
            current.error = error or reason
    job.status = after.value
    job.updated_at = now
    _event(session, job_id, now, actor, action, before, after, reason)
    session.flush()
    record = JobRecord.from_row(job, project, steps, now)  # what was just written: no need to read it again
    return Transition(
        job_id, job.type, project, action, before, after, stopped, dispatch, waited, record, stopped_running=running
    )


_STOPPING = frozenset({Action.PAUSE, Action.RESTART, Action.DISCARD, Action.AUTO_DISCARD, Action.DELETE})


def release_restart_hold(session: Session, job_id: str, attempt: int) -> bool:
    """End the hold a restart put on the job (run `attempt`) once its cleanup ran - unless the job moved on
    since (no step of this run has started). Whether it did."""
    started = select(models.Step.index).where(models.Step.job_id == job_id, models.Step.attempt > 0)
    result = session.execute(
        update(models.Job)
        .where(
            models.Job.id == job_id,
            models.Job.attempt == attempt,
            models.Job.status == S.PENDING.value,
            models.Job.retry_at.is_not(None),
            ~exists(started),
        )
        .values(retry_at=None)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def account_time(job: models.Job, before: JobStatus, after: JobStatus, now: datetime) -> None:
    """Book the time the job spent in `before` (waiting or running) as it moves to `after` at `now`."""
    if before is S.PENDING and after is not S.PENDING and job.pending_since is not None:
        job.waiting_s += (now - job.pending_since).total_seconds()
        job.pending_since = None
    if before is S.RUNNING and after is not S.RUNNING and job.running_since is not None:
        job.duration_s += (now - job.running_since).total_seconds()
        job.running_since = None
    if after is S.PENDING and before is not S.PENDING:
        job.pending_since = now
    if after is S.RUNNING and before is not S.RUNNING:
        job.running_since = now
        job.started_at = job.started_at or now
    if after.final:
        job.finished_at = now


def _stop_attempt(step: models.Step | None, now: datetime) -> str | None:
    """Forget the step's current attempt (its token no longer fences in). Returns the token it had."""
    if step is None or step.fence is None:
        return None
    fence = step.fence
    if step.running_since is not None:
        step.duration_s += (now - step.running_since).total_seconds()
        step.running_since = None
    step.fence = None
    step.lease_until = None
    return fence


def _reset_step(step: models.Step, *, ready: bool, now: datetime) -> None:
    step.status = S.PENDING.value
    step.progress = 0.0
    step.attempt = 0
    step.error = None
    step.checkpoint = {}
    step.output = None
    step.started_at = step.finished_at = step.running_since = step.lease_until = None
    step.fence = step.worker = step.task_id = None
    step.duration_s = step.waiting_s = 0.0
    step.dispatches = 0
    step.retry_at = None
    step.failures = 0
    step.ready_at = now if ready else None


def _claim_attempt(job: models.Job, step: models.Step, now: datetime, queue_lease_s: float) -> Dispatch:
    step.fence = step.task_id = new_id()
    step.lease_until = now + timedelta(seconds=queue_lease_s)
    step.dispatches += 1
    if step.ready_at is None:
        step.ready_at = now
    return Dispatch(job_id=job.id, job_type=job.type, step_index=step.index, step_name=step.name, fence=step.fence)


def _event(
    session: Session,
    job_id: str,
    at: datetime,
    actor: str,
    action: Action,
    before: JobStatus | None,
    after: JobStatus | None,
    reason: str | None,
) -> None:
    session.add(
        models.Event(
            job_id=job_id,
            at=at,
            actor=actor,
            action=action.value,
            from_status=before.value if before else None,
            to_status=after.value if after else None,
            reason=reason,
        )
    )


# ------------------------------------------------------------------------------------------- dispatch


def lock_jobs(session: Session, job_ids: Sequence[str]) -> None:
    """Lock these jobs' rows in id order. Every transaction that changes several jobs calls this first, so
    two of them (a scheduler pass, an atomic batch, a target's auto-discard) can never deadlock."""
    if job_ids:
        session.execute(
            select(models.Job.id).where(models.Job.id.in_(list(job_ids))).order_by(models.Job.id).with_for_update()
        )


DISPATCH_LOCK_KEY = 74726  # PostgreSQL's advisory lock of dispatch passes
_DISPATCH_LOCK = Prepared(select(func.pg_advisory_xact_lock(DISPATCH_LOCK_KEY)))


def lock_dispatch(session: Session) -> None:
    """Serialise dispatch passes across schedulers (PostgreSQL advisory lock; SQLite's write lock)."""
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        _DISPATCH_LOCK.run(conn, {})


_RUNNING = (
    select(models.Job.project_id, func.count().label("n"))
    .where(models.Job.status == S.RUNNING.value)
    .group_by(models.Job.project_id)
    .subquery()
)
_LOADS_SELECT = select(models.Project.id, models.Project.max_running, func.coalesce(_RUNNING.c.n, 0)).outerjoin(
    _RUNNING, _RUNNING.c.project_id == models.Project.id
)
_LOADS = Prepared(_LOADS_SELECT)
#: The order PENDING jobs of one project are dispatched in (`ix_jobs_dispatch` ends in these columns).
_DISPATCH_ORDER = (models.Job.priority, models.Job.created_at, models.Job.id)
_HEAD = aliased(models.Job, name="head")
_HOLDER = aliased(models.Job, name="holder")


def _may_start(job: Any) -> list[Any]:
    """The conditions under which the PENDING job `job` (the model or an alias) may be dispatched now: not
    waiting for a retry delay (parameter `now`), and not sharing its target with a RUNNING job where either of
    the two is exclusive. A pass starts no two such jobs on one target either (`loop.fair_order`)."""
    holder = (
        select(_HOLDER.id)
        .where(
            _HOLDER.status == S.RUNNING.value,
            _HOLDER.project_id == job.project_id,
            _HOLDER.target_kind == job.target_kind,
            _HOLDER.target_name == job.target_name,
            or_(job.exclusive.is_(True), _HOLDER.exclusive.is_(True)),
        )
        .correlate(job)
    )
    return [
        or_(job.retry_at.is_(None), job.retry_at <= bindparam("now", type_=models.UTCDateTime())),
        or_(job.target_kind.is_(None), ~exists(holder)),
    ]


#: `_LOADS`, and each project's first PENDING job in dispatch order, if it has one.
_LOADS_AND_HEADS = Prepared(
    _LOADS_SELECT.add_columns(_HEAD.id, _HEAD.priority, _HEAD.created_at).outerjoin(
        _HEAD,
        _HEAD.id
        == select(models.Job.id)
        .where(
            models.Job.status == S.PENDING.value, models.Job.project_id == models.Project.id, *_may_start(models.Job)
        )
        .order_by(*_DISPATCH_ORDER)
        .limit(1)
        .correlate(models.Project)
        .scalar_subquery(),
    )
)


def project_loads(session: Session) -> dict[int, tuple[int | None, int]]:
    """Every project's id: (its own limit of RUNNING jobs, or None; how many it has RUNNING), in one statement."""
    return {pid: (limit, n) for pid, limit, n in _LOADS.fetch(session.connection(), {})}


def project_loads_and_heads(
    session: Session,
) -> tuple[dict[int, tuple[int | None, int]], dict[int, tuple[str, int, int, datetime, None]]]:
    """`project_loads`, and each project's first PENDING job in dispatch order as `pending_candidates` returns
    it (what a pass that starts one job chooses from), in one statement."""
    conn = session.connection()
    rows = _LOADS_AND_HEADS.fetch(conn, {"now": utcnow()})
    created = _LOADS_AND_HEADS.reader(conn.dialect, ["created_at"])
    loads = {r[0]: (r[1], r[2]) for r in rows}
    heads = {r[0]: (r[3], r[0], r[4], created(r)["created_at"], None) for r in rows if r[3] is not None}
    return loads, heads


def pending_candidates(
    session: Session, free: dict[int, int], limit: int | None = None
) -> list[tuple[str, int, int, datetime, tuple[str, str, bool] | None]]:
    """Up to free[p] (and at most `limit`) oldest highest-priority PENDING jobs of each project p that may start
    now (`_may_start`): (id, project, priority, created, its target as (kind, name, exclusive) or None).

    One index range scan per project (`ix_jobs_dispatch` ends in priority, created_at, id), stopped after its
    first rows, so the cost does not grow with the backlog; joined with UNION ALL into one statement."""
    wanted = {pid: min(n, limit) if limit is not None else n for pid, n in free.items() if n > 0}
    wanted = {pid: n for pid, n in wanted.items() if n > 0}
    if not wanted:
        return []
    params: dict[str, Any] = {"now": utcnow()}
    for i, (pid, n) in enumerate(sorted(wanted.items())):
        params[f"p{i}"], params[f"n{i}"] = pid, n
    statement = _candidates(len(wanted))
    conn = session.connection()
    created = statement.reader(conn.dialect, ["created_at"])
    return [
        (r[0], r[1], r[2], created(r)["created_at"], (r[5], r[6], bool(r[4])) if r[5] is not None else None)
        for r in statement.fetch(conn, params)
    ]


@functools.cache
def _candidates(projects: int) -> Prepared:
    """`pending_candidates`' statement for this many projects: parameters p<i> (the project), n<i> (how many)."""
    job = models.Job
    parts = [
        select(job.id, job.project_id, job.priority, job.created_at, job.exclusive, job.target_kind, job.target_name)
        .where(job.status == S.PENDING.value, job.project_id == bindparam(f"p{i}"), *_may_start(job))
        .order_by(*_DISPATCH_ORDER)
        .limit(bindparam(f"n{i}"))
        .subquery()
        for i in range(projects)
    ]
    return Prepared(union_all(*(select(part) for part in parts)))


def job_target(session: Session, job_id: str) -> tuple[int, str, str, str | None] | None:
    """(project id, kind, name, version) of the job's target, or None if it has none."""
    row = session.execute(
        select(models.Job.project_id, models.Job.target_kind, models.Job.target_name, models.Job.target_version).where(
            models.Job.id == job_id
        )
    ).one_or_none()
    if row is None or row[1] is None:
        return None
    return row[0], row[1], row[2] or "", row[3]


@dataclass(frozen=True)
class ExpiredLease:
    job_id: str
    job_type: str
    step_index: int
    fence: str
    started: bool  # False: the message was never picked up; True: the worker died mid-step
    attempt: int
    worker: str | None


def expired_leases(session: Session, now: datetime) -> list[ExpiredLease]:
    """Current attempts of RUNNING jobs whose lease ran out."""
    rows = session.execute(
        select(models.Step, models.Job.type)
        .join(models.Job, models.Job.id == models.Step.job_id)
        .where(
            models.Job.status == S.RUNNING.value,
            models.Step.fence.is_not(None),
            models.Step.lease_until < now,
        )
    ).all()
    return [
        ExpiredLease(s.job_id, t, s.index, s.fence or "", s.status == S.RUNNING.value, s.attempt, s.worker)
        for s, t in rows
    ]


def resend_attempt(session: Session, job_id: str, index: int, fence: str, queue_lease_s: float) -> Dispatch | None:
    """Give a never-started attempt a fresh token and lease (its message was lost). None if it moved on."""
    step = session.scalar(select(models.Step).where(*fenced(job_id, index, fence, S.PENDING)).with_for_update())
    job_type = session.scalar(
        select(models.Job.type).where(models.Job.id == job_id, models.Job.status == S.RUNNING.value)
    )
    if step is None or job_type is None:
        return None
    step.fence = step.task_id = new_id()
    step.lease_until = utcnow() + timedelta(seconds=queue_lease_s)
    step.dispatches += 1
    return Dispatch(job_id, job_type, index, step.name, step.fence)


# ------------------------------------------------------------------------------- worker-side (fenced)


def fenced(job_id: Any, index: Any, fence: Any, status: JobStatus | None = None) -> tuple[Any, ...]:
    """The WHERE conditions that fence a write to step `index` of `job_id` to the attempt `fence` (values, or
    bind parameters for a prepared statement)."""
    conditions = (models.Step.job_id == job_id, models.Step.index == index, models.Step.fence == fence)
    return conditions if status is None else (*conditions, models.Step.status == status.value)


@dataclass(frozen=True)
class StepStart:
    """Everything a worker needs to run the step it was just granted."""

    job_id: str
    project_id: int
    job_type: str
    params: dict[str, Any]
    target: tuple[str, str, str | None] | None
    step_index: int
    step_name: str
    step_count: int
    attempt: int
    checkpoint: dict[str, Any]
    outputs: dict[str, Any]
    fence: str
    failures: int = 0  # attempts of this step that failed before (since the job was submitted, resumed, restarted)


def lock_attempt(session: Session, job_id: str, index: int, fence: str, *, expired: bool = False) -> bool:
    """Lock the job row (always before its steps: one lock order everywhere), then tell whether `fence` is
    still the step's current attempt - and, with `expired`, whether its lease has run out."""
    session.execute(select(models.Job.id).where(models.Job.id == job_id).with_for_update())
    query = select(models.Step.index).where(*fenced(job_id, index, fence))
    if expired:
        query = query.where(models.Step.lease_until < utcnow())
    return session.scalar(query) is not None


def heartbeat(session: Session, job_id: str, index: int, fence: str, progress: float | None, lease_s: float) -> bool:
    """Renew the attempt's lease and store its progress. False if the attempt is no longer current."""
    values: dict[str, Any] = {"lease_until": utcnow() + timedelta(seconds=lease_s)}
    if progress is not None:
        values["progress"] = max(0.0, min(100.0, progress))
    result = session.execute(update(models.Step).where(*fenced(job_id, index, fence, S.RUNNING)).values(**values))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def is_current(session: Session, job_id: str, index: int, fence: str) -> bool:
    return session.scalar(select(models.Step.index).where(*fenced(job_id, index, fence))) is not None


def append_log(session: Session, job_id: str, index: int, fence: str, lines: Sequence[str]) -> bool:
    """Store log lines for the attempt if it is still current."""
    if not lines or not is_current(session, job_id, index, fence):
        return False
    now = utcnow()
    session.execute(
        insert(models.StepLog),
        [{"job_id": job_id, "step_index": index, "at": now, "line": line} for line in lines],
    )
    return True


def save_checkpoint(session: Session, job_id: str, index: int, fence: str, checkpoint: dict[str, Any]) -> bool:
    result = session.execute(update(models.Step).where(*fenced(job_id, index, fence)).values(checkpoint=checkpoint))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def complete_step(
    session: Session, job_id: str, index: int, fence: str, result: dict[str, Any] | None, queue_lease_s: float
) -> tuple[bool, Dispatch | Transition | None]:
    """Finish the attempt's step, keeping what it returned. Returns (accepted, what follows): the next
    attempt to send, or - after the last step - the job's transition to FINISHED (its result: what that
    step returned).
    A stale attempt is not accepted and changes nothing.
    """
    step = session.scalar(select(models.Step).where(*fenced(job_id, index, fence, S.RUNNING)).with_for_update())
    if step is None:
        return False, None
    now = utcnow()
    _stop_attempt(step, now)
    step.status = S.FINISHED.value
    step.progress = 100.0
    step.finished_at = now
    step.output = result
    following = session.scalar(
        select(models.Step).where(models.Step.job_id == job_id, models.Step.index == index + 1).with_for_update()
    )
    if following is None:
        if result is not None:
            session.execute(update(models.Job).where(models.Job.id == job_id).values(result=result))
        return True, transition(session, job_id, Action.FINISH, "worker")
    following.ready_at = now
    job = session.get_one(models.Job, job_id)
    return True, _claim_attempt(job, following, now, queue_lease_s)
