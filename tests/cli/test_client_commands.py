"""The client commands (`jobctl jobs|projects|users ...`) against a real in-process API, through CliRunner.

The API runs in this process (`TestClient` is an `httpx.Client`, handed to the commands in a `Connector`); no
worker consumes its queue, so jobs stay where the commands put them. `jobs watch` is driven by scripted
events and fetches here; tests/cli/test_client_commands_live.py watches real jobs run.
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from typer.testing import CliRunner

from jobctl.api.app import create_app
from jobctl.cli import app
from jobctl.cli.connection import Connector
from jobctl.cli.watch import EventPump, EventSource, WatchView, follow
from jobctl.client import Client as JobctlClient
from jobctl.client import Job, NotFound, Unreachable, parse_sse
from jobctl.scheduler.settings import Settings
from jobctl.wiring import build
from jobctl.workers.services import Services

TOKEN = "test-admin-token"
runner = CliRunner()


@pytest.fixture(autouse=True)
def no_client_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own JOBCTL_URL / JOBCTL_TOKEN must not leak into these tests."""
    monkeypatch.delenv("JOBCTL_URL", raising=False)
    monkeypatch.delenv("JOBCTL_TOKEN", raising=False)


@pytest.fixture(scope="module")
def services(settings: Settings) -> Iterator[Services]:
    built = build(settings)
    yield built
    built.close()


@pytest.fixture(scope="module")
def http(services: Services) -> Iterator[TestClient]:
    """The API in this process; sends no token of its own (the commands send theirs)."""
    with TestClient(create_app(services)) as client:
        yield client


@pytest.fixture
def cli(http: TestClient) -> Callable[..., Any]:
    """Run `jobctl ARGS...` with the admin token against the in-process API (`events=` replaces the stream)."""

    def invoke(*args: str, token: str | None = TOKEN, events: EventSource | None = None) -> Any:
        argv = [*args, "--token", token] if token is not None else list(args)
        return runner.invoke(app, argv, obj=Connector(http=http, events=events))

    return invoke


@pytest.fixture
def admin(http: TestClient) -> JobctlClient:
    return JobctlClient(token=TOKEN, http=http)


@pytest.fixture
def project(admin: JobctlClient, cli: Callable[..., Any]) -> str:
    """A fresh project, created with `jobctl projects create`."""
    name = f"c{time.time_ns() % 10**12}"
    result = cli("projects", "create", name, "--max-running", "3")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"created project {name}"
    return name


def flat(text: str) -> str:
    """`text` with Rich's boxes and line wrapping taken out (usage errors come in a wrapped box)."""
    return " ".join(text.replace("│", " ").split())


def submit(cli: Callable[..., Any], project: str, *extra: str) -> str:
    result = cli("jobs", "submit", "--project", project, "--type", "sleep", *extra)
    assert result.exit_code == 0, result.output
    job_id = result.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"[0-9a-f]{32}", job_id), result.stdout
    return job_id


# ------------------------------------------------------------------------------------------------ list, show, submit


def test_submit_prints_the_id_last_and_sends_typed_params(
    cli: Callable[..., Any], admin: JobctlClient, project: str
) -> None:
    job_id = submit(
        cli,
        project,
        "--params-json",
        '{"steps": 5, "seconds": 9}',
        "--param",
        "steps=2",
        "--param",
        "subprocess=true",
        "--priority",
        "1",
    )
    job = admin.get_job(job_id)
    assert job.params["steps"] == 2 and job.params["seconds"] == 9 and job.params["subprocess"] is True
    assert job.priority == 1
    assert [s.name for s in job.steps] == ["sleep-1", "sleep-2"]


def test_show_gives_details_and_steps_and_json(cli: Callable[..., Any], project: str) -> None:
    job_id = submit(cli, project, "--param", "steps=3")
    result = cli("jobs", "show", job_id)
    assert result.exit_code == 0, result.output
    assert job_id in result.stdout and project in result.stdout
    assert "PENDING" in result.stdout
    header = next(line for line in result.stdout.splitlines() if "STEP" in line)
    for column in ("#", "STATUS", "PROGRESS", "WAITING", "DURATION", "ATTEMPT", "ERROR"):
        assert column in header
    step_rows = [line for line in result.stdout.splitlines() if re.match(r"\s*[0-2] ", line)]
    assert len(step_rows) == 3

    raw = cli("jobs", "show", job_id[:12], "--json")  # the short id of the tables works too
    assert raw.exit_code == 0, raw.output
    data = json.loads(raw.stdout)
    assert data["id"] == job_id and len(data["steps"]) == 3 and data["status"] == "PENDING"


