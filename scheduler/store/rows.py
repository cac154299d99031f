"""Jobs and steps read as plain rows with the ORM attributes' names: the shape that `JobRecord.from_row` reads and
the hand-over changes (`store.handover`), without the ORM's loading cost."""

from __future__ import annotations

from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Connection, Select, select

from jobctl.scheduler.store import models
from jobctl.scheduler.store.prepared import Prepared

Row = SimpleNamespace  # a row read here, as a mutable object with the ORM attributes' names


def labelled(entity: Any, prefix: str = "") -> list[Any]:
    """Every mapped column of `entity`, labelled with its attribute name (`Step.index` is column `idx`)."""
    return [prop.columns[0].label(prefix + prop.key) for prop in entity.__mapper__.column_attrs]


JOB_KEYS = [prop.key for prop in models.Job.__mapper__.column_attrs] + ["project_name"]
STEP_PROPS = list(models.Step.__mapper__.column_attrs)
STEP_KEYS = [prop.key for prop in STEP_PROPS]


def plain(row: Any, keys: Sequence[str]) -> Any:
    """A row that `Connection.execute` returned (values converted, by label) as a `Row` with `keys`."""
    values = row._mapping
    return Row(**{key: values[key] for key in keys})


def jobs_with_steps() -> Select[Any]:
    """Jobs with their project's name and their steps: a row per step, the job's columns (`JOB_KEYS`) on each,
    the step's labelled `step_` + its attribute name (`STEP_KEYS`), in step order within a job. Add the WHERE."""
    return (
        select(*labelled(models.Job), models.Project.name.label("project_name"), *labelled(models.Step, "step_"))
        .join(models.Project, models.Project.id == models.Job.project_id)
        .join(models.Step, models.Step.job_id == models.Job.id)
        .order_by(models.Job.id, models.Step.index)
    )


def job_and_steps(statement: Prepared, conn: Connection, rows: Sequence[Any]) -> tuple[Any, list[Any]]:
    """The job and its steps from `rows` that `statement` (a `jobs_with_steps` select) fetched for ONE job."""
    read_job = statement.reader(conn.dialect, JOB_KEYS)
    read_step = statement.reader(conn.dialect, STEP_KEYS, "step_")
    return Row(**read_job(rows[0])), [Row(**read_step(row)) for row in rows]
