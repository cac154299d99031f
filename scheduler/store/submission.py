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
    type_coerce,
)
from sqlalchemy.engine import Dialect
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
