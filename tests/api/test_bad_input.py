"""Bad input, by hand: each request is refused with a clear 4xx in the API's error shape and writes nothing
(issue 5, part 7); and tokens at rest: no column of any table holds a token the API handed out (part 8).

"Writes nothing" is checked by snapshotting every row of every table before and after each request, on SQLite
and on PostgreSQL. The module runs on a database of its own, seeded through the API with a project, a record
target and a few PENDING jobs, so a request that wrongly got through would have something to change.
Filters that are merely unusual (SQL metacharacters in a search) may also answer 200, but then they must match
nothing: no job here has such a name.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from jobctl.api.app import create_app
from jobctl.api.guard import MAX_BODY_BYTES
from jobctl.scheduler.settings import Settings
from jobctl.wiring import build
from jobctl.workers.services import Services
from tests.api.conftest import ADMIN
from tests.conftest import fresh_database

PROJECT = "bad-input"
JSON = {"Content-Type": "application/json"}
CODES = {400: "bad_request", 404: "not_found", 413: "too_large", 422: "invalid"}
Snapshot = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Seeded:
    client: TestClient
    services: Services
    tables: list[sa.Table]
    jobs: list[str]
    file_root: Path


@pytest.fixture(scope="module")
def seeded(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    """The app on a fresh database of this backend, with a project, a record target, a file and three jobs."""
    url, drop = fresh_database(backend, tmp_path_factory)
    root = tmp_path_factory.mktemp("bad-input-files")
    (root / "data.txt").write_text("hello")
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.txt").write_text("not yours")
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "loop").symlink_to(root / "loop")
    services = build(settings.model_copy(update={"database_url": url, "file_root": root}))
    try:
        with TestClient(create_app(services), headers=ADMIN, raise_server_exceptions=False) as client:
            assert client.post("/api/v1/projects", json={"name": PROJECT}).status_code == 201
            target = client.put(f"/api/v1/projects/{PROJECT}/targets/record/orders", json={"attributes": {"n": 1}})
            assert target.status_code == 200, target.text
            jobs = []
            for body in (
                {"project": PROJECT, "type": "sleep", "params": {"steps": 2}},
                {"project": PROJECT, "type": "sleep", "target": {"kind": "record", "name": "orders"}},
                {"project": PROJECT, "type": "file_digest", "target": {"kind": "file", "name": "data.txt"}},
            ):
                response = client.post("/api/v1/jobs", json=body)
                assert response.status_code == 201, response.text
                jobs.append(response.json()["id"])
            metadata = sa.MetaData()
            metadata.reflect(services.db.engine)
            yield Seeded(client, services, list(metadata.sorted_tables), jobs, root)
    finally:
        services.close()
        drop()


# What a refused request may still write: its entry in the audit log (refusals are recorded on purpose; see
# test_audit.py) and the time its token was last used (written at most once a minute).
NOT_COMPARED = {"audit": None, "tokens": "last_used_at"}


def snapshot(seeded: Seeded) -> Snapshot:
    """Every row of every table (Alembic's included), in a stable order, less `NOT_COMPARED`."""
    with seeded.services.db.engine.connect() as conn:
        return {
            table.name: sorted((tuple(row) for row in conn.execute(sa.select(*_compared(table)))), key=repr)
            for table in seeded.tables
            if table.name not in NOT_COMPARED or NOT_COMPARED[table.name] is not None
        }


def _compared(table: sa.Table) -> list[sa.ColumnElement[object]]:
    return [c for c in table.columns if c.name != NOT_COMPARED.get(table.name)]


@dataclass(frozen=True)
class Bad:
    """A request and the statuses it may be answered with (the first is the one expected)."""

    id: str
    method: str
    path: str
    status: tuple[int, ...]
    json: Any = None
    content: bytes | None = None
    params: dict[str, Any] | list[tuple[str, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    says: str = ""  # a fragment the error message must contain

    def send(self, client: TestClient) -> Any:
        return client.request(
            self.method,
            self.path,
            json=self.json,
            content=self.content,
            params=self.params,
            headers={**JSON, **self.headers} if self.content is not None else self.headers,
        )


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _chunks(total: int) -> Iterator[bytes]:
    """A body of `total` bytes sent without Content-Length (chunked), valid JSON up to the end."""
    yield b'{"project": "bad-input", "type": "sleep", "params": {"x": "'
    for _ in range(total // 65536):
        yield b"a" * 65536
    yield b'"}}'


TEN_MB = 10 * 1024 * 1024
SQL = ["'; DROP TABLE jobs; --", "' OR '1'='1", '" OR ""="', "%", "_", "\\", "%' --", "1; SELECT pg_sleep(5)", "*/"]
LONG = "x" * 10_000
HUGE = "y" * 60_000

BODIES: list[Bad] = [
    # size
    Bad("10MB-job", "POST", "/api/v1/jobs", (413,), content=b'{"project": "' + b"p" * TEN_MB + b'"}', says="larger"),
    Bad(
        "10MB-target",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (413,),
        content=b'{"attributes": {"a": "' + b"a" * TEN_MB + b'"}}',
    ),
    Bad("just-over-limit", "POST", "/api/v1/projects", (413,), content=b" " * (MAX_BODY_BYTES + 1)),
    Bad("bad-content-length", "POST", "/api/v1/projects", (400,), content=b"{}", headers={"Content-Length": "ten"}),
    # nesting
    Bad(
        "nested-10000-params",
        "POST",
        "/api/v1/jobs",
        (400,),
        content=f'{{"project": "{PROJECT}", "type": "sleep", "params": {{"x": {_deep(10_000)}}}}}'.encode(),
        says="nested",
    ),
    Bad(
        "nested-10000-objects",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (400,),
        content=('{"attributes": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}").encode(),
    ),
    Bad(  # stored, then a 500 on serialising the answer, before the guard
        "nested-300-attributes",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (400,),
        content=f'{{"attributes": {{"a": {_deep(300)}}}}}'.encode(),
    ),
    # encoding and JSON itself
    Bad("utf8-job", "POST", "/api/v1/jobs", (400,), content=b'{"project": "bad-input", "type": "sl\xff\xfeep"}'),
    Bad("utf8-project", "POST", "/api/v1/projects", (400,), content=b'{"name": "\xc3\x28"}', says="UTF-8"),
    Bad(
        "utf8-target",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (400,),
        content=b'{"attributes": {"a": "\xed\xa0\x80"}}',  # an encoded surrogate: not UTF-8
    ),
    Bad("latin1-user", "POST", "/api/v1/users", (400,), content='{"name": "jürgen"}'.encode("latin-1")),
    Bad(
        "lone-surrogate",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (400,),
        content=b'{"attributes": {"a": "\\ud800"}}',
        says="surrogate",
    ),
    Bad("nan", "POST", "/api/v1/jobs", (400,), content=b'{"project": "bad-input", "type": "sleep", "priority": NaN}'),
    Bad(
        "infinity",
        "POST",
        "/api/v1/jobs",
        (400,),
        content=b'{"project": "bad-input", "type": "sleep", "priority": 1e999}',
    ),
    Bad(
        "huge-integer",
        "POST",
        "/api/v1/jobs",
        (400,),
        content=b'{"project": "bad-input", "priority": ' + b"9" * 5000 + b"}",
    ),
    Bad("truncated", "POST", "/api/v1/jobs", (400,), content=b'{"project": "bad-input", "type": '),
    Bad("not-an-object", "POST", "/api/v1/jobs", (422,), json=["project", "bad-input"]),
    Bad(
        "text-plain",
        "POST",
        "/api/v1/projects",
        (422,),
        content=b'{"name": "x"}',
        headers={"Content-Type": "text/plain"},
    ),
    # unknown job types, fields and kinds
    Bad(
        "unknown-type",
        "POST",
        "/api/v1/jobs",
        (422,),
        json={"project": PROJECT, "type": "rm-rf"},
        says="unknown job type",
    ),
    Bad("unknown-field-job", "POST", "/api/v1/jobs", (422,), json={"project": PROJECT, "type": "sleep", "owner": "me"}),
    Bad(
        "unknown-param", "POST", "/api/v1/jobs", (422,), json={"project": PROJECT, "type": "sleep", "params": {"rm": 1}}
    ),
    Bad("unknown-field-project", "POST", "/api/v1/projects", (422,), json={"name": "fresh-one", "admin": True}),
    Bad("unknown-field-user", "POST", "/api/v1/users", (422,), json={"name": "mallory", "token": "chosen"}),
    Bad("unknown-field-target", "PUT", f"/api/v1/projects/{PROJECT}/targets/record/new", (422,), json={"version": 9}),
    Bad(
        "unknown-field-batch", "POST", "/api/v1/jobs/batch", (422,), json={"action": "pause", "ids": ["x"], "force": 1}
    ),
    Bad(
        "unknown-field-filter",
        "POST",
        "/api/v1/jobs/batch",
        (422,),
        json={"action": "discard", "filter": {"project": PROJECT, "owner": "me"}},
    ),
    Bad(
        "unknown-field-target-in",
        "POST",
        "/api/v1/jobs",
        (422,),
        json={"project": PROJECT, "type": "sleep", "target": {"kind": "record", "name": "orders", "v": 1}},
    ),
    Bad(
        "unknown-target-kind",
        "POST",
        "/api/v1/jobs",
        (422,),
        json={"project": PROJECT, "type": "sleep", "target": {"kind": "s3", "name": "b"}},
    ),
    Bad("unknown-role", "POST", "/api/v1/users", (422,), json={"name": "mallory", "roles": {PROJECT: "owner"}}),
    Bad("unknown-batch-action", "POST", "/api/v1/jobs/batch", (422,), json={"action": "drop", "ids": ["x"]}),
    # out of range: priority, steps, seconds, fail_at
    *[
        Bad(f"priority-{p}", "POST", "/api/v1/jobs", (422,), json={"project": PROJECT, "type": "sleep", "priority": p})
        for p in (-1, 5, 10**30, 2.5, "high", True, None)
    ],
    *[
        Bad(
            f"steps-{n}",
            "POST",
            "/api/v1/jobs",
            (422,),
            json={"project": PROJECT, "type": "sleep", "params": {"steps": n}},
        )
        for n in (0, -1, 51, 10**30, 2.5, None, [3])
    ],
    *[
        Bad(
            f"sleep-{k}-{v}",
            "POST",
            "/api/v1/jobs",
            (422,),
            json={"project": PROJECT, "type": "sleep", "params": {k: v}},
        )
        for k, v in (("seconds", -1), ("seconds", 3601), ("fail_at", 3), ("fail_at", -1), ("fail_times", -1))
    ],
    Bad("max-running-0", "POST", "/api/v1/projects", (422,), json={"name": "fresh-one", "max_running": 0}),
    Bad("max-running-huge", "POST", "/api/v1/projects", (422,), json={"name": "fresh-one", "max_running": 10**12}),
    Bad("too-many-ids", "POST", "/api/v1/jobs/batch", (422,), json={"action": "discard", "ids": ["a"] * 1001}),
    Bad("empty-ids", "POST", "/api/v1/jobs/batch", (422,), json={"action": "discard", "ids": []}),
    Bad("ids-and-filter", "POST", "/api/v1/jobs/batch", (422,), json={"action": "discard", "ids": ["a"], "filter": {}}),
    # path traversal and other impossible file targets
    *[
        Bad(
            f"file-{i}",
            "POST",
            "/api/v1/jobs",
            (422,),
            json={"project": PROJECT, "type": "file_digest", "target": {"kind": "file", "name": name}},
        )
        for i, name in enumerate(
            [
                "../etc/passwd",
                "../../../../../../etc/passwd",
                "/etc/passwd",
                "data.txt/../../x",
                "a/b/../../..",
                "..",
                "./..",
                "escape/secret.txt",  # a symlink out of the root
                "escape",
                "loop/x",  # a symlink loop
                "n" * 300,  # a component no file system allows
                "a\x00b",
                "",
                "nothing-here.txt",  # absent
                "//etc/passwd",
                "~/.ssh/id_rsa",
            ]
        )
    ],
    Bad(
        "record-target-for-file-digest",
        "POST",
        "/api/v1/jobs",
        (422,),
        json={"project": PROJECT, "type": "file_digest", "target": {"kind": "record", "name": "orders"}},
    ),
    Bad("record-with-slash", "PUT", f"/api/v1/projects/{PROJECT}/targets/record/a%2Fb", (404, 422)),
    # NUL characters, which PostgreSQL cannot store or search for (500 before the guard)
    Bad("nul-project", "POST", "/api/v1/jobs", (422,), json={"project": "bad\x00input", "type": "sleep"}, says="NUL"),
    Bad("nul-role", "POST", "/api/v1/users", (422,), json={"name": "mallory", "roles": {"a\x00": "viewer"}}),
    Bad("nul-roles-put", "PUT", "/api/v1/users/admin/roles", (422,), json={"a\x00": "viewer"}),
    Bad("nul-batch-id", "POST", "/api/v1/jobs/batch", (422,), json={"action": "pause", "ids": ["a\x00"]}),
    Bad("nul-filter", "POST", "/api/v1/jobs/batch", (422,), json={"action": "pause", "filter": {"q": "a\x00"}}),
    Bad(
        "nul-attribute",
        "PUT",
        f"/api/v1/projects/{PROJECT}/targets/record/orders",
        (422,),
        json={"attributes": {"a": "\x00"}},
    ),
    Bad("nul-job-id", "GET", "/api/v1/jobs/a%00b", (422,)),
    Bad("nul-job-pause", "POST", "/api/v1/jobs/a%00b/pause", (422,)),
    Bad("nul-targets", "GET", "/api/v1/projects/a%00b/targets", (422,)),
    Bad("nul-log", "GET", "/api/v1/jobs/a%00b/steps/0/log", (422,)),
    Bad("nul-user", "PUT", "/api/v1/users/a%00b/roles", (422,), json={}),
    # times UTC cannot express
    Bad(
        "since-year-0",
        "GET",
        "/api/v1/jobs",
        (422,),
        params={"since": "0001-01-01T00:00:00+14:00"},
        says="out of range",
    ),
    Bad("until-year-10000", "GET", "/api/v1/jobs", (422,), params={"until": "9999-12-31T23:00:00-14:00"}),
    Bad(
        "filter-since-year-0",
        "POST",
        "/api/v1/jobs/batch",
        (422,),
        json={"action": "discard", "filter": {"since": "0001-01-01T00:00:00+14:00"}},
    ),
    Bad("since-after-until", "GET", "/api/v1/jobs", (422,), params={"since": "2030-01-01", "until": "2020-01-01"}),
    Bad("period-and-since", "GET", "/api/v1/jobs", (422,), params={"period": "day", "since": "2020-01-01"}),
]


@pytest.mark.parametrize("bad", BODIES, ids=lambda b: b.id)
def test_bad_input_is_refused_and_changes_nothing(seeded: Seeded, bad: Bad) -> None:
    """A clear 4xx in the error shape (`{"error": {"code", "message"}}`), and every table exactly as before."""
    before = snapshot(seeded)
    response = bad.send(seeded.client)
    assert_refused(response, bad.status, bad.says)
    assert snapshot(seeded) == before


def test_a_chunked_body_over_the_limit_is_refused_while_it_arrives(seeded: Seeded) -> None:
    """Without Content-Length the guard counts what arrives: 413 all the same, and nothing written."""
    before = snapshot(seeded)
    response = seeded.client.post("/api/v1/jobs", content=_chunks(TEN_MB), headers=JSON)
    assert_refused(response, (413,), "larger")
    assert snapshot(seeded) == before


# ---------------------------------------------------------------------------------------------------- filters

#: every query parameter of GET /api/v1/jobs, of the batch filter, and of the other routes that list
LIST_ROUTES = [
    ("/api/v1/jobs", ["project", "status", "type", "q", "period", "since", "until", "sort", "page", "page_size"]),
    ("/api/v1/jobs/{job}/steps/0/log", ["tail"]),
    ("/api/v1/events", ["project"]),
]
PATH_LISTS = ["/api/v1/projects/{}/targets", "/api/v1/jobs/{}/events", "/api/v1/jobs/{}"]
NASTY = [*SQL, LONG, HUGE]


def _nasty_id(value: str) -> str:
    return value if len(value) < 40 else f"{value[0]}*{len(value)}"


@pytest.mark.parametrize("value", NASTY, ids=_nasty_id)
def test_sql_metacharacters_and_long_strings_in_every_filter(seeded: Seeded, value: str) -> None:
    """Each query parameter of each list route, alone, with the value: a 4xx in the error shape, or (a search that
    is merely unusual) 200 matching nothing. Never a 5xx, never a change."""
    before = snapshot(seeded)
    for route, names in LIST_ROUTES:
        path = route.format(job=seeded.jobs[0])
        for name in names:
            response = seeded.client.get(path, params={name: value})
            where = f"GET {path}?{name}={_nasty_id(value)}"
            if response.status_code == 200:
                body = response.json()
                assert body["total"] == 0 and body["items"] == [], where
            else:
                assert_refused(response, (404, 422), where=where)
        response = seeded.client.get("/api/v1/jobs", params=[("project", PROJECT), ("project", value)])
        assert_refused(response, (404, 422), where=f"second project {_nasty_id(value)}")
    for path in PATH_LISTS:
        response = seeded.client.get(path.format(value))
        assert_refused(response, (404, 422), where=f"GET {path.format(_nasty_id(value))}")
    assert snapshot(seeded) == before


@pytest.mark.parametrize("value", NASTY, ids=_nasty_id)
@pytest.mark.parametrize("key", ["project", "status", "type", "q", "period", "since", "until"])
def test_sql_metacharacters_and_long_strings_in_every_batch_filter_field(seeded: Seeded, key: str, value: str) -> None:
    """A batch whose filter field holds the value discards nothing: 4xx, or 200 with no results."""
    before = snapshot(seeded)
    filter_: dict[str, Any] = {"project": PROJECT, key: value}
    response = seeded.client.post("/api/v1/jobs/batch", json={"action": "discard", "filter": filter_})
    if response.status_code == 200:
        assert response.json() == {"results": []}
    else:
        assert_refused(response, (404, 422))
    assert snapshot(seeded) == before


def test_a_search_with_metacharacters_finds_only_what_it_says(seeded: Seeded) -> None:
    """LIKE wildcards are taken literally: `%` and `_` match no job, while a real prefix still does."""
    assert seeded.client.get("/api/v1/jobs", params={"q": "%"}).json()["total"] == 0
    assert seeded.client.get("/api/v1/jobs", params={"q": "_"}).json()["total"] == 0
    found = seeded.client.get("/api/v1/jobs", params={"q": seeded.jobs[0][:8]}).json()
    assert [job["id"] for job in found["items"]] == [seeded.jobs[0]]
    assert seeded.client.get("/api/v1/jobs", params={"q": "orders"}).json()["total"] == 1


def test_the_seeded_jobs_are_untouched(seeded: Seeded) -> None:
    """After all of the above the three jobs are still PENDING (a batch that wrongly matched would show here)."""
    for job_id in seeded.jobs:
        assert seeded.client.get(f"/api/v1/jobs/{job_id}").json()["status"] == "PENDING"


# ---------------------------------------------------------------------------------------------- tokens at rest


def test_tokens_are_stored_only_as_hashes(seeded: Seeded) -> None:
    """After users are created through the API, no column of any table contains a plain token (theirs or the
    admin's), while each token's SHA-256 is there and the token works."""
    tokens = {ADMIN["Authorization"].removeprefix("Bearer ")}
    for body in (
        {"name": "tok-admin", "admin": True},
        {"name": "tok-operator", "roles": {PROJECT: "operator"}},
        {"name": "tok-viewer", "roles": {PROJECT: "viewer"}},
    ):
        response = seeded.client.post("/api/v1/users", json=body)
        assert response.status_code == 201, response.text
        token = response.json()["token"]
        me = seeded.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200 and me.json()["name"] == body["name"]
        tokens.add(token)
    cells = [
        json.dumps(value, default=str) if not isinstance(value, str) else value
        for rows in snapshot(seeded).values()
        for row in rows
        for value in row
    ]
    for token in tokens:
        assert not [cell for cell in cells if token in cell], "a plain token is stored"
        assert hashlib.sha256(token.encode()).hexdigest() in cells, "the token's hash is not where it should be"
    listed = seeded.client.get("/api/v1/users").text
    assert not [token for token in tokens if token in listed], "GET /users shows a token"


# ------------------------------------------------------------------------------------------------ helpers


def assert_refused(response: Any, statuses: tuple[int, ...], says: str = "", where: str = "") -> None:
    """The answer is one of `statuses`, in the error shape with the code that status stands for and a message."""
    context = f"{where} -> {response.status_code} {response.text[:300]}"
    assert response.status_code in statuses, context
    body = response.json()
    assert set(body) >= {"error"}, context
    error = body["error"]
    assert error["code"] == CODES[response.status_code], context
    assert isinstance(error["message"], str) and error["message"], context
    assert says in error["message"], context
    assert len(json.dumps(body)) < 20_000, f"{where}: the error echoes too much of the input"
