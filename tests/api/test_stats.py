"""`GET /api/v1/stats` on SQLite and PostgreSQL: every figure of a known set of jobs, the window and project rules
it shares with the list (404, 422), what a viewer sees, and the percentiles against a plain Python computation
(and, on PostgreSQL, against `percentile_cont`).

The jobs are made by `tests.api.stats_seed`: real transitions, then times set by hand. Those that count per day
finished or failed at noon UTC, 20 to 15 days ago, so no figure depends on when the test runs; two jobs are
created two and three hours ago, for `period=day`.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from jobctl.scheduler.store import accounts
from jobctl.scheduler.store import stats as stats_store
from jobctl.states import JobStatus as S
from jobctl.workers.services import Services
from tests.api.stats_seed import Seeded, midnight, seed

D0 = midnight(20)  # the day the older jobs were created
NOON = timedelta(hours=12)


def day(n: int) -> str:
    """The ISO date n days after D0."""
    return (D0 + timedelta(days=n)).date().isoformat()


def at(n: int) -> datetime:
    """Noon UTC, n days after D0."""
    return D0 + timedelta(days=n) + NOON


def recent(hours: float) -> datetime:
    """`hours` ago."""
    return datetime.now(UTC) - timedelta(hours=hours)


def main_jobs() -> list[Seeded]:
    """Project A: twelve jobs of three types in every state but RUNNING."""
    old = D0 + timedelta(hours=1)
    export = [
        Seeded("export", S.FINISHED, old, d, w, finished_at=at(n))
        for d, w, n in ((1, 0.5, 1), (2, 0.5, 1), (3, 1, 2), (4, 2, 2), (9, 10, 2))
    ]
    return [
        *export,
        # failed, resumed, failed again: counted on the day of its last failure
        Seeded("export", S.ERROR, old, 100, 50, failures=(at(1), at(3))),
        Seeded("export", S.PAUSED, recent(3)),
        Seeded("train", S.FINISHED, old, 10, 0, finished_at=at(2)),
        # failed, resumed, then finished: a finished job, not a failed one
        Seeded("train", S.FINISHED, old, 20, 4, finished_at=at(5), failures=(at(4),)),
        Seeded("train", S.DISCARDED, old, 7, 1),
        Seeded("train", S.ERROR, old, 30, 2, failures=(at(2),)),
        Seeded("report", S.PENDING, recent(2)),
    ]


STATUSES_A = {"PENDING": 1, "RUNNING": 0, "PAUSED": 1, "ERROR": 2, "DISCARDED": 1, "FINISHED": 7}
TYPES_A = [
    # train: durations 10, 20 -> p50 15, p95 10 + 10 * 0.95; waits 0, 4 -> 2 and 3.8
    {
        "type": "train",
        "jobs": 4,
        "finished": 2,
        "duration_p50_s": 15.0,
        "duration_p95_s": 19.5,
        "waiting_p50_s": 2.0,
        "waiting_p95_s": 3.8,
    },
    # export: durations 1, 2, 3, 4, 9 -> p50 3, p95 at rank 3.8: 4 + 5 * 0.8; waits 0.5, 0.5, 1, 2, 10 -> 1, 8.4
    {
        "type": "export",
        "jobs": 7,
        "finished": 5,
        "duration_p50_s": 3.0,
        "duration_p95_s": 8.0,
        "waiting_p50_s": 1.0,
        "waiting_p95_s": 8.4,
    },
    {
        "type": "report",
        "jobs": 1,
        "finished": 0,
        "duration_p50_s": None,
        "duration_p95_s": None,
        "waiting_p50_s": None,
        "waiting_p95_s": None,
    },
]
DAILY_A = [
    {"day": day(1), "finished": 2, "failed": 0},
    {"day": day(2), "finished": 4, "failed": 1},
    {"day": day(3), "finished": 0, "failed": 1},
    {"day": day(5), "finished": 1, "failed": 0},
]


@pytest.fixture
def projects(services: Services, new_project: Callable[[], str]) -> tuple[str, str]:
    """Project A with `main_jobs()`, project B with one slow finished export."""
    a, b = new_project(), new_project()
    seed(services.db, a, main_jobs())
    seed(services.db, b, [Seeded("export", S.FINISHED, D0 + timedelta(hours=1), 1000, 0, finished_at=at(1))])
    return a, b


def stats(client: TestClient, headers: dict[str, str] | None = None, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/stats", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def approx_types(types: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The types with their times compared to 1e-12 (interpolation rounds in the last bit)."""
    return [{k: pytest.approx(v, rel=1e-12) if isinstance(v, float) else v for k, v in t.items()} for t in types]


