"""The chaos suite's side tables: what step code really executed, and every step completion the store recorded.

`executions` is written by the `record` job type (`tests.chaos.jobtypes`): one `start` row when a step's code
begins and one `end` row when it returns, keyed by the attempt's fencing token. `completions` is written by a
database trigger on `steps`, so it sees every change of a step to FINISHED that any process committed,
whichever code path made it. Together they count double executions and double recordings exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from jobctl.scheduler.store import models
from jobctl.scheduler.store.common import utcnow

TABLES = """
CREATE TABLE chaos_executions (
    id {serial} PRIMARY KEY,
    fence VARCHAR(36) NOT NULL,
    job_id VARCHAR(32) NOT NULL,
    step_index INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    phase VARCHAR(8) NOT NULL,
    pid INTEGER NOT NULL
);
CREATE TABLE chaos_completions (
    id {serial} PRIMARY KEY,
    job_id VARCHAR(32) NOT NULL,
    step_index INTEGER NOT NULL,
    task_id VARCHAR(36)
);
"""

SQLITE_TRIGGER = """
CREATE TRIGGER chaos_step_finished AFTER UPDATE OF status ON steps
WHEN NEW.status = 'FINISHED' AND OLD.status <> 'FINISHED'
BEGIN
    INSERT INTO chaos_completions (job_id, step_index, task_id) VALUES (NEW.job_id, NEW.idx, NEW.task_id);
END
"""

PG_TRIGGER = [
    """
    CREATE FUNCTION chaos_step_finished() RETURNS trigger AS $$
    BEGIN
        IF NEW.status = 'FINISHED' AND OLD.status <> 'FINISHED' THEN
            INSERT INTO chaos_completions (job_id, step_index, task_id) VALUES (NEW.job_id, NEW.idx, NEW.task_id);
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER chaos_step_finished AFTER UPDATE OF status ON steps
    FOR EACH ROW EXECUTE FUNCTION chaos_step_finished()
    """,
]


def install(url: str) -> None:
    """Create the side tables and the completion trigger in the (migrated, empty) jobctl database at `url`."""
    engine = sa.create_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        for statement in TABLES.format(serial="INTEGER" if sqlite else "SERIAL").split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
        for statement in [SQLITE_TRIGGER] if sqlite else PG_TRIGGER:
            conn.exec_driver_sql(statement)
    engine.dispose()


@dataclass(frozen=True)
class Verdict:
    """What the side tables say about a run. Every field but `executions` must be 0 for a correct system."""

    executions: int  # step executions started (every attempt that reached the step's code)
    double_executed: int  # fencing tokens whose code started more than once (a redelivered message re-run)
    double_dispatched: int  # (job, step, attempt) run under more than one token (one attempt dispatched twice)
    double_recorded: int  # (job, step) whose completion the store committed more than once
    completed_twice_in_code: int  # (job, step) whose code ran to its end in two attempts (informational)


def verdict(engine: sa.Engine) -> Verdict:
    """Count executions and duplicates in the side tables (call after the jobs settled)."""
    with engine.connect() as conn:

        def scalar(sql: str) -> int:
            return int(conn.exec_driver_sql(sql).scalar_one())

        return Verdict(
            executions=scalar("SELECT count(*) FROM chaos_executions WHERE phase = 'start'"),
            double_executed=scalar(
                "SELECT count(*) FROM (SELECT fence FROM chaos_executions WHERE phase = 'start'"
                " GROUP BY fence HAVING count(*) > 1) d"
            ),
            double_dispatched=scalar(
                "SELECT count(*) FROM (SELECT job_id, step_index, attempt FROM chaos_executions"
                " WHERE phase = 'start' GROUP BY job_id, step_index, attempt HAVING count(DISTINCT fence) > 1) d"
            ),
            double_recorded=scalar(
                "SELECT count(*) FROM (SELECT job_id, step_index FROM chaos_completions"
                " GROUP BY job_id, step_index HAVING count(*) > 1) d"
            ),
            completed_twice_in_code=scalar(
                "SELECT count(*) FROM (SELECT job_id, step_index FROM chaos_executions WHERE phase = 'end'"
                " GROUP BY job_id, step_index HAVING count(*) > 1) d"
            ),
        )


def overdue_running_steps(engine: sa.Engine, slack_s: float) -> int:
    """Steps RUNNING whose lease ran out more than `slack_s` ago: a job stuck RUNNING after its worker died."""
    limit = utcnow() - timedelta(seconds=slack_s)
    with Session(engine) as session:
        return int(
            session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Step)
                .where(models.Step.status == "RUNNING", models.Step.lease_until < limit)
            )
            or 0
        )
