"""`GET /api/v1/jobs` against a brute-force filter and sort in Python over 1,200 jobs in three projects.

The jobs are inserted through the store in one transaction and brought to PENDING, PAUSED, DISCARDED or
ERROR by real transitions; their creation times and durations are then spread by hand (test data: no worker
runs here). Creation times sit on half hours, so `period` (computed by the server when it answers) cannot
flip a job across a boundary while the test runs.

The order the list promises: the sort key, then newest first (oldest first for `created_at` ascending), then
the id (descending when the sort is descending) - a total order, so pages never overlap or skip.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from jobctl.api.schemas import JobSort
from jobctl.scheduler.failures import Failure
from jobctl.scheduler.records import StepSpec
from jobctl.scheduler.store import accounts, models, submission, transitions
from jobctl.scheduler.store import jobs as jobs_store
from jobctl.states import Action
from jobctl.workers.services import Services
from tests.api.conftest import discard_unfinished

JOBS = 1200
TARGETS = ["tbl_1", "tblx1", "Sales_2024/Q1.csv", "orders%big", "Orders-small", "back\\slash", "plain"]
PERIODS = {"day": 24, "week": 24 * 7, "month": 24 * 30, "year": 24 * 365}
ERROR_CODES = ["disk-full", "timeout", "exception"]


@dataclass(frozen=True)
class Row:
    id: str
    project: str
    type: str
    status: str
    target: str | None
    created_at: datetime
    duration_s: float
    error_code: str | None = None


@dataclass(frozen=True)
class Data:
    projects: list[str]
    rows: list[Row]
    now: datetime


@pytest.fixture(scope="module")
def data(services: Services, client: TestClient) -> Iterator[Data]:
    rng = random.Random(20240601)
    tag = uuid.uuid4().hex[:8]
    names = [f"bf{tag}{x}" for x in "abc"]  # no punctuation: orders the same everywhere
    for name in names:
        assert client.post("/api/v1/projects", json={"name": name}).status_code == 201
    now = datetime.now(UTC).replace(microsecond=0)
    # Up to ~375 days back, some just inside or outside each period; many jobs share a creation time.
    hours = [*rng.sample(range(9000), 400), 0, 1, 23, 24, 167, 168, 719, 720, 8759, 8760]
    durations = [round(rng.uniform(0, 500), 3) for _ in range(60)]
    with services.db.write() as s:
        ids = {p.name: p.id for p in accounts.list_projects(s, names)}
        created: list[str] = []
        for _ in range(JOBS):
            kind = rng.choice(["sleep", "file_digest"])
            name = rng.choice([*TARGETS, None])
            target = None if name is None else ("file" if kind == "file_digest" else "record", name, "1")
            job_id = submission.insert_job(
                s,
                project_id=ids[rng.choice(names)],
                job_type=kind,
                steps=[StepSpec("only")],
                params={},
                priority=rng.randint(0, 4),
                submitter="brute-force",
                target=target,
            ).id
            created.append(job_id)
            roll = rng.random()
            if roll < 0.25:
                transitions.transition(s, job_id, Action.PAUSE, "test")
            elif roll < 0.4:
                transitions.transition(s, job_id, Action.DISCARD, "test")
            elif roll < 0.5:
                transitions.transition(s, job_id, Action.DISPATCH, "test")
                failure = Failure(rng.choice(ERROR_CODES), "boom")
                transitions.transition(s, job_id, Action.FAIL, "test", error=failure)
        s.execute(
            update(models.Job),
            [
                {
                    "id": job_id,
                    "created_at": now - timedelta(hours=rng.choice(hours) + 0.5),
                    "duration_s": rng.choice(durations),
                    "running_since": None,
                }
                for job_id in created
            ],
        )
    with services.db.read() as s:
        records = jobs_store.load_jobs(s, created)
    rows = [
        Row(
            r.id,
            r.project,
            r.type,
            r.status.value,
            r.target.name if r.target else None,
            r.created_at,
            r.duration_s,
            r.error_code,
        )
        for r in records
    ]
    assert len({r.status for r in rows}) == 4 and len({r.project for r in rows}) == 3
    yield Data(names, rows, now)
    discard_unfinished(services, names)


def expected(rows: list[Row], sort: str = "-created_at", **where: Any) -> list[str]:
    """The ids the list must answer, in order: a filter and a sort written out in plain Python."""
    projects = where.get("project")
    statuses = where.get("status")
    picked = [
        r
        for r in rows
        if (projects is None or r.project in _many(projects))
        and (statuses is None or r.status in _many(statuses))
        and ("type" not in where or r.type == where["type"])
        and ("error_code" not in where or r.error_code in _many(where["error_code"]))
        and ("q" not in where or _q_matches(r, where["q"]))
        and ("since" not in where or r.created_at >= where["since"])
        and ("until" not in where or r.created_at < where["until"])
    ]
    key = sort.lstrip("-")
    descending = sort.startswith("-")
    primary: Callable[[Row], Any] = {
        "created_at": lambda r: r.created_at,
        "duration": lambda r: r.duration_s,
        "status": lambda r: r.status,
        "project": lambda r: r.project,
        "type": lambda r: r.type,
    }[key]
    # Stable sorts, least significant key first.
    picked.sort(key=lambda r: r.id, reverse=descending)
    picked.sort(key=lambda r: r.created_at, reverse=descending or key != "created_at")
    picked.sort(key=primary, reverse=descending)
    return [r.id for r in picked]


def _many(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _q_matches(row: Row, q: str) -> bool:
    return row.id.startswith(q.lower()) or (row.target is not None and q.lower() in row.target.lower())


def listed(client: TestClient, page_size: int = 200, headers: dict[str, str] | None = None, **params: Any) -> list[str]:
    """Every page of the list, concatenated; checks `total`, `page` and `page_size` on each."""
    ids: list[str] = []
    page, total = 1, None
    while True:
        response = client.get(
            "/api/v1/jobs", params={**params, "page": page, "page_size": page_size}, headers=headers or {}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["page"] == page and body["page_size"] == page_size
        assert total is None or body["total"] == total
        total = body["total"]
        ids += [job["id"] for job in body["items"]]
        if len(body["items"]) < page_size:
            break
        page += 1
    assert total == len(ids) and len(set(ids)) == len(ids)
    return ids


def test_every_sort_over_every_page(client: TestClient, data: Data) -> None:
    for sort in JobSort:
        assert listed(client, page_size=97, project=data.projects, sort=sort.value) == expected(
            data.rows, sort=sort.value
        ), sort


def test_filters_match_brute_force(client: TestClient, data: Data) -> None:
    a, b, c = data.projects
    some = data.rows[7]
    boundary = sorted({r.created_at for r in data.rows})[len(data.rows) // 5]
    later = boundary + timedelta(days=40)
    cases: list[dict[str, Any]] = [
        {},
        {"project": a},
        {"project": [b, c]},
        {"status": "PAUSED"},
        {"status": ["PENDING", "ERROR"]},
        {"status": ["DISCARDED", "FINISHED", "RUNNING"]},
        {"type": "file_digest"},
        {"type": "sleep", "status": "PAUSED", "project": [a, c]},
        {"q": some.id[:3]},
        {"q": some.id},
        {"q": some.id.upper()[:6]},
        {"q": "tbl_1"},  # `_` is a literal, not LIKE's wildcard: tblx1 must not match
        {"q": "_"},
        {"q": "%"},
        {"q": "\\"},
        {"q": "sales_2024"},  # case-insensitive
        {"q": "ORDERS"},
        {"q": "q1.csv", "type": "file_digest"},
        {"since": boundary},
        {"until": boundary},
        {"since": boundary, "until": later},
        {"since": boundary, "until": later, "status": ["PAUSED", "ERROR"], "project": a, "q": "tbl"},
        {"error_code": "disk-full"},
        {"error_code": ["timeout", "exception"], "project": [a, b]},
        {"error_code": "no-such-code"},
    ]
    sorts = [s.value for s in JobSort]
    for index, where in enumerate(cases):
        sort = sorts[index % len(sorts)]
        params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in where.items()}
        params.setdefault("project", data.projects)
        got = listed(client, sort=sort, **params)
        want = expected(data.rows, sort=sort, **where)
        assert got == want, (where, sort, len(got), len(want))
        if where.get("q") in ("tbl_1", "%", "\\", "ORDERS"):
            assert want, where  # the case means something


def test_period_and_naive_times(client: TestClient, data: Data) -> None:
    for period, hours in PERIODS.items():
        since = data.now - timedelta(hours=hours)
        got = listed(client, project=data.projects, period=period, sort="created_at")
        assert got == expected(data.rows, sort="created_at", since=since), period
        assert 0 < len(got) < len(data.rows), period
    assert listed(client, project=data.projects, period="all") == expected(data.rows)
    boundary = data.rows[0].created_at
    naive = boundary.replace(tzinfo=None).isoformat()  # naive means UTC
    assert listed(client, project=data.projects, since=naive) == expected(data.rows, since=boundary)
    offset = boundary.astimezone(timezone(timedelta(hours=2))).isoformat()  # another offset, the same instant
    assert listed(client, project=data.projects, until=offset) == expected(data.rows, until=boundary)


def test_listing_without_project_shows_exactly_the_visible_projects(
    client: TestClient, data: Data, user: Callable[..., dict[str, str]]
) -> None:
    a, b, c = data.projects
    headers = user({a: "operator", c: "viewer"})
    visible = [r for r in data.rows if r.project in (a, c)]
    assert listed(client, headers=headers, sort="project") == expected(visible, sort="project")
    assert listed(client, headers=headers, status="PAUSED", q="tbl") == expected(visible, status="PAUSED", q="tbl")
    refused = client.get("/api/v1/jobs", headers=headers, params={"project": [a, b]})
    assert refused.status_code == 404


def test_a_batch_filter_matching_more_than_1000_jobs_is_422(client: TestClient, data: Data) -> None:
    assert len(expected(data.rows)) > 1000
    response = client.post("/api/v1/jobs/batch", json={"action": "pause", "filter": {"project": data.projects}})
    assert response.status_code == 422 and "1000" in response.json()["error"]["message"]
    assert listed(client, project=data.projects) == expected(data.rows)  # nothing changed