def test_list_shows_a_table_filters_and_pages(cli: Callable[..., Any], project: str) -> None:
    first, second = submit(cli, project), submit(cli, project, "--param", "steps=1")
    result = cli("jobs", "list", "--project", project)
    assert result.exit_code == 0, result.output
    for job_id in (first, second):
        assert job_id[:12] in result.stdout
        assert job_id not in result.stdout  # short ids in the table
    assert "page 1 of 1 (2 jobs)" in result.stdout
    for column in ("ID", "PROJECT", "TYPE", "TARGET", "STATUS", "PROGRESS", "CREATED", "DURATION"):
        assert column in result.stdout

    paged = cli("jobs", "list", "-p", project, "--page-size", "1", "--page", "2", "--sort", "created_at")
    assert paged.exit_code == 0, paged.output
    assert "page 2 of 2 (2 jobs)" in paged.stdout
    assert second[:12] in paged.stdout and first[:12] not in paged.stdout

    none = cli("jobs", "list", "-p", project, "--status", "finished", "--status", "ERROR", "--period", "day")
    assert none.exit_code == 0, none.output
    assert "page 1 of 1 (0 jobs)" in none.stdout

    raw = cli("jobs", "list", "-p", project, "-q", first[:10], "--json")
    assert raw.exit_code == 0, raw.output
    data = json.loads(raw.stdout)
    assert data["total"] == 1 and data["items"][0]["id"] == first


# ------------------------------------------------------------------------------------------------ operations


def test_pause_twice_second_is_refused_with_the_apis_message(cli: Callable[..., Any], project: str) -> None:
    job_id = submit(cli, project)
    first = cli("jobs", "pause", job_id)
    assert first.exit_code == 0, first.output
    assert first.stdout.strip() == f"{job_id} paused, now PAUSED"

    again = cli("jobs", "pause", job_id)
    assert again.exit_code == 1
    assert again.stdout == ""
    assert f"{job_id}: cannot pause a job that is PAUSED" in again.stderr
    assert "allowed now: resume, restart, discard" in again.stderr


def test_delete_of_a_pending_job_is_refused(cli: Callable[..., Any], admin: JobctlClient, project: str) -> None:
    job_id = submit(cli, project)
    result = cli("jobs", "delete", job_id)
    assert result.exit_code == 1
    assert "cannot delete a job that is PENDING" in result.stderr
    assert admin.get_job(job_id).status == "PENDING"  # nothing changed


def test_batch_of_ids_reports_each_and_fails_if_any_fails(cli: Callable[..., Any], project: str) -> None:
    kept, gone = submit(cli, project), submit(cli, project)
    assert cli("jobs", "discard", gone).exit_code == 0
    result = cli("jobs", "discard", kept, gone, "no-such-job")
    assert result.exit_code == 1
    assert result.stdout.strip().splitlines() == [f"{kept} discarded, now DISCARDED"]
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 2
    assert f"{gone}: cannot discard a job that is DISCARDED" in errors[0]
    assert "no-such-job: job 'no-such-job' not found" in errors[1]

    deleted = cli("jobs", "delete", kept[:12], gone)  # a short id from a table is enough
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip().splitlines() == [f"{kept} deleted", f"{gone} deleted"]


def test_unknown_job_is_a_readable_404(cli: Callable[..., Any]) -> None:
    for command in (["jobs", "show", "0123456789abcdef"], ["jobs", "watch", "nope"], ["jobs", "resume", "nope"]):
        result = cli(*command)
        assert result.exit_code == 1, command
        assert "not found" in result.stderr
        assert "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) == 1


