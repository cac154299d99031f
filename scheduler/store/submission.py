"""Creating jobs: a job with its PENDING steps and its `submit` event, one at a time or many in one statement
(PostgreSQL and SQLite: INSERT ... SELECT from a JSON document)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
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
    func,
    insert,
    literal,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.orm import Session

from jobctl.scheduler.records import (
    JobRecord,
    StepRecord,
    StepSpec,
    TargetRef,
)
from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import INSERT_EVENT, S, new_id, utcnow
from jobctl.scheduler.store.prepared import Prepared, Writes
from jobctl.states import Action

_INSERT_JOB = Prepared(insert(models.JOBS))


STEPS_PER_INSERT = 64  # rows of a multi-row steps INSERT (a job's first ones go with the job's own INSERT)


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
        "error_code": None,
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
            "error_code": None,
            "error_hint": None,
            "error_at": None,
            "info": None,
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
    times = [start + timedelta(microseconds=n) for n in range(len(jobs))]
    ids = [new_id() for _ in jobs]
    params, steps_count = _json_job_rows(jobs, ids, times, conn.dialect)
    params["submitter"] = submitter
    if writes.run(conn, params) != (len(jobs), steps_count, len(jobs)):
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


#: The fields of the JSON rows `insert_jobs` and `insert_job_at_once` write from, and their SQL types.
_JOB_FIELDS: dict[str, Any] = {
    "id": String,
    "type": String,
    "params": JSON,
    "priority": Integer,
    "target_kind": String,
    "target_name": String,
    "target_version": String,
    "exclusive": Boolean,
    "at": models.UTCDateTime(),
}
_STEP_FIELDS: dict[str, Any] = {
    "job_id": String,
    "idx": Integer,
    "name": String,
    "weight": Float,
    "ready_at": models.UTCDateTime(),
}


def _json_job_rows(
    jobs: Sequence[NewJob], ids: Sequence[str], times: Sequence[datetime], dialect: Dialect
) -> tuple[dict[str, Any], int]:
    """The JSON parameters `jobs` and `steps` of `_bulk_submission` and `_AT_ONCE` for these jobs, and how many
    steps they hold."""
    stored = _stored_time(dialect)
    job_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []
    for job_id, at, job in zip(ids, times, jobs, strict=True):
        when = stored(at)
        target = job.target or (None, None, None)
        job_rows.append(
            {
                "id": job_id,
                "project_id": job.project_id,
                "project": job.project,
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
    return {
        "jobs": json.dumps(job_rows, separators=(",", ":")),
        "steps": json.dumps(step_rows, separators=(",", ":")),
    }, len(step_rows)


def insert_job_at_once(conn: Connection, job: NewJob, job_id: str, at: datetime, submitter: str) -> JobRecord | None:
    """PostgreSQL, on a connection in autocommit mode: `insert_jobs` of the one job `job` - whose project is named
    by `job.project` (its `project_id` is not used) - as one statement, which commits by itself: the project's
    lookup and the job's, its steps' and its event's INSERTs in one round trip, instead of BEGIN, the project's
    read, the INSERTs and COMMIT. The second implementation of `insert_jobs` for one job (the same rows: the
    tests run both).

    None, with nothing written, if no project has that name. The job's id and creation time are the caller's
    (`job_id`, `at`: aware), so that running it again after a lost connection is safe: if a job with that id
    exists already (the first run landed), nothing is written and the job is returned as that run wrote it."""
    params, steps = _json_job_rows([job], [job_id], [at], conn.dialect)
    counts = _AT_ONCE.fetch(conn, {**params, "project": job.project, "submitter": submitter})[0]
    found, written = counts[0], tuple(counts[1:])
    if not found:
        return None
    # (0, 0, 0): the id is taken - by this very job, written by a run whose answer was lost
    if written not in ((1, steps, 1), (0, 0, 0)):
        raise RuntimeError(f"job {job_id} was not written whole")
    return _new_record(job_id, at, job, submitter, _new_steps(tuple(job.steps)))


@functools.cache
def _bulk_submission(dialect: str) -> Writes | None:
    """`insert_jobs`' writes on this database (None: not PostgreSQL or SQLite): the jobs from parameter `jobs`,
    their steps from `steps` (JSON arrays of objects), an event per job by `submitter`."""
    if dialect not in ("postgresql", "sqlite"):
        return None
    jobs, j = _json_rows(dialect, "jobs", {**_JOB_FIELDS, "project_id": Integer})
    steps, s = _json_rows(dialect, "steps", _STEP_FIELDS)
    job_columns, step_columns, event_columns = _values(j, s, j["project_id"])
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


def _at_once_statement() -> Prepared:
    """`insert_job_at_once`'s statement (PostgreSQL): the project by name, then the job from it - unless its id
    exists already - then its steps and its event from the job that was written; how many rows of each."""
    p = models.PROJECTS
    project = select(p.c.id).where(p.c.name == bindparam("project", type_=String)).cte("project")
    jobs, j = _json_rows("postgresql", "jobs", _JOB_FIELDS)
    steps, s = _json_rows("postgresql", "steps", _STEP_FIELDS)
    job_columns, step_columns, event_columns = _values(j, s, project.c.id)
    job = (
        pg_insert(models.JOBS)
        .from_select(list(job_columns), select(*job_columns.values()).select_from(jobs).join(project, true()))
        .on_conflict_do_nothing(index_elements=[models.JOBS.c.id])
        .returning(models.JOBS.c.id, models.JOBS.c.created_at)
        .cte("job")
    )
    step_columns["job_id"] = job.c.id
    written_steps = (
        insert(models.STEPS)
        .from_select(
            list(step_columns), select(*step_columns.values()).select_from(steps).join(job, job.c.id == s["job_id"])
        )
        .returning(models.STEPS.c.job_id)
        .cte("written_steps")
    )
    event_columns.update(job_id=job.c.id, at=job.c.created_at)
    event = (
        insert(models.EVENTS)
        .from_select(list(event_columns), select(*event_columns.values()).select_from(job))
        .returning(models.EVENTS.c.id)
        .cte("event")
    )
    return Prepared(
        select(
            *(select(func.count()).select_from(cte).scalar_subquery() for cte in (project, job, written_steps, event))
        )
    )


def _values(
    j: Mapping[str, Any], s: Mapping[str, Any], project_id: Any
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """What a new job, its steps and its `submit` event are written with, from the JSON rows' fields `j` (a job)
    and `s` (a step): everything `insert_job` writes, the rest left to the columns' defaults (NULL)."""
    pending = literal(S.PENDING.value)
    zero = literal(0.0, Float)
    submitter = bindparam("submitter", type_=String)
    job_columns = {
        **{name: j[name] for name in ("id", "type", "params", "priority")},
        "project_id": project_id,
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
    return job_columns, step_columns, event_columns


_AT_ONCE = _at_once_statement()