def test_every_figure_of_one_project(client: TestClient, projects: tuple[str, str]) -> None:
    a, _ = projects
    body = stats(client, project=a)
    assert body["since"] is None and body["until"] is None
    assert body["total"] == 12
    assert body["by_status"] == STATUSES_A
    assert list(body["by_status"]) == [s.value for s in S]  # all six, in the states' order
    assert body["by_type"] == {"export": 7, "report": 1, "train": 4}
    assert body["by_project"] == {a: 12}
    assert body["types"] == approx_types(TYPES_A)
    assert body["daily"] == DAILY_A
    listed = client.get("/api/v1/jobs", params={"project": a}).json()
    assert listed["total"] == body["total"]  # the same jobs as the list


def test_two_projects_together(client: TestClient, projects: tuple[str, str]) -> None:
    a, b = projects
    body = stats(client, project=[a, b])
    assert body["total"] == 13 and body["by_project"] == {a: 12, b: 1}
    assert body["by_status"] == {**STATUSES_A, "FINISHED": 8}
    export = next(t for t in body["types"] if t["type"] == "export")
    # durations 1, 2, 3, 4, 9, 1000: p50 at rank 2.5, p95 at rank 4.75 (9 + 991 * 0.75)
    assert (
        export
        == approx_types(
            [
                {
                    "type": "export",
                    "jobs": 8,
                    "finished": 6,
                    "duration_p50_s": 3.5,
                    "duration_p95_s": 752.25,
                    "waiting_p50_s": 0.75,
                    "waiting_p95_s": 8.0,
                }
            ]
        )[0]
    )
    assert [t["type"] for t in body["types"]] == ["export", "train", "report"]  # now export is the slowest
    assert body["daily"][0] == {"day": day(1), "finished": 3, "failed": 0}