def test_bad_or_missing_token_is_a_readable_401(cli: Callable[..., Any]) -> None:
    bad = cli("jobs", "list", token="wrong-token")
    assert bad.exit_code == 1
    assert bad.stderr.startswith("jobctl: invalid token") and len(bad.stderr.strip().splitlines()) == 1
    assert bad.stderr.strip().endswith("(give --token or set JOBCTL_TOKEN)")
    assert "wrong-token" not in bad.output  # the token is never printed

    missing = cli("projects", "list", token=None)
    assert missing.exit_code == 1
    assert "missing bearer token" in missing.stderr


def test_invalid_submissions_are_readable(cli: Callable[..., Any], project: str) -> None:
    unknown = cli("jobs", "submit", "-p", project, "-t", "no-such-type")
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("jobctl: ") and "no-such-type" in unknown.stderr

    bad_params = cli("jobs", "submit", "-p", project, "-t", "sleep", "--param", "steps=0")
    assert bad_params.exit_code == 1 and "steps" in bad_params.stderr

    not_pair = cli("jobs", "submit", "-p", project, "-t", "sleep", "--param", "steps")
    assert not_pair.exit_code == 2 and "'steps' is not key=value" in flat(not_pair.output)

    bad_target = cli("jobs", "submit", "-p", project, "-t", "file_digest", "--target", "nocolon")
    assert bad_target.exit_code == 2 and "'nocolon' is not kind:name" in flat(bad_target.output)

    no_project = cli("jobs", "submit", "-p", "no-such-project", "-t", "sleep")
    assert no_project.exit_code == 1 and "not found" in no_project.stderr


def test_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["jobs", "list", "--url", "http://127.0.0.1:9", "--token", "secret-token"])
    assert result.exit_code == 1
    assert result.stderr.startswith("jobctl: cannot reach the jobctl API at http://127.0.0.1:9")
    assert "secret-token" not in result.output


def test_the_default_url_is_the_local_api_on_jobctl_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_API_PORT", "9")  # nothing listens on the discard port
    result = runner.invoke(app, ["projects", "list", "--token", "secret-token"])
    assert result.exit_code == 1
    assert result.stderr.startswith("jobctl: cannot reach the jobctl API at http://127.0.0.1:9:"), result.stderr
    monkeypatch.setenv("JOBCTL_URL", "http://127.0.0.1:7")  # JOBCTL_URL wins
    assert "at http://127.0.0.1:7:" in runner.invoke(app, ["projects", "list"]).stderr


def test_json_goes_before_the_command_too(cli: Callable[..., Any], project: str) -> None:
    job_id = submit(cli, project)
    for argv in (["--json", "jobs", "list", "-p", project], ["jobs", "list", "-p", project, "--json"]):
        result = cli(*argv)
        assert result.exit_code == 0, result.output
        assert [j["id"] for j in json.loads(result.stdout)["items"]] == [job_id]
    shown = cli("--json", "jobs", "show", job_id)
    assert json.loads(shown.stdout)["id"] == job_id
    assert json.loads(cli("--json", "projects", "list").stdout)


# ------------------------------------------------------------------------------------------------ types, targets


def test_types_lists_the_job_types(cli: Callable[..., Any]) -> None:
    table = cli("types")
    assert table.exit_code == 0, table.output
    header = table.stdout.splitlines()[0].split()
    assert header == ["TYPE", "STEPS", "TARGET", "EXCLUSIVE"]
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:] if line.strip()}
    assert "planned from the params" in rows["sleep"]
    assert "stat" in rows["file_digest"] and "file" in rows["file_digest"]
    raw = json.loads(cli("types", "--json").stdout)
    sleep = next(t for t in raw if t["name"] == "sleep")
    assert sleep["steps"] is None and "properties" in sleep["params_schema"]


