"""Scale on PostgreSQL: the list API over `rows` bulk-loaded jobs, and the dispatch rate with a deep backlog.

The jobs are loaded with one `INSERT ... SELECT generate_series` (one step each) across 10 projects:
85% FINISHED, 5% each ERROR, DISCARDED, PAUSED, then `VACUUM ANALYZE`. The list is timed through the real
API (`GET /api/v1/jobs?project=P&status=S`, default sort, first page). The dispatch rate is timed on the
real `Scheduler.dispatch` pass in this process, with Celery and Redis replaced by no-op seams (what is
measured is the database work), against 1,000 PENDING jobs, then 100,000, then 1,000 again (10 projects each,
so the small figure brackets the large one in time); between passes the dispatched jobs are put back to
PENDING (untimed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import text

from jobctl.bench.sides import ADMIN_TOKEN, JobctlSide
from jobctl.bench.stats import median
from jobctl.scheduler.executor import Notices
from jobctl.scheduler.loop import Scheduler
from jobctl.scheduler.operations import Operations
from jobctl.scheduler.records import Dispatch, JobRecord
from jobctl.scheduler.settings import Settings
from jobctl.scheduler.store import accounts
from jobctl.scheduler.store.db import Database
from jobctl.scheduler.targets import TargetKinds

PROJECTS = 10


def _load(db: Database, prefix: str, rows: int, *, pending: bool, age_s: int, ids: str = "") -> None:
    """Bulk-insert `rows` jobs (one step each) spread over the 10 projects named `<prefix>0..9`; their ids
    are md5 of `<ids or prefix><n>`."""
    bucket = f"(g / {PROJECTS}) % 20"  # independent of the project (g % 10)
    statuses = f"CASE {bucket} WHEN 0 THEN 'ERROR' WHEN 1 THEN 'DISCARDED' WHEN 2 THEN 'PAUSED' ELSE 'FINISHED' END"
    status = "'PENDING'" if pending else statuses
    finished = "NULL" if pending else f"CASE WHEN {bucket} = 2 THEN NULL ELSE now() - g * interval '1 second' END"
    with db.write() as s:
        s.execute(
            text(
                f"""
                INSERT INTO jobs (id, project_id, type, params, priority, status, submitter, attempt, created_at,
                                  updated_at, finished_at, duration_s, waiting_s, pending_since)
                SELECT md5(:prefix || g), p.id, 'bench_noop', '{{}}', 3, {status}, 'bench', 1,
                       now() - (:age + g) * interval '1 millisecond', now(), {finished}, 1.0, 0.1,
                       CASE WHEN {status} = 'PENDING' THEN now() END
                FROM generate_series(1, :rows) g
                JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM projects WHERE name LIKE :like) p
                  ON p.k = g % {PROJECTS}
                """
            ),
            {"prefix": ids or prefix, "rows": rows, "like": f"{prefix}%", "age": age_s * 1000},
        )
        s.execute(
            text(
                """
                INSERT INTO steps (job_id, idx, name, weight, status, progress, attempt, checkpoint, duration_s,
                                   waiting_s, dispatches, ready_at)
                SELECT j.id, 0, 's1', 1.0, j.status, CASE WHEN j.status = 'FINISHED' THEN 100 ELSE 0 END,
                       1, '{}', 1.0, 0.1, 0, CASE WHEN j.status = 'PENDING' THEN now() END
                FROM jobs j JOIN projects p ON p.id = j.project_id WHERE p.name LIKE :like
                  AND NOT EXISTS (SELECT 1 FROM steps s WHERE s.job_id = j.id)
                """
            ),
            {"like": f"{prefix}%"},
        )


def _projects(db: Database, prefix: str, max_running: int | None = None) -> list[str]:
    names = [f"{prefix}{i}" for i in range(PROJECTS)]
    with db.write() as s:
        for name in names:
            accounts.create_project(s, name, max_running)
    return names


def _vacuum(db: Database) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE jobs")
        conn.exec_driver_sql("VACUUM ANALYZE steps")


@dataclass(frozen=True)
class ListLatency:
    rows: int
    seconds: list[float]


def load_history(side: JobctlSide, rows: int) -> list[str]:
    """Bulk-load `rows` finished-and-other jobs; the projects' names. Seconds it took are printed by the caller."""
    names = _projects(side.svc.db, "hist")
    _load(side.svc.db, "hist", rows, pending=False, age_s=10 * 24 * 3600)
    _vacuum(side.svc.db)
    return names