def test_the_window_is_the_lists(client: TestClient, projects: tuple[str, str]) -> None:
    a, _ = projects
    body = stats(client, project=a, period="day")  # the two jobs created hours ago
    assert body["total"] == 2 and body["until"] is None and body["since"].endswith("Z")
    assert body["by_status"] == {**dict.fromkeys(STATUSES_A, 0), "PENDING": 1, "PAUSED": 1}
    assert body["by_type"] == {"export": 1, "report": 1}
    assert [(t["type"], t["jobs"], t["finished"], t["duration_p95_s"]) for t in body["types"]] == [
        ("export", 1, 0, None),
        ("report", 1, 0, None),
    ]
    assert body["daily"] == []
    assert client.get("/api/v1/jobs", params={"project": a, "period": "day"}).json()["total"] == 2

    since, until = D0.isoformat(), (D0 + timedelta(days=1)).isoformat()
    older = stats(client, project=a, since=since, until=until)  # the ten made on D0; days are when they ended
    assert older["total"] == 10 and older["by_status"] == {**STATUSES_A, "PENDING": 0, "PAUSED": 0}
    assert older["since"] == D0.isoformat().replace("+00:00", "Z")
    assert older["types"] == approx_types([TYPES_A[0], {**TYPES_A[1], "jobs": 6}]) and older["daily"] == DAILY_A
    assert stats(client, project=a, period="all")["total"] == 12
    nothing = stats(client, project=a, until=D0.isoformat())
    assert nothing["total"] == 0 and nothing["by_type"] == {} and nothing["types"] == [] and nothing["daily"] == []
    assert set(nothing["by_status"].values()) == {0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"period": "week", "since": "2026-01-01T00:00:00Z"}, "either period or since/until"),
        ({"period": "day", "until": "2026-01-01T00:00:00Z"}, "either period or since/until"),
        ({"since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}, "since must not be after until"),
        ({"period": "fortnight"}, None),
        ({"since": "yesterday"}, None),
        ({"project": "x" * 65}, None),
    ],
)
def test_bad_queries_are_422(client: TestClient, params: dict[str, str], message: str | None) -> None:
    response = client.get("/api/v1/stats", params=params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid"
    if message:
        assert message in error["message"]


def test_a_viewer_sees_only_their_projects(
    client: TestClient, projects: tuple[str, str], user: Callable[..., dict[str, str]], unique: Callable[[str], str]
) -> None:
    a, b = projects
    viewer = user({a: "viewer"})
    own = stats(client, viewer)  # without `project`: every project they see, which is A alone
    assert own == stats(client, project=a)
    for hidden in (b, unique("nope")):  # a project they cannot see is as missing as one that does not exist
        for query in ({"project": hidden}, {"project": [a, hidden]}):
            response = client.get("/api/v1/stats", params=query, headers=viewer)
            assert response.status_code == 404, response.text
            assert response.json()["error"] == {"code": "not_found", "message": f"project {hidden!r} not found"}
    nobody = stats(client, user({}))
    assert nobody["total"] == 0 and nobody["by_project"] == {} and nobody["types"] == []
    assert client.get("/api/v1/stats", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_percentiles_match_python_on_random_data(client: TestClient, services: Services, project: str) -> None:
    """Three types with 1 to 60 finished jobs of random times (ties included): each p50 and p95 as Python's
    `statistics.quantiles(method="inclusive")` has it; jobs in other states do not count."""
    rng = random.Random(7)
    old = D0 + timedelta(hours=1)
    jobs: list[Seeded] = []
    times: dict[str, tuple[list[float], list[float]]] = {}
    for job_type, n in (("one", 1), ("few", 7), ("many", 60)):
        durations = [rng.choice([0.0, 1.5, 2.25, round(rng.uniform(0, 500), 3)]) for _ in range(n)]
        waits = [round(rng.uniform(0, 30), 2) for _ in range(n)]
        times[job_type] = (sorted(durations), sorted(waits))
        jobs += [
            Seeded(job_type, S.FINISHED, old, d, w, finished_at=at(1)) for d, w in zip(durations, waits, strict=True)
        ]
        jobs.append(Seeded(job_type, S.DISCARDED, old, 10_000, 10_000))
    seed(services.db, project, jobs)
    found = {t["type"]: t for t in stats(client, project=project)["types"]}
    for job_type, (durations, waits) in times.items():
        for name, values in (("duration", durations), ("waiting", waits)):
            for p in (50, 95):
                expected = (
                    statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]
                )
                assert found[job_type][f"{name}_p{p}_s"] == pytest.approx(expected, rel=1e-9), (job_type, name, p)
                assert stats_store.percentile(values, p) == pytest.approx(expected, rel=1e-9)


def test_the_portable_percentiles_agree_with_percentile_cont(
    backend: str, services: Services, projects: tuple[str, str], project: str
) -> None:
    """PostgreSQL answers with its `percentile_cont`, SQLite with window functions (`_ranked`): on PostgreSQL,
    which runs both, they give the same figures, for the known jobs and for random ones."""
    if backend != "postgresql":
        pytest.skip("percentile_cont is PostgreSQL's")
    rng = random.Random(11)
    old = D0 + timedelta(hours=1)
    seed(
        services.db,
        project,
        [
            Seeded(f"t{rng.randint(1, 5)}", S.FINISHED, old, rng.uniform(0, 99), rng.choice([0, 1, 2.5]), at(1))
            for _ in range(300)
        ],
    )
    with services.db.read() as s:
        ids = list(accounts.project_ids(s, [*projects, project]).values())
        where = stats_store._window(stats_store.StatsQuery(project_ids=ids))
        native, portable = stats_store._percentile_cont(s, where), stats_store._ranked(s, where)
    assert set(native) == set(portable) == {"export", "train", "t1", "t2", "t3", "t4", "t5"}
    for job_type, figures in native.items():
        assert portable[job_type] == pytest.approx(figures, rel=1e-12), job_type


def test_the_openapi_document_describes_it(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    route = spec["paths"]["/api/v1/stats"]["get"]
    assert {p["name"] for p in route["parameters"]} == {"project", "period", "since", "until"}
    assert {"401", "404", "422"} <= set(route["responses"])
    schema = spec["components"]["schemas"]
    for model in ("Stats", "TypeStats", "DayStats"):
        fields = schema[model]["properties"]
        described = [name for name, field in fields.items() if field.get("description")]
        assert len(described) >= len(fields) - 1, (model, fields)  # every field but a self-evident name
