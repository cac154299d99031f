"""The chaos suite's job type, loaded into workers with JOBCTL_PLUGINS=tests.chaos.jobtypes.

`record` steps write a `start` row to the side table `chaos_executions` (see `tests.chaos.ledger`) as soon as
their code runs and an `end` row just before they return, keyed by the attempt's fencing token, so a test can
count how often each attempt really executed.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from pydantic import Field
from sqlalchemy.exc import OperationalError

from jobctl.scheduler.settings import get_settings
from jobctl.workers.context import StepContext
from jobctl.workers.registry import JobType, Params, Retry, Step

INSERT = sa.text(
    "INSERT INTO chaos_executions (fence, job_id, step_index, attempt, phase, pid)"
    " VALUES (:fence, :job_id, :step_index, :attempt, :phase, :pid)"
)


@functools.cache
def _engine() -> sa.Engine:
    """This process's connection to the database the worker uses (its settings name it), for the side table."""
    return sa.create_engine(get_settings().database_url, pool_pre_ping=True)


class RecordParams(Params):
    steps: int = Field(2, ge=1, le=20)
    seconds: float = Field(0.5, ge=0, le=600)


def _write(ctx: StepContext, phase: str) -> None:
    """Insert one side-table row in its own transaction; retried while the database is unreachable."""
    row = {
        "fence": ctx.fence,
        "job_id": ctx.job_id,
        "step_index": ctx.step_index,
        "attempt": ctx.attempt,
        "phase": phase,
        "pid": os.getpid(),
    }
    deadline = time.monotonic() + 30
    while True:
        try:
            with _engine().begin() as conn:
                conn.execute(INSERT, row)
            return
        except OperationalError:  # a database restart or a terminated connection: the pool reconnects
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _record(ctx: StepContext) -> dict[str, Any]:
    """Record the start, work for `seconds` (reporting progress), record the end."""
    _write(ctx, "start")
    total = ctx.params.seconds
    began = time.monotonic()
    while (elapsed := time.monotonic() - began) < total:
        ctx.progress(100.0 * elapsed / total)
        time.sleep(min(0.05, total - elapsed))
    ctx.progress(100.0)
    _write(ctx, "end")
    return {"fence": ctx.fence}


# Chaos kills workers many times over: a step survives as many lost workers as a run can inflict.
record = JobType("record", params=RecordParams, retry=Retry(attempts=3, lost_attempts=50), target="any")


@record.plan
def _steps(params: RecordParams) -> Sequence[Step[dict[str, Any]]]:
    return [Step(f"record-{i + 1}", _record) for i in range(params.steps)]
