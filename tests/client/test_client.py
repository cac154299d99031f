"""`jobctl.client` on its own: what importing it loads, the requests it builds, how it reads answers and errors,
how handles wait and watch - against a scripted server (`httpx.MockTransport`), sync and async alike.

tests/integration/test_client.py runs the same client against a live system."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx
import pytest

import jobctl.client
from jobctl import states
from jobctl.client import (
    ApiError,
    AsyncClient,
    BadAnswer,
    BatchResult,
    Client,
    Conflict,
    Error,
    Forbidden,
    Invalid,
    Job,
    JobDiscarded,
    JobFailed,
    JobQuery,
    JobStatus,
    JobType,
    NotFound,
    Unauthorized,
    Unreachable,
    _handle,
    default_url,
)

T = TypeVar("T")
TOKEN = "a-long-secret-token-of-the-caller"
HEAVY = ("sqlalchemy", "celery", "fastapi", "starlette", "kombu", "redis", "alembic", "uvicorn", "psycopg")
INTERNAL = ("jobctl.scheduler", "jobctl.workers", "jobctl.api", "jobctl.bench")


# ------------------------------------------------------------------------------------------------ what it loads


def test_importing_the_client_loads_only_httpx_pydantic_and_the_standard_library() -> None:
    """In a fresh interpreter: `import jobctl.client` brings in none of the server's dependencies nor any other
    part of jobctl but `jobctl.states`, the contract it shares with the server (if `jobctl/__init__.py` ever
    imports one, this fails and says which)."""
    code = "import json, sys; import jobctl.client; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(done.stdout)
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY]
    internal = [m for m in loaded if m.startswith(INTERNAL)]
    assert heavy == [] and internal == [], f"import jobctl.client loaded {heavy + internal}"
    ours = {m for m in loaded if m == "jobctl" or m.startswith("jobctl.")}
    assert ours == {"jobctl", "jobctl.client", "jobctl.states"} | {m for m in ours if m.startswith("jobctl.client._")}
    assert "httpx" in loaded and "pydantic" in loaded


def test_the_states_and_operations_are_the_shared_ones() -> None:
    """One definition each (jobctl.states): the client re-exports the states and derives its operation names."""
    assert jobctl.client.JobStatus is states.JobStatus
    assert tuple(op.value for op in states.OPERATIONS) == jobctl.client.OPERATIONS
    assert all(type(op) is str for op in jobctl.client.OPERATIONS)
    assert [s for s in JobStatus if s.ended] == [JobStatus.ERROR, JobStatus.DISCARDED, JobStatus.FINISHED]
    assert [s for s in JobStatus if s.final] == [JobStatus.DISCARDED, JobStatus.FINISHED]


def test_the_public_surface() -> None:
    names = jobctl.client.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert hasattr(jobctl.client, name), name
    errors = [getattr(jobctl.client, n) for n in names if isinstance(getattr(jobctl.client, n), type)]
    errors = [e for e in errors if issubclass(e, Exception)]
    assert {e.__name__ for e in errors} >= {"Unauthorized", "Forbidden", "NotFound", "Conflict", "Invalid"}
    assert all(issubclass(e, Error) for e in errors)
    sync = {n for n in vars(Client) if not n.startswith("_") and callable(getattr(Client, n))}
    both = {n for n in vars(AsyncClient) if not n.startswith("_") and callable(getattr(AsyncClient, n))}
    assert sync - both == set(), "AsyncClient has every method of Client"


# ------------------------------------------------------------------------------------------------ a scripted server


def job_json(job_id: str = "j1", status: str = "PENDING", **fields: Any) -> dict[str, Any]:
    steps = [
        {"index": 0, "name": "one", "status": status, "progress": 0, "output": None, "retry_at": None},
    ]
    body: dict[str, Any] = {
        "id": job_id,
        "project": "demo",
        "type": "sleep",
        "target": None,
        "params": {},
        "priority": 3,
        "status": status,
        "progress": 0,
        "created_at": "2026-01-01T00:00:00Z",
        "submitter": "admin",
        "attempt": 1,
        "error": None,
        "discard_reason": None,
        "result": None,
        "allowed": [],
        "steps": steps,
    }
    return {**body, **fields}


class Server:
    """Answers requests by `(method, path)` from `routes` (a function of the request, or a fixed answer), and
    records every request."""

    def __init__(self, routes: dict[tuple[str, str], Any]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.headers.get("Authorization") == f"Bearer {TOKEN}"
        answer = self.routes.get((request.method, request.url.path))
        if answer is None:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no such route"}})
        if callable(answer):
            answer = answer(request)
        if isinstance(answer, httpx.Response):  # a fresh copy: a response is read only once
            return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)
        return httpx.Response(200, json=answer)

    def client(self) -> Client:
        return Client(
            "http://api", TOKEN, http=httpx.Client(transport=httpx.MockTransport(self), base_url="http://api")
        )

    def aclient(self) -> AsyncClient:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self), base_url="http://api")
        return AsyncClient("http://api", TOKEN, http=http)

    def bodies(self) -> list[Any]:
        return [json.loads(r.content) if r.content else None for r in self.requests]


def sequence(*answers: Any) -> Callable[[httpx.Request], Any]:
    """A route answering each of `answers` in turn, then the last one forever."""
    pending = list(answers)

    def answer(_request: httpx.Request) -> Any:
        return pending.pop(0) if len(pending) > 1 else pending[0]

    return answer


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` on a thread of its own (a test before may have left an event loop on this one)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result(timeout=60)


def error(http_status: int, code: str, message: str, **extra: Any) -> httpx.Response:
    return httpx.Response(http_status, json={"error": {"code": code, "message": message, **extra}})


# ------------------------------------------------------------------------------------------------ requests


def test_submit_sends_one_job_and_returns_its_handle() -> None:
    server = Server({("POST", "/api/v1/jobs"): lambda r: httpx.Response(201, json=job_json("new"))})
    job = server.client().submit("export", project="demo", params={"rows": 3}, target=("record", "orders"), priority=1)
    assert server.bodies() == [
        {
            "project": "demo",
            "type": "export",
            "params": {"rows": 3},
            "target": {"kind": "record", "name": "orders"},
            "priority": 1,
        }
    ]
    assert (job.id, job.status, job.project, job.type, job.progress) == ("new", JobStatus.PENDING, "demo", "sleep", 0)
    assert job.steps[0].name == "one" and job.submitter == "admin"  # any other field, from the job
    assert repr(job) == "<JobHandle new sleep PENDING 0%>"
    server.client().submit("sleep", project="demo")
    assert server.bodies()[1] == {"project": "demo", "type": "sleep"}  # nothing left out is sent


def test_submit_many_is_one_request_and_keeps_the_order() -> None:
    def bulk(request: httpx.Request) -> httpx.Response:
        jobs = json.loads(request.content)["jobs"]
        return httpx.Response(201, json={"items": [job_json(f"j{i}") for i in range(len(jobs))]})

    server = Server({("POST", "/api/v1/jobs/bulk"): bulk})
    handles = server.client().submit_many(
        [{"type": "sleep", "project": "demo", "target": ("record", f"t{i}")} for i in range(3)]
        + [{"type": "sleep", "project": "demo", "target": {"kind": "file", "name": "a"}}]
    )
    assert [h.id for h in handles] == ["j0", "j1", "j2", "j3"] and len(server.requests) == 1
    sent = server.bodies()[0]["jobs"]
    assert sent[0]["target"] == {"kind": "record", "name": "t0"} and sent[3]["target"] == {"kind": "file", "name": "a"}


def test_a_refused_bulk_submission_names_the_refused_items() -> None:
    refused = error(
        422, "invalid", "2 of 3 jobs refused", items=[{"index": 1, "message": "x"}, {"index": 2, "message": "y"}]
    )
    server = Server({("POST", "/api/v1/jobs/bulk"): refused})
    with pytest.raises(Invalid) as caught:
        server.client().submit_many([{"type": "sleep", "project": "demo"}] * 3)
    assert [i["index"] for i in caught.value.items] == [1, 2] and caught.value.http_status == 422


def test_jobs_reads_every_page_with_the_filters() -> None:
    everything = [job_json(f"j{i}") for i in range(5)]

    def listing(request: httpx.Request) -> dict[str, Any]:
        page, size = int(request.url.params["page"]), int(request.url.params["page_size"])
        return {"items": everything[(page - 1) * size : page * size], "total": 5, "page": page, "page_size": size}

    server = Server({("GET", "/api/v1/jobs"): listing})
    jobs = list(
        server.client().jobs(project=["a", "b"], status=JobStatus.RUNNING, q="x", sort="-duration", page_size=2)
    )
    assert [j.id for j in jobs] == [f"j{i}" for i in range(5)]
    assert [r.url.params["page"] for r in server.requests] == ["1", "2", "3"]
    first = server.requests[0].url.params
    assert first.get_list("project") == ["a", "b"] and first.get_list("status") == ["RUNNING"]
    assert (first["q"], first["sort"]) == ("x", "-duration") and "type" not in first


def test_jobs_stops_at_an_empty_page() -> None:
    server = Server({("GET", "/api/v1/jobs"): {"items": [], "total": 3, "page": 1, "page_size": 50}})
    assert list(server.client().jobs()) == [] and len(server.requests) == 1


def test_job_query_pages_and_filters() -> None:
    query = JobQuery(projects=("a",), statuses=("ERROR",), period="day", page_size=2)
    page = jobctl.client.JobPage(items=[Job.model_validate(job_json())] * 2, total=3, page=1, page_size=2)
    following = query.following(page)
    assert following is not None and following.page == 2 and following.following(page) is None
    assert query.as_filter() == {"project": ["a"], "status": ["ERROR"], "period": "day"}


def test_batch_sends_ids_or_a_filter_and_reads_each_outcome() -> None:
    results = {"results": [{"id": "a", "ok": True, "status": "PAUSED"}, {"id": "b", "ok": False, "error": "no"}]}
    server = Server({("POST", "/api/v1/jobs/batch"): results})
    client = server.client()
    answer = client.batch("pause", ids=["a", "b"])
    assert answer == [BatchResult(id="a", ok=True, status=JobStatus.PAUSED), BatchResult(id="b", ok=False, error="no")]
    client.batch("discard", filter={"project": ["demo"]}, atomic=True)
    assert server.bodies() == [
        {"action": "pause", "atomic": False, "ids": ["a", "b"]},
        {"action": "discard", "atomic": True, "filter": {"project": ["demo"]}},
    ]
    with pytest.raises(ValueError, match="either as ids or as a filter"):
        client.batch("pause")
    with pytest.raises(ValueError, match="unknown action"):
        client.batch("explode", ids=["a"])


def test_a_refused_atomic_batch_lists_the_refusing_jobs() -> None:
    refused = error(409, "conflict", "1 job refuses", refused=[{"id": "b", "ok": False, "status": "FINISHED"}])
    server = Server({("POST", "/api/v1/jobs/batch"): refused})
    with pytest.raises(Conflict) as caught:
        server.client().batch("pause", ids=["a", "b"], atomic=True)
    assert [r.id for r in caught.value.refused] == ["b"] and caught.value.status is None


def test_ids_and_names_cannot_reach_another_route() -> None:
    server = Server({})
    client = server.client()
    with pytest.raises(NotFound):
        client.job("../users")
    with pytest.raises(NotFound):
        client.targets.put("demo", "a/b?c", {"k": 1})
    assert server.requests[0].url.raw_path == b"/api/v1/jobs/..%2Fusers"
    assert server.requests[1].url.raw_path == b"/api/v1/projects/demo/targets/record/a%2Fb%3Fc"


def test_targets_and_types() -> None:
    target = {"project": "demo", "kind": "record", "name": "orders", "version": 2, "attributes": {"a": 1}}
    server = Server(
        {
            ("PUT", "/api/v1/projects/demo/targets/record/orders"): target,
            ("GET", "/api/v1/projects/demo/targets"): [target],
            ("DELETE", "/api/v1/projects/demo/targets/record/orders"): {
                "kind": "record",
                "name": "orders",
                "discarded": ["j1"],
            },
            ("GET", "/api/v1/types"): [
                {"name": "sleep", "params_schema": {}, "steps": None, "target_kind": None, "exclusive": None},
                {
                    "name": "x",
                    "params_schema": {},
                    "steps": [{"name": "a", "weight": 8}],
                    "target_kind": "record",
                    "exclusive": "target",
                    "new": 1,
                },
            ],
        }
    )
    client = server.client()
    assert client.targets.put("demo", "orders", {"a": 1}).version == 2
    assert server.bodies()[0] == {"attributes": {"a": 1}}
    assert [t.name for t in client.targets.list("demo")] == ["orders"]
    deleted = client.targets.delete("demo", "orders")
    assert deleted is not None and deleted.discarded == ["j1"]
    types = client.types()
    assert types[0].steps is None and types[1].steps is not None and types[1].steps[0].weight == 8
    assert isinstance(types[1], JobType) and types[1].model_extra == {"new": 1}


def test_operations_log_and_events() -> None:
    server = Server(
        {
            ("POST", "/api/v1/jobs/j1/pause"): job_json(status="PAUSED", allowed=["resume", "restart", "discard"]),
            ("POST", "/api/v1/jobs/j1/resume"): error(
                409, "conflict", "job j1 is FINISHED", status="FINISHED", allowed=["delete"]
            ),
            ("DELETE", "/api/v1/jobs/j1"): httpx.Response(204),
            ("GET", "/api/v1/jobs/j1/steps/1/log"): httpx.Response(200, text="a\nb\n"),
            ("GET", "/api/v1/jobs/j1/events"): [
                {"at": "2026-01-01T00:00:00Z", "actor": "admin", "action": "submit", "from": None, "to": "PENDING"}
            ],
        }
    )
    job = jobctl.client.JobHandle(server.client(), Job.model_validate(job_json()))
    assert job.pause() is job and job.status is JobStatus.PAUSED and job.allowed == ["resume", "restart", "discard"]
    with pytest.raises(Conflict) as refused:
        job.resume()
    assert (refused.value.status, refused.value.allowed) == ("FINISHED", ["delete"])
    assert str(refused.value) == "job j1 is FINISHED"
    job.delete()
    assert server.requests[-1].method == "DELETE"
    assert job.log(step=1, tail=100) == "a\nb\n" and server.requests[-1].url.params["tail"] == "100"
    assert job.log(1) and "tail" not in server.requests[-1].url.params
    events = job.events()
    assert events[0].action == "submit" and events[0].to_status == "PENDING" and events[0].from_status is None


# ------------------------------------------------------------------------------------------------ answers and errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, Invalid),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (413, Invalid),
        (422, Invalid),
        (503, ApiError),
    ],
)
def test_each_error_status_has_its_error(status: int, kind: type[ApiError]) -> None:
    server = Server({("GET", "/api/v1/me"): error(status, "code", "what\nhappened")})
    with pytest.raises(kind) as caught:
        server.client().me()
    assert type(caught.value) is kind and isinstance(caught.value, Error)
    assert (caught.value.http_status, caught.value.code, str(caught.value)) == (status, "code", "what happened")


def test_an_error_that_is_not_the_apis_shape_is_still_readable() -> None:
    server = Server({("GET", "/api/v1/me"): httpx.Response(502, text="<html>bad gateway</html>")})
    with pytest.raises(ApiError) as caught:
        server.client().me()
    assert str(caught.value) == "/api/v1/me answered 502 Bad Gateway"
    server = Server({("GET", "/api/v1/me"): httpx.Response(409, text="")})
    with pytest.raises(Conflict):
        server.client().me()


def test_an_answer_that_is_not_the_apis_is_a_bad_answer() -> None:
    for body in (httpx.Response(200, text="<html>"), httpx.Response(200, json={"nothing": 1})):
        with pytest.raises(BadAnswer):
            Server({("GET", "/api/v1/me"): body}).client().me()


def test_the_token_never_shows_in_an_error() -> None:
    echo = error(401, "unauthorized", f"unknown token {TOKEN}")
    with pytest.raises(Unauthorized) as caught:
        Server({("GET", "/api/v1/me"): echo}).client().me()
    assert TOKEN not in str(caught.value) and "***" in str(caught.value)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_no_answer_is_unreachable_in_one_line_without_the_token() -> None:
    port = free_port()
    with Client(f"http://user:pw@127.0.0.1:{port}/", TOKEN, timeout=2) as client, pytest.raises(Unreachable) as caught:
        client.me()
    message = str(caught.value)
    assert message.startswith(f"cannot reach the jobctl API at http://user:***@127.0.0.1:{port}: ")
    assert "\n" not in message and TOKEN not in message and "pw" not in message


def test_unknown_fields_are_kept_and_new_step_fields_read() -> None:
    body = job_json(status="PENDING", waiting_for="no live worker", queue_note="a free slot")
    body["steps"][0].update(output={"rows": 1}, retry_at="2026-01-01T00:00:05Z", info={"k": "v"}, extra={"k": "v"})
    job = Job.model_validate(body)
    assert job.model_extra == {"queue_note": "a free slot"} and job.steps[0].output == {"rows": 1}
    assert job.waiting_for == "no live worker" and job.steps[0].info == {"k": "v"}
    assert job.steps[0].retry_at is not None and job.steps[0].model_extra == {"extra": {"k": "v"}}
    handle = jobctl.client.JobHandle(Server({}).client(), job)
    assert handle.queue_note == "a free slot"  # a newer server's field, through the handle
    with pytest.raises(AttributeError):
        _ = handle.no_such_field


def test_the_default_url_follows_jobctl_api_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOBCTL_URL", raising=False)
    monkeypatch.delenv("JOBCTL_API_PORT", raising=False)
    assert default_url() == "http://127.0.0.1:8000"
    monkeypatch.setenv("JOBCTL_API_PORT", "18500")
    assert default_url() == "http://127.0.0.1:18500"
    monkeypatch.setenv("JOBCTL_TOKEN", "from-env")
    with Client.from_env() as c:
        assert (c.url, c.token) == ("http://127.0.0.1:18500", "from-env")
    monkeypatch.setenv("JOBCTL_URL", "https://jobs.example/")
    assert default_url() == "https://jobs.example/" and AsyncClient.from_env().url == "https://jobs.example"


# ------------------------------------------------------------------------------------------------ waiting


def test_wait_reads_soon_then_less_often_and_returns_the_job_as_it_ended() -> None:
    statuses = ["PENDING", "RUNNING", "RUNNING", "RUNNING", "FINISHED"]
    server = Server({("GET", "/api/v1/jobs/j1"): sequence(*[job_json(status=s, result={"n": 1}) for s in statuses])})
    job = jobctl.client.JobHandle(server.client(), Job.model_validate(job_json()))
    started = time.monotonic()
    assert job.result(timeout=5) == {"n": 1} and job.status is JobStatus.FINISHED
    assert len(server.requests) == 5 and time.monotonic() - started < 0.5


def test_pacer_grows_to_poll_and_ends_at_the_deadline() -> None:
    running = Job.model_validate(job_json(status="RUNNING"))
    pacer = _handle.Pacer(None, poll=0.1)
    pauses = [pacer.after(running) or 0 for _ in range(12)]
    assert pauses[0] == pytest.approx(0.02) and pauses == sorted(pauses) and pauses[-1] == pytest.approx(0.1)
    assert _handle.Pacer(None).after(Job.model_validate(job_json(status="ERROR"))) is None
    short = _handle.Pacer(0.05, poll=10)
    total = 0.0
    with pytest.raises(TimeoutError):
        while (pause := short.after(running)) is not None:
            assert pause <= 0.05
            total += pause
            time.sleep(pause)
    assert total == pytest.approx(0.05, abs=0.02)
    with pytest.raises(ValueError):
        _handle.Pacer(1, poll=0)


def test_wait_times_out_no_sooner_than_the_timeout() -> None:
    server = Server({("GET", "/api/v1/jobs/j1"): job_json(status="RUNNING")})
    job = jobctl.client.JobHandle(server.client(), Job.model_validate(job_json()))
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"job j1 is still RUNNING after 0\.3s"):
        job.wait(timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 0.6


def test_waiting_for_many_jobs_reads_those_that_ended_together() -> None:
    """Submit three, then each `result()` in turn: the first wait reads its job, then which of the other two
    ended (one list request, by id); their waits then send nothing, as a FINISHED job never changes."""
    ended = {"j2": job_json("j2", "FINISHED", result={"n": 2}), "j3": job_json("j3", "FINISHED", result={"n": 3})}

    def listed(request: httpx.Request) -> dict[str, Any]:
        items = [ended[i] for i in request.url.params.get_list("id") if i in ended]
        return {"items": items, "total": len(items), "page": 1, "page_size": 200}

    server = Server(
        {
            ("POST", "/api/v1/jobs"): sequence(*[httpx.Response(201, json=job_json(f"j{n}")) for n in (1, 2, 3)]),
            ("GET", "/api/v1/jobs/j1"): job_json("j1", "FINISHED", result={"n": 1}),
            ("GET", "/api/v1/jobs"): listed,
        }
    )
    client = server.client()
    handles = [client.submit("sleep", project="demo") for _ in range(3)]
    assert [h.result(timeout=5) for h in handles] == [{"n": 1}, {"n": 2}, {"n": 3}]
    reads = [(r.method, r.url.path) for r in server.requests if r.method == "GET"]
    assert reads == [("GET", "/api/v1/jobs/j1"), ("GET", "/api/v1/jobs")]
    along = server.requests[-1].url.params
    assert along.get_list("id") == ["j2", "j3"] and set(along.get_list("status")) == {"ERROR", "DISCARDED", "FINISHED"}
    assert handles[1].status is JobStatus.FINISHED and handles[1].job.result == {"n": 2}


def test_a_job_read_along_in_error_is_read_again_when_waited_for() -> None:
    """ERROR is not final (the job may be resumed): a handle that learnt of it along another's wait reads its
    job again; a failed read along never fails the wait that made it; a handle no longer held is forgotten."""
    server = Server(
        {
            ("GET", "/api/v1/jobs/j1"): job_json("j1", "FINISHED"),
            ("GET", "/api/v1/jobs"): {"items": [job_json("j2", "ERROR")], "total": 1, "page": 1, "page_size": 1},
            ("GET", "/api/v1/jobs/j2"): job_json("j2", "FINISHED", result=7),
        }
    )
    client = server.client()
    first, second = (jobctl.client.JobHandle(client, Job.model_validate(job_json(i))) for i in ("j1", "j2"))
    first.wait(timeout=5)
    assert second.status is JobStatus.ERROR
    assert second.result(timeout=5) == 7
    assert [r.url.path for r in server.requests] == ["/api/v1/jobs/j1", "/api/v1/jobs", "/api/v1/jobs/j2"]

    refusing = Server(
        {
            ("GET", "/api/v1/jobs/j1"): job_json("j1", "FINISHED", result=1),
            ("GET", "/api/v1/jobs"): error(503, "unavailable", "try later"),
        }
    )
    client = refusing.client()
    mine = jobctl.client.JobHandle(client, Job.model_validate(job_json("j1")))
    other = jobctl.client.JobHandle(client, Job.model_validate(job_json("j2")))
    assert mine.result(timeout=5) == 1 and other.status is JobStatus.PENDING
    del other
    gc.collect()
    assert client.unended.others(mine) == []


def test_the_async_client_reads_along_too() -> None:
    server = Server(
        {
            ("GET", "/api/v1/jobs/j1"): job_json("j1", "FINISHED", result=1),
            ("GET", "/api/v1/jobs"): {
                "items": [job_json("j2", "DISCARDED", discard_reason="gone")],
                "total": 1,
                "page": 1,
                "page_size": 1,
            },
        }
    )

    async def scenario() -> None:
        async with server.aclient() as client:
            first, second = (
                jobctl.client.AsyncJobHandle(client, Job.model_validate(job_json(i))) for i in ("j1", "j2")
            )
            assert await first.result(timeout=5) == 1
            with pytest.raises(JobDiscarded, match="gone"):
                await second.result(timeout=5)

    run(scenario())
    assert [r.url.path for r in server.requests] == ["/api/v1/jobs/j1", "/api/v1/jobs"]


def test_result_of_a_failed_or_discarded_job() -> None:
    failed = job_json(status="ERROR", error="step 0 failed: boom")
    server = Server({("GET", "/api/v1/jobs/j1"): failed})
    with pytest.raises(JobFailed) as caught:
        server.client().job("j1").result(timeout=1)
    assert caught.value.error == "step 0 failed: boom" and caught.value.job.status is JobStatus.ERROR
    assert str(caught.value) == "job j1 failed: step 0 failed: boom"

    structured = job_json(status="ERROR", error={"code": "E1", "message": "disk full", "hint": None})
    with pytest.raises(JobFailed, match="job j1 failed: disk full"):
        Server({("GET", "/api/v1/jobs/j1"): structured}).client().job("j1").result()

    discarded = job_json(status="DISCARDED", discard_reason="target record:orders was deleted")
    with pytest.raises(JobDiscarded) as gone:
        Server({("GET", "/api/v1/jobs/j1"): discarded}).client().job("j1").result()
    assert gone.value.reason == "target record:orders was deleted"


# ------------------------------------------------------------------------------------------------ watching


def sse(*events: dict[str, Any]) -> httpx.Response:
    body = ": connected\n\n" + "".join(f"event: job\ndata: {json.dumps(e)}\n\n" for e in events)
    return httpx.Response(200, text=body, headers={"Content-Type": "text/event-stream"})


def update(status: str, progress: float, job_id: str = "j1") -> dict[str, Any]:
    return {"id": job_id, "project": "demo", "status": status, "progress": progress, "step": None}


@pytest.fixture
def no_resubscribe_pause(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(_handle, "RESUBSCRIBE_S", 0.0)
    monkeypatch.setattr("jobctl.client._sync.RESUBSCRIBE_S", 0.0)
    monkeypatch.setattr("jobctl.client._async.RESUBSCRIBE_S", 0.0)
    yield


def test_watch_yields_the_state_then_this_jobs_changes_until_final() -> None:
    stream = sse(update("RUNNING", 10), update("RUNNING", 50, "other"), update("RUNNING", 60), update("FINISHED", 100))
    server = Server(
        {
            ("GET", "/api/v1/events"): stream,
            ("GET", "/api/v1/jobs/j1"): sequence(job_json(status="PENDING"), job_json(status="FINISHED")),
        }
    )
    job = jobctl.client.JobHandle(server.client(), Job.model_validate(job_json()))
    updates = [(u.status.value, u.progress) for u in job.watch()]
    assert updates == [("PENDING", 0), ("RUNNING", 10), ("RUNNING", 60), ("FINISHED", 100)]
    assert job.status is JobStatus.FINISHED  # read again at the end
    events = [r for r in server.requests if r.url.path == "/api/v1/events"]
    assert [r.url.params["project"] for r in events] == ["demo"]


def test_watch_subscribes_again_when_the_server_ends_the_stream(no_resubscribe_pause: None) -> None:
    server = Server(
        {
            ("GET", "/api/v1/events"): sequence(sse(update("RUNNING", 10)), sse(update("DISCARDED", 10))),
            ("GET", "/api/v1/jobs/j1"): sequence(job_json(status="RUNNING"), job_json(status="RUNNING", progress=30)),
        }
    )
    job = jobctl.client.JobHandle(server.client(), Job.model_validate(job_json()))
    updates = [(u.status.value, u.progress) for u in job.watch()]
    assert updates == [("RUNNING", 0), ("RUNNING", 10), ("RUNNING", 30), ("DISCARDED", 10)]
    assert len([r for r in server.requests if r.url.path == "/api/v1/events"]) == 2


def test_watch_of_a_deleted_job_is_not_found() -> None:
    deleted = {"id": "j1", "project": "demo", "status": None, "progress": None, "step": None, "deleted": True}
    server = Server({("GET", "/api/v1/events"): sse(deleted), ("GET", "/api/v1/jobs/j1"): job_json(status="PAUSED")})
    with pytest.raises(NotFound, match="job j1 was deleted"):
        list(server.client().job("j1").watch())


def test_watch_of_a_final_job_yields_it_once() -> None:
    server = Server({("GET", "/api/v1/events"): sse(), ("GET", "/api/v1/jobs/j1"): job_json(status="FINISHED")})
    assert [u.status for u in server.client().job("j1").watch()] == [JobStatus.FINISHED]


def test_an_event_stream_the_server_refuses_is_its_error() -> None:
    server = Server({("GET", "/api/v1/events"): error(403, "forbidden", "no"), ("GET", "/api/v1/jobs/j1"): job_json()})
    with pytest.raises(Forbidden):
        list(server.client().job("j1").watch())


# ------------------------------------------------------------------------------------------------ async


def test_the_async_client_keeps_the_same_rules(no_resubscribe_pause: None) -> None:
    everything = [job_json(f"j{i}") for i in range(3)]

    def listing(request: httpx.Request) -> dict[str, Any]:
        page = int(request.url.params["page"])
        return {"items": everything[page - 1 : page], "total": 3, "page": page, "page_size": 1}

    server = Server(
        {
            ("POST", "/api/v1/jobs"): httpx.Response(201, json=job_json("j1")),
            ("GET", "/api/v1/jobs/j1"): sequence(
                job_json(status="RUNNING"), job_json(status="FINISHED", result=[1]), job_json(status="FINISHED")
            ),
            ("GET", "/api/v1/jobs"): listing,
            ("POST", "/api/v1/jobs/j1/pause"): error(
                409, "conflict", "FINISHED", status="FINISHED", allowed=["delete"]
            ),
            ("GET", "/api/v1/events"): sse(),
            ("GET", "/api/v1/me"): {"name": "admin", "admin": True, "roles": {}},
        }
    )

    async def scenario() -> None:
        async with server.aclient() as c:
            job = await c.submit("sleep", project="demo", params={"seconds": 0})
            assert await job.result(timeout=5) == [1]
            assert [j.id async for j in c.jobs(page_size=1)] == ["j0", "j1", "j2"]
            with pytest.raises(Conflict) as refused:
                await job.pause()
            assert refused.value.allowed == ["delete"]
            assert [u.status async for u in job.watch()] == [JobStatus.FINISHED]
            assert (await c.me()).admin

    run(scenario())


def test_the_async_wait_times_out() -> None:
    server = Server({("GET", "/api/v1/jobs/j1"): job_json(status="RUNNING")})

    async def scenario() -> None:
        async with server.aclient() as c:
            job = await c.job("j1")
            with pytest.raises(TimeoutError, match=r"still RUNNING after 0\.1s"):
                await job.wait(timeout=0.1)
            assert repr(job) == "<AsyncJobHandle j1 sleep RUNNING 0%>"

    run(scenario())