def test_targets_put_list_delete(cli: Callable[..., Any], project: str) -> None:
    put = cli("targets", "put", project, "orders", "--attr", 'columns=["id"]', "--attr", "owner=me")
    assert put.exit_code == 0, put.output
    assert put.stdout.strip() == f"record orders in {project}: version 1"
    again = cli("targets", "put", project, "orders", "--attributes-json", '{"columns": ["id", "total"]}')
    assert again.stdout.strip().endswith("version 2"), again.output
    listed = cli("targets", "list", project)
    assert listed.exit_code == 0 and "orders" in listed.stdout and '"total"' in listed.stdout
    raw = json.loads(cli("--json", "targets", "list", project).stdout)
    assert [(t["name"], t["version"], t["attributes"]) for t in raw] == [("orders", 2, {"columns": ["id", "total"]})]

    job_id = submit(cli, project, "--target", "record:orders")
    deleted = cli("targets", "delete", project, "orders")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stdout.strip() == f"deleted record orders in {project}; discarded {job_id}"
    assert json.loads(cli("targets", "list", project, "--json").stdout) == []
    gone = cli("targets", "delete", project, "orders")
    assert gone.exit_code == 1 and gone.stderr.startswith("jobctl: ")

    bad = cli("targets", "put", project, "x", "--attributes-json", "[1]")
    assert bad.exit_code == 2 and "must be a JSON object" in flat(bad.stderr)


def test_submit_wait_timeout_exits_2(cli: Callable[..., Any], project: str) -> None:
    """No worker runs here: the job stays PENDING, so --wait gives up after --timeout."""
    result = cli("jobs", "submit", "-p", project, "-t", "sleep", "--wait", "--timeout", "0.2")
    assert result.exit_code == 2, result.output
    assert "is still PENDING after 0.2s" in result.stderr and result.stdout == ""


# ------------------------------------------------------------------------------------------------ projects, users


def test_projects_list_and_duplicate(cli: Callable[..., Any], project: str) -> None:
    listed = cli("projects", "list")
    assert listed.exit_code == 0, listed.output
    assert any(line.split()[:2] == [project, "3"] for line in listed.stdout.splitlines())
    raw = json.loads(cli("projects", "list", "--json").stdout)
    assert any(p["name"] == project and p["max_running"] == 3 for p in raw)

    again = cli("projects", "create", project)
    assert again.exit_code == 1 and project in again.stderr


def _has_users_api(http: TestClient) -> bool:
    return http.get("/api/v1/users", headers={"Authorization": f"Bearer {TOKEN}"}).status_code != 404


def test_users_create_list_grant(cli: Callable[..., Any], http: TestClient, project: str) -> None:
    if not _has_users_api(http):
        pytest.skip("this server has no /api/v1/users yet")
    name = f"u{time.time_ns() % 10**12}"
    created = cli("users", "create", name, "--role", f"{project}=viewer")
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert "shown only this once" in created.stderr

    me = JobctlClient(token=token, http=http).me()
    assert me.name == name and me.roles == {project: "viewer"}

    granted = cli("users", "grant", name, f"{project}=operator")
    assert granted.exit_code == 0, granted.output
    listed = cli("users", "list")
    assert listed.exit_code == 0, listed.output
    assert any(name in line and f"{project}=operator" in line for line in listed.stdout.splitlines())
    viewer_cli = cli("jobs", "submit", "-p", project, "-t", "sleep", token=token)
    assert viewer_cli.exit_code == 0, viewer_cli.output  # now an operator


def test_users_commands_on_a_server_without_users_api() -> None:
    def no_such_route(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})

    old = httpx.Client(transport=httpx.MockTransport(no_such_route), base_url="http://old")
    for command in (["users", "list"], ["users", "create", "bob"], ["users", "grant", "bob", "p=viewer"]):
        result = runner.invoke(app, [*command, "--token", TOKEN], obj=Connector(http=old))
        assert result.exit_code == 1, command
        assert "does not offer user management (no /api/v1/users)" in result.stderr


def test_role_arguments_are_checked() -> None:
    result = runner.invoke(app, ["users", "grant", "bob", "p=owner", "--token", TOKEN])
    assert result.exit_code == 2 and "viewer, operator or none" in flat(result.output)
    result = runner.invoke(app, ["users", "create", "bob", "--role", "p=none", "--token", TOKEN])
    assert result.exit_code == 2


# ------------------------------------------------------------------------------------------------ watch