def list_latency(side: JobctlSide, projects: list[str], rows: int, requests: int) -> ListLatency:
    """`requests` first-page list calls through the API, filtered by project and status (default sort)."""
    assert side.api_url is not None
    out = []
    statuses = ["FINISHED", "ERROR", "PAUSED", "FINISHED"]
    with httpx.Client(base_url=side.api_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30) as c:
        c.get("/api/v1/jobs", params={"project": projects[0], "status": "FINISHED"}).raise_for_status()
        for i in range(requests):
            params = {"project": projects[i % len(projects)], "status": statuses[i % len(statuses)]}
            began = time.perf_counter()
            answer = c.get("/api/v1/jobs", params=params)
            out.append(time.perf_counter() - began)
            answer.raise_for_status()
            assert len(answer.json()["items"]) == 50
    return ListLatency(rows, out)


class _NoExecutor:
    def send(self, dispatch: Dispatch) -> None: ...
    def stop(self, fence: str) -> None: ...
    def cleanup(self, job: JobRecord, reason: str, stopped_fence: str | None) -> None: ...


class _NoBus:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity

    def notify(self, notices: Notices) -> None: ...
    def settle(self) -> None: ...
    def job_changed(self, job: JobRecord) -> None: ...
    def wake_scheduler(self) -> None: ...
    def wait_for_wake(self, timeout: float) -> None: ...
    def capacity(self, queue: str) -> int:
        return self._capacity


@dataclass(frozen=True)
class DispatchRate:
    small: int
    large: int
    small_rates: list[float]  # jobs dispatched per second, per pass
    large_rates: list[float]

    @property
    def ratio(self) -> float:
        return median(self.large_rates) / median(self.small_rates)


def _reset(db: Database, prefix: str) -> None:
    with db.write() as s:
        s.execute(
            text(
                """UPDATE steps SET status = 'PENDING', fence = NULL, task_id = NULL, lease_until = NULL,
                   dispatches = 0 WHERE job_id IN (SELECT j.id FROM jobs j JOIN projects p ON p.id = j.project_id
                   WHERE p.name LIKE :like AND j.status = 'RUNNING')"""
            ),
            {"like": f"{prefix}%"},
        )
        s.execute(
            text(
                """UPDATE jobs SET status = 'PENDING', running_since = NULL, started_at = NULL,
                   pending_since = now() WHERE status = 'RUNNING' AND project_id IN
                   (SELECT id FROM projects WHERE name LIKE :like)"""
            ),
            {"like": f"{prefix}%"},
        )


def _passes(sched: Scheduler, db: Database, prefix: str, passes: int) -> list[float]:
    rates = []
    for _ in range(passes):
        began = time.perf_counter()
        n = sched.dispatch()
        rates.append(n / (time.perf_counter() - began))
        _reset(db, prefix)
    return rates


def dispatch_rate(side: JobctlSide, small: int, large: int, passes: int, capacity: int = 100) -> DispatchRate:
    """Dispatch passes of `capacity` jobs with `small`, then `large`, PENDING jobs (10 projects)."""
    db = side.svc.db
    settings: Settings = side.settings.model_copy(update={"project_max_running": capacity})
    ops = Operations(db, _NoExecutor(), _NoBus(capacity), TargetKinds(settings.file_root), settings)
    sched = Scheduler(ops, _NoBus(capacity), settings, lambda _t, _a: False)
    _projects(db, "disp")
    _load(db, "disp", small, pending=True, age_s=3600)
    _vacuum(db)
    _passes(sched, db, "disp", 2)  # warm-up
    small_rates = _passes(sched, db, "disp", passes // 2)
    _load(db, "disp", large - small, pending=True, age_s=0, ids="dispmore")  # same projects, newer jobs
    _vacuum(db)
    _passes(sched, db, "disp", 2)
    large_rates = _passes(sched, db, "disp", passes)
    with db.write() as s:  # back to the small backlog, so the small figure brackets the large one in time
        s.execute(
            text(
                """DELETE FROM jobs WHERE created_at > now() - interval '1800 seconds'
                   AND project_id IN (SELECT id FROM projects WHERE name LIKE 'disp%')"""
            )
        )
    _vacuum(db)
    _passes(sched, db, "disp", 2)
    small_rates += _passes(sched, db, "disp", passes - passes // 2)
    return DispatchRate(small, large, small_rates, large_rates)


def elapsed(began: float) -> timedelta:
    return timedelta(seconds=round(time.perf_counter() - began))
