"""Revocation takes effect at once, everywhere: a change of access made through one API process is enforced by
another API process on the same database and Redis, on its very next request and on its open event streams.

Two real `jobctl api` processes, A and B, share a fresh database and Redis (no scheduler or worker: none is
needed). Each change is made through A; each check is made on B. Proven, on SQLite and on PostgreSQL:

1. a revoked token is refused (401) by B within 1 s of A's 204, and the event stream B had open with it ends
   cleanly (the response body finishes) within 2.5 s; the user's other token keeps working;
2. a disabled user's token is refused by B and their open stream on B ends, within the same bounds; once the
   user is enabled again, the same token works on B again (requests and a new stream);
3. once a role is taken away, the project does not exist for the caller on B (404 for its jobs) within 1 s, and
   the stream on B watching that project ends within 2.5 s; the caller's other project still answers;
4. a token created with an expiry ~2 s ahead works on A and on B until then and is refused by both within 1 s of
   it; the stream opened on B with it ends within 2.5 s of it;

and every time, a token of an unrelated user keeps working on B: its requests answer and its stream on B stays
open and goes on delivering changes (no collateral damage).

The measured delays are printed (`pytest -rP`) and recorded as test properties (junit XML).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from jobctl.scheduler.settings import Settings
from tests.conftest import fresh_database
from tests.integration.system import Process, wait_until
from tests.secrets_check import remember

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer test-admin-token"}  # the settings' `admin_token`: the bootstrapped admin's
REFUSED_WITHIN_S = 1.0  # every request reads its token afresh: the next request is refused
STREAM_ENDS_WITHIN_S = 2.5  # the hub re-checks its streams' callers every second (`RECHECK_S`)
POLL_S = 0.05
EXPIRES_IN_S = 2.0

Recorder = Callable[[str, object], None]


@dataclass
class Apis:
    """The two API processes: changes go through `a`, checks are made on `b`."""

    a: httpx.Client
    b: httpx.Client


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports (all bound at once, so never the same one twice)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()


@pytest.fixture(scope="module")
def apis(settings: Settings, backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Apis]:
    """Two `jobctl api` processes on one fresh database (and the session's Redis), each ready (`/readyz`)."""
    url, drop = fresh_database(backend, tmp_path_factory)
    tuned = settings.model_copy(update={"database_url": url, "queue": f"{settings.queue}-revocation"})
    logs = tmp_path_factory.mktemp("logs-revocation")
    started: list[tuple[Process, str]] = []
    clients: list[httpx.Client] = []
    try:
        for name, port in zip(("api-a", "api-b"), _free_ports(2), strict=True):  # both start at once
            started.append((Process(name, ["api", "--port", str(port)], tuned, logs), f"http://127.0.0.1:{port}"))
        for proc, base in started:

            def ready(proc: Process = proc, base: str = base) -> bool:
                if proc.popen.poll() is not None:
                    raise AssertionError(f"{proc.name} died:\n{proc.tail()}")
                try:
                    return httpx.get(f"{base}/readyz", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(ready, 30, f"{proc.name} to be ready", interval=0.1)
        clients = [httpx.Client(base_url=base, timeout=5) for _, base in started]
        yield Apis(a=clients[0], b=clients[1])
    finally:
        for client in clients:
            client.close()
        for proc, _ in started:
            proc.stop()
        drop()


# ------------------------------------------------------------------------------------------------ helpers


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _project(apis: Apis) -> str:
    name = _unique("p")
    created = apis.a.post("/api/v1/projects", headers=ADMIN, json={"name": name})
    assert created.status_code == 201, created.text
    return name


def _user(apis: Apis, prefix: str, roles: dict[str, str]) -> tuple[str, str]:
    """A new user (made through A) with `roles`; their name and their `default` token."""
    name = _unique(prefix)
    created = apis.a.post("/api/v1/users", headers=ADMIN, json={"name": name, "roles": roles})
    assert created.status_code == 201, created.text
    return name, str(created.json()["token"])


def _token(apis: Apis, user: str, name: str, expires_at: datetime | None = None) -> str:
    """Another token of `user` (made through A)."""
    body: dict[str, Any] = {"name": name}
    if expires_at is not None:
        body["expires_at"] = expires_at.isoformat()
    created = apis.a.post(f"/api/v1/users/{user}/tokens", headers=ADMIN, json=body)
    assert created.status_code == 201, created.text
    token = str(created.json()["token"])
    remember(token)  # the secrets check learns the tokens of `POST /users` only; no log may hold this one either
    return token


def _answers(client: httpx.Client, headers: dict[str, str], path: str = "/api/v1/me", **params: str) -> int:
    return client.get(path, headers=headers, params=params).status_code


def _answers_within(
    client: httpx.Client, headers: dict[str, str], since: float, status: int, path: str = "/api/v1/me", **params: str
) -> float:
    """Poll `client` every `POLL_S` until `path` answers `status` (a refusal, or an acceptance again); how long
    after `since` (monotonic) it did. Fails unless it did within `REFUSED_WITHIN_S`."""
    wait_until(
        lambda: _answers(client, headers, path, **params) == status,
        REFUSED_WITHIN_S,
        f"{path} to answer {status}",
        interval=POLL_S,
    )
    delay = time.monotonic() - since
    assert delay < REFUSED_WITHIN_S, f"{path} answered {status} only {delay:.3f}s after the change"
    return delay


class Stream(threading.Thread):
    """An event stream read in the background: whether it opened, the ids of the jobs it told of, and when and how
    it ended. With `stop` set, it returns (closing the connection) after the next event."""

    def __init__(self, client: httpx.Client, headers: dict[str, str], **params: str) -> None:
        super().__init__(daemon=True)
        self.client, self.headers, self.params = client, headers, params
        self.status_code: int | None = None
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.job_ids: list[str] = []
        self.ended_at: float | None = None  # monotonic; set when the server finished the response body
        self.error: Exception | None = None  # set if the connection broke off instead

    def run(self) -> None:
        try:
            with self.client.stream(
                "GET",
                "/api/v1/events",
                headers=self.headers,
                params=self.params,
                timeout=httpx.Timeout(5, read=60),
            ) as response:
                self.status_code = response.status_code
                for line in response.iter_lines():
                    if line == ": connected":  # sent once the stream's subscription is in place
                        self.connected.set()
                    elif line.startswith("data: "):
                        self.job_ids.append(str(json.loads(line[6:])["id"]))
                        if self.stop.is_set():
                            return
                self.ended_at = time.monotonic()
        except Exception as exc:  # kept for the assertions, not swallowed
            self.error = exc

    def open(self) -> Stream:
        """Start reading; return once the stream is open (200 and its `: connected` line arrived)."""
        self.start()
        wait_until(lambda: self.connected.is_set() or not self.is_alive(), 10, "the event stream to open")
        assert self.connected.is_set() and self.status_code == 200, (self.status_code, self.error)
        return self

    def ends_within(self, since: float) -> float:
        """Wait for the server to end the stream cleanly; how long after `since` (monotonic) it did. Fails unless
        it did within `STREAM_ENDS_WITHIN_S`."""
        wait_until(lambda: not self.is_alive(), STREAM_ENDS_WITHIN_S + 1, "the server to end the event stream")
        assert self.error is None, f"the stream broke off instead of ending: {self.error!r}"
        assert self.ended_at is not None
        delay = self.ended_at - since
        assert delay < STREAM_ENDS_WITHIN_S, f"the stream ended only {delay:.3f}s after the change"
        return delay


@dataclass
class Bystander:
    """A user with nothing to do with any change: a viewer of a project of their own."""

    name: str
    project: str
    headers: dict[str, str]

    def watch(self, apis: Apis) -> Stream:
        """Their event stream on B, open."""
        assert _answers(apis.b, self.headers) == 200
        return Stream(apis.b, self.headers, project=self.project).open()

    def unaffected(self, apis: Apis, stream: Stream) -> None:
        """Their token still answers on B, and their stream on B is still open and still delivers a change (a job
        submitted through A); then the stream is closed."""
        assert _answers(apis.b, self.headers) == 200
        assert _answers(apis.b, self.headers, "/api/v1/jobs", project=self.project) == 200
        assert stream.is_alive() and stream.ended_at is None and stream.error is None
        stream.stop.set()
        submitted = apis.a.post(
            "/api/v1/jobs",
            headers=ADMIN,
            json={"project": self.project, "type": "sleep", "params": {"steps": 1, "seconds": 0}},
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["id"]
        wait_until(lambda: job_id in stream.job_ids, 5, "the bystander's stream on B to tell of a new job")
        stream.join(5)
        assert stream.error is None, repr(stream.error)


@pytest.fixture(scope="module")
def bystander(apis: Apis) -> Bystander:
    project = _project(apis)
    name, token = _user(apis, "bystander", {project: "viewer"})
    return Bystander(name, project, _bearer(token))


@pytest.fixture
def record(record_property: Callable[[str, object], None]) -> Recorder:
    """Record a measured delay: as a test property and on the test's output."""

    def rec(name: str, seconds: object) -> None:
        record_property(name, seconds)
        print(f"{name}: {seconds:.3f}s" if isinstance(seconds, float) else f"{name}: {seconds}")

    return rec


# -------------------------------------------------------------------------------------------------- tests


def test_a_revoked_token_is_refused_and_its_stream_ended_on_the_other_process(
    apis: Apis, bystander: Bystander, record: Recorder
) -> None:
    project = _project(apis)
    user, default = _user(apis, "revoked", {project: "viewer"})
    laptop = _bearer(_token(apis, user, "laptop"))
    assert _answers(apis.b, laptop) == 200
    stream = Stream(apis.b, laptop).open()
    watching = bystander.watch(apis)

    revoked = apis.a.delete(f"/api/v1/users/{user}/tokens/laptop", headers=ADMIN)
    assert revoked.status_code == 204, revoked.text
    since = time.monotonic()

    record("revoked_token_refused_on_b", _answers_within(apis.b, laptop, since, 401))
    record("revoked_token_stream_ended_on_b", stream.ends_within(since))
    assert _answers(apis.a, laptop) == 401
    assert apis.b.get("/api/v1/events", headers=laptop).status_code == 401  # no new stream either
    assert _answers(apis.b, _bearer(default)) == 200  # only that token was revoked, not the user's other one
    bystander.unaffected(apis, watching)


def test_a_disabled_user_is_refused_and_their_stream_ended_on_the_other_process_until_enabled(
    apis: Apis, bystander: Bystander, record: Recorder
) -> None:
    project = _project(apis)
    user, token = _user(apis, "disabled", {project: "operator"})
    headers = _bearer(token)
    assert _answers(apis.b, headers) == 200
    stream = Stream(apis.b, headers, project=project).open()
    watching = bystander.watch(apis)

    disabled = apis.a.patch(f"/api/v1/users/{user}", headers=ADMIN, json={"disabled": True})
    assert disabled.status_code == 200, disabled.text
    since = time.monotonic()

    record("disabled_user_refused_on_b", _answers_within(apis.b, headers, since, 401))
    record("disabled_user_stream_ended_on_b", stream.ends_within(since))
    assert _answers(apis.a, headers) == 401
    bystander.unaffected(apis, watching)

    enabled = apis.a.patch(f"/api/v1/users/{user}", headers=ADMIN, json={"disabled": False})
    assert enabled.status_code == 200, enabled.text
    record("enabled_user_accepted_on_b", _answers_within(apis.b, headers, time.monotonic(), 200))
    assert _answers(apis.b, headers, "/api/v1/jobs", project=project) == 200
    with apis.b.stream("GET", "/api/v1/events", headers=headers, params={"project": project}) as again:
        assert again.status_code == 200
        assert next(again.iter_lines()) == ": connected"


def test_a_removed_role_hides_the_project_and_ends_its_stream_on_the_other_process(
    apis: Apis, bystander: Bystander, record: Recorder
) -> None:
    project, kept = _project(apis), _project(apis)
    user, token = _user(apis, "leaving", {project: "viewer", kept: "viewer"})
    headers = _bearer(token)
    assert _answers(apis.b, headers, "/api/v1/jobs", project=project) == 200
    stream = Stream(apis.b, headers, project=project).open()
    watching = bystander.watch(apis)

    removed = apis.a.put(f"/api/v1/users/{user}/roles", headers=ADMIN, json={project: None})
    assert removed.status_code == 200, removed.text
    since = time.monotonic()

    record(
        "removed_role_project_hidden_on_b",
        _answers_within(apis.b, headers, since, 404, "/api/v1/jobs", project=project),
    )
    record("removed_role_stream_ended_on_b", stream.ends_within(since))
    assert apis.b.get("/api/v1/events", headers=headers, params={"project": project}).status_code == 404
    assert _answers(apis.b, headers) == 200  # the token itself still works...
    assert _answers(apis.b, headers, "/api/v1/jobs", project=kept) == 200  # ...and so does the role they kept
    bystander.unaffected(apis, watching)


def test_an_expired_token_is_refused_by_both_processes_and_its_stream_ended(
    apis: Apis, bystander: Bystander, record: Recorder
) -> None:
    project = _project(apis)
    user, _ = _user(apis, "expiring", {project: "viewer"})
    expires_at = datetime.now(UTC) + timedelta(seconds=EXPIRES_IN_S)
    expiry = time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds()  # the same moment, monotonic
    headers = _bearer(_token(apis, user, "short-lived", expires_at))
    stream = Stream(apis.b, headers).open()
    watching = bystander.watch(apis)

    # Until it expires the token works on both; from then on both refuse it, each within a second.
    last_accepted: dict[str, float] = {}
    refused_after: dict[str, float] = {}
    deadline = expiry + REFUSED_WITHIN_S
    while len(refused_after) < 2 and time.monotonic() < deadline + POLL_S:
        for name, client in (("a", apis.a), ("b", apis.b)):
            if name in refused_after:
                continue
            status = _answers(client, headers)
            now = time.monotonic()
            if status == 200:
                last_accepted[name] = now
            else:
                assert status == 401, status
                assert now >= expiry, f"{name} refused the token {expiry - now:.3f}s before it expired"
                refused_after[name] = now - expiry
        time.sleep(POLL_S)
    assert set(last_accepted) == {"a", "b"}, "the token should work on both processes until it expires"
    assert set(refused_after) == {"a", "b"}, f"still accepted {REFUSED_WITHIN_S}s after expiry: {refused_after}"
    for name, delay in refused_after.items():
        assert delay < REFUSED_WITHIN_S, (name, delay)
        record(f"expired_token_refused_on_{name}", delay)
    record("expired_token_stream_ended_on_b", stream.ends_within(expiry))
    bystander.unaffected(apis, watching)