def test_watch_ends_non_zero_with_the_discard_reason(cli: Callable[..., Any], http: TestClient, project: str) -> None:
    job_id = submit(cli, project)

    def events(for_project: str) -> Iterator[dict[str, Any]]:
        assert for_project == project
        yield {"id": "someone-else", "project": project, "status": "RUNNING", "progress": 5, "step": None}
        answer = http.post(f"/api/v1/jobs/{job_id}/discard", headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
        yield {"id": job_id, "project": project, "status": "DISCARDED", "progress": 0, "step": None}

    started = time.monotonic()
    result = cli("jobs", "watch", job_id, events=events)
    assert result.exit_code == 1, result.output
    assert time.monotonic() - started < 1.5, "the event's change of status is fetched at once, not at the next poll"
    assert f"job {job_id} was discarded: discarded by admin" in result.stderr
    assert "DISCARDED" in result.stdout


def test_watch_of_a_final_job_returns_at_once(cli: Callable[..., Any], project: str) -> None:
    job_id = submit(cli, project)
    assert cli("jobs", "discard", job_id).exit_code == 0
    result = cli("jobs", "watch", job_id[:12])
    assert result.exit_code == 1
    assert "was discarded" in result.stderr


def test_submit_watch_follows_the_new_job(cli: Callable[..., Any], http: TestClient, project: str) -> None:
    def events(for_project: str) -> Iterator[dict[str, Any]]:
        page = http.get(
            "/api/v1/jobs", params={"project": for_project}, headers={"Authorization": f"Bearer {TOKEN}"}
        ).json()
        job_id = page["items"][0]["id"]
        http.post(f"/api/v1/jobs/{job_id}/discard", headers={"Authorization": f"Bearer {TOKEN}"})
        yield {"id": job_id, "project": for_project, "status": "DISCARDED", "progress": 0, "step": None}

    result = cli("jobs", "submit", "-p", project, "-t", "sleep", "--watch", events=events)
    assert result.exit_code == 1, result.output
    assert re.fullmatch(r"[0-9a-f]{32}", result.stdout.splitlines()[0])
    assert "was discarded" in result.stderr


class World:
    """A scripted job: each fetch shows the next state; the events tell of progress in between."""

    def __init__(self, template: Job, states: Sequence[tuple[str, Sequence[tuple[str, float]]]]) -> None:
        self.template = template
        self.states = states
        self.fetches = 0

    def job(self, index: int) -> Job:
        status, steps = self.states[min(index, len(self.states) - 1)]
        data = self.template.model_dump(mode="json")
        data["status"] = status
        data["progress"] = sum(p for _, p in steps) / len(steps)
        data["steps"] = [
            {**data["steps"][0], "index": i, "name": f"step{i}", "status": s, "progress": p}
            for i, (s, p) in enumerate(steps)
        ]
        return Job.model_validate(data)

    def fetch(self) -> Job:
        job = self.job(self.fetches)
        self.fetches += 1
        return job


@pytest.fixture
def template(cli: Callable[..., Any], admin: JobctlClient, project: str) -> Job:
    return admin.get_job(submit(cli, project, "--param", "steps=3"))


def _recording_view() -> tuple[WatchView, io.StringIO]:
    out = io.StringIO()
    return WatchView(Console(file=out, width=120, highlight=False)), out


def test_follow_moves_the_bars_with_events_and_fetches_on_status_changes(template: Job) -> None:
    world = World(
        template,
        [
            ("PENDING", [("PENDING", 0), ("PENDING", 0), ("PENDING", 0)]),
            ("RUNNING", [("RUNNING", 0), ("PENDING", 0), ("PENDING", 0)]),
            ("RUNNING", [("FINISHED", 100), ("RUNNING", 10), ("PENDING", 0)]),
            ("FINISHED", [("FINISHED", 100), ("FINISHED", 100), ("FINISHED", 100)]),
        ],
    )

    def event(status: str, index: int, step_status: str, progress: float) -> dict[str, Any]:
        step = {"index": index, "name": f"step{index}", "status": step_status, "progress": progress}
        return {"id": template.id, "project": template.project, "status": status, "progress": 0, "step": step}

    def source(project: str) -> Iterable[dict[str, Any]]:
        yield event("RUNNING", 0, "RUNNING", 0)  # status change: fetch 1
        for p in (20, 50, 80):
            yield event("RUNNING", 0, "RUNNING", p)  # progress only: no fetch
        yield event("RUNNING", 1, "RUNNING", 10)  # a new step runs: fetch 2
        yield event("FINISHED", 2, "FINISHED", 100)  # fetch 3: the end
        time.sleep(10)  # a stream stays open (ending would make the pump reconnect and replay these)

    view, out = _recording_view()
    started = time.monotonic()
    with view:
        job = follow(template.id, world.fetch, source, view, poll_s=30)
    assert time.monotonic() - started < 5, "events, not the 30 s poll, drove the fetches"
    assert job.status == "FINISHED"
    assert world.fetches == 4
    text = out.getvalue()
    for index in range(3):
        assert re.search(rf"^\s+{index} step{index}\s.*100%\s+FINISHED", text, re.MULTILINE), text
    assert re.search(rf"job {template.id[:12]} sleep .*100%\s+FINISHED", text), text
    assert "step 0 step0 FINISHED" in text  # a line per change of status


def test_follow_polls_when_the_event_stream_is_missing(template: Job) -> None:
    world = World(
        template,
        [("RUNNING", [("RUNNING", 30 * i), ("PENDING", 0), ("PENDING", 0)]) for i in range(3)]
        + [("ERROR", [("ERROR", 90), ("PENDING", 0), ("PENDING", 0)])],
    )

    def missing(project: str) -> Iterable[dict[str, Any]]:
        raise NotFound(404, "not_found", "no such route")

    view, out = _recording_view()
    started = time.monotonic()
    with view:
        job = follow(template.id, world.fetch, missing, view, poll_s=5)
    elapsed = time.monotonic() - started
    assert job.status == "ERROR"
    assert world.fetches == 4
    assert elapsed < 3, "without events, the fallback poll runs at DEGRADED_POLL_S"
    assert "ERROR" in out.getvalue()


def test_follow_outlives_a_short_api_outage(template: Job) -> None:
    world = World(
        template,
        [("RUNNING", [("RUNNING", 10), ("PENDING", 0), ("PENDING", 0)])] * 3 + [("FINISHED", [("FINISHED", 100)] * 3)],
    )
    outage = iter([False, True, True, False, False])

    def fetch() -> Job:
        if next(outage, False):
            raise Unreachable("cannot reach the jobctl API at http://api: connection refused")
        return world.fetch()

    view, out = _recording_view()
    with view:
        job = follow(template.id, fetch, None, view, poll_s=0.05)
    assert job.status == "FINISHED"
    assert out.getvalue().count("connection refused; retrying") == 1


def test_event_pump_hands_over_only_this_jobs_events_and_reconnects() -> None:
    calls: list[str] = []

    def flaky(project: str) -> Iterable[dict[str, Any]]:
        calls.append(project)
        yield {"id": "other", "status": "RUNNING"}
        yield {"id": "mine", "status": "RUNNING", "n": len(calls)}
        raise httpx.ReadError("stream broke")

    pump = EventPump(flaky, "p", "mine", reconnect_s=0.05)
    pump.start()
    try:
        first, second = pump.get(2), pump.get(2)
    finally:
        pump.stop()
    assert first is not None and first["n"] == 1
    assert second is not None and second["n"] == 2
    assert calls[:2] == ["p", "p"]


# ------------------------------------------------------------------------------------------------ client


def test_parse_sse_reads_named_events_and_skips_comments() -> None:
    lines = [": connected", "", "event: job", 'data: {"id": "a"}', "", ": keepalive", "", "data: x", "data: y", ""]
    events = list(parse_sse(lines))
    assert [(e.name, e.data) for e in events] == [("job", '{"id": "a"}'), ("message", "x\ny")]


def test_job_events_streams_the_job_events_of_the_project() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        assert request.headers["Authorization"] == "Bearer t"
        body = ': connected\n\nevent: job\ndata: {"id":"a","status":"RUNNING"}\n\nevent: other\ndata: 1\n\n'
        return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})

    http = httpx.Client(transport=httpx.MockTransport(handler), base_url="http://api")
    events = list(JobctlClient(token="t", http=http).job_events("my-project"))
    assert events == [{"id": "a", "status": "RUNNING"}]
    assert seen == ["http://api/api/v1/events?project=my-project"]

    def refused(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})

    old = httpx.Client(transport=httpx.MockTransport(refused), base_url="http://api")
    with pytest.raises(NotFound) as caught:
        list(JobctlClient(token="t", http=old).job_events("p"))
    assert caught.value.missing_route
