"""The dispatch reads cost what the PENDING and RUNNING jobs cost, however many jobs have ended: checked on
PostgreSQL's plan, which a long-lived connection keeps once it has prepared a statement."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import update

from jobctl.scheduler.store import accounts, dispatch, models, submission
from jobctl.scheduler.store.common import utcnow
from jobctl.scheduler.store.prepared import Prepared
from jobctl.scheduler.store.submission import NewJob, StepSpec
from jobctl.workers.services import Services

ENDED = 3000


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


def _job_rows_read(services: Services, statement: Prepared, params: dict[str, Any]) -> int:
    """How many rows of `jobs` the statement's generic plan (the one a prepared statement settles on) reads."""
    with services.db.write_core() as conn:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        compiled = statement._compiled(conn.dialect)
        from psycopg import RawCursor

        dbapi = conn.connection.dbapi_connection
        cursor = RawCursor(dbapi)
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + compiled.sql, statement._args(compiled, params))
        plan = cursor.fetchone()[0][0]["Plan"]
        conn.rollback()
    return sum(
        int((node["Actual Rows"] + node.get("Rows Removed by Filter", 0)) * node["Actual Loops"])
        for node in _nodes(plan)
        if node.get("Relation Name") == "jobs"
    )


def test_the_heads_of_the_queues_are_read_without_the_ended_jobs(
    services: Services, new_project: Callable[[], str]
) -> None:
    if services.db.is_sqlite:
        pytest.skip("the plan read here is PostgreSQL's")
    name = new_project()
    with services.db.write() as s:
        pid = accounts.get_project(s, name).id
        job = NewJob(pid, name, "sleep", [StepSpec("s0")], {})
        submission.insert_jobs(s, [job] * ENDED, "test")
        s.execute(update(models.JOBS).where(models.JOBS.c.project_id == pid).values(status="FINISHED"))
        submission.insert_jobs(s, [job], "test")  # one PENDING head
    with services.db.write_core() as conn:
        conn.exec_driver_sql("ANALYZE jobs")

    statement = dispatch._LOADS_AND_HEADS["postgresql"]
    read = _job_rows_read(services, statement, {"now": utcnow()})
    assert read < ENDED / 10, f"the loads and heads read {read} rows of jobs with {ENDED} ended"
    with services.db.read() as s:
        loads, heads = dispatch.project_loads_and_heads(s)
    assert loads[pid] == (None, 0) and heads[pid][1] == pid
