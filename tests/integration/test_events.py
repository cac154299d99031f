"""Server-Sent Events on a live system: every status change in order, progress, and isolation."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime

import httpx
import pytest
import redis

from jobctl.api.auth import hash_token
from jobctl.scheduler import keys
from jobctl.scheduler.store import accounts, models
from jobctl.scheduler.store import jobs as jobs_store
from tests.integration.system import System, wait_until

pytestmark = pytest.mark.integration
ADMIN = {"Authorization": "Bearer test-admin-token"}


class Subscriber(threading.Thread):
    """Reads an SSE stream in the background, stamping every `job` event with its arrival time. `connected` is
    set when the server says the stream is subscribed (its `: connected` line; the response's headers come
    before that), or when it refuses the stream."""

    def __init__(self, url: str, headers: dict[str, str], params: dict[str, str] | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.params = url, headers, params
        self.received: list[tuple[datetime, dict[str, object]]] = []
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.status_code: int | None = None

    def run(self) -> None:
        with contextlib.suppress(httpx.HTTPError):  # the server goes away at the end of the session
            self._read()

    def _read(self) -> None:
        with httpx.stream(
            "GET",
            f"{self.url}/api/v1/events",
            headers=self.headers,
            params=self.params,
            timeout=httpx.Timeout(5, read=60),
        ) as response:
            self.status_code = response.status_code
            if response.status_code != 200:
                self.connected.set()  # refused: the caller reads `status_code`
                return
            event = None
            for line in response.iter_lines():
                if self.stop.is_set():
                    return
                if line == ": connected":  # sent once the hub has subscribed this stream: no change is missed after
                    self.connected.set()
                elif line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "job":
                    self.received.append((datetime.now(UTC), json.loads(line[6:])))

    def of(self, job_id: str) -> list[tuple[datetime, dict[str, object]]]:
        return [(at, m) for at, m in self.received if m["id"] == job_id]


def _user(system: System, name: str, project: str, role: str) -> dict[str, str]:
    token = f"token-{name}"
    with system.svc.db.write() as s:
        user_id = accounts.create_user(s, name, hash_token(token), admin=False)
        project_id = accounts.get_project(s, project).id
        s.add(models.Role(user_id=user_id, project_id=project_id, role=role))
    return {"Authorization": f"Bearer {token}"}


def test_a_subscriber_sees_every_status_change_in_order_and_progress(system: System, api_url: str) -> None:
    mine, other = system.project(), system.project()
    outsider = _user(system, f"outsider-{other}", other, "operator")
    watcher = Subscriber(api_url, ADMIN, {"project": mine})
    stranger = Subscriber(api_url, outsider)
    for sub in (watcher, stranger):
        sub.start()
        assert sub.connected.wait(10) and sub.status_code == 200

    job = system.submit(mine, params={"steps": 3, "seconds": 0.6})
    system.wait_status(job.id, "FINISHED")
    paused = system.submit(mine, params={"steps": 1, "seconds": 5})
    system.wait_step_running(paused.id, 0)
    system.op(paused.id, "pause")
    system.op(paused.id, "discard")
    wait_until(lambda: any(m["status"] == "DISCARDED" for _, m in watcher.of(paused.id)), 2, "the discard event")

    for job_id in (job.id, paused.id):
        with system.svc.db.read() as s:
            changes = [(e.to_status, e.at) for e in jobs_store.job_events(s, job_id)]
        seen = watcher.of(job_id)
        statuses = [m["status"] for _, m in seen]
        collapsed = [s for i, s in enumerate(statuses) if i == 0 or statuses[i - 1] != s]
        assert collapsed == [to for to, _ in changes], (collapsed, changes)
        for to, at in changes:  # each change arrives within 500 ms of its commit
            arrival = next(t for t, m in seen if m["status"] == to)
            assert (arrival - at).total_seconds() < 0.5, (to, arrival - at)

    progress = [m["progress"] for _, m in watcher.of(job.id) if m["status"] == "RUNNING"]
    assert len(set(progress)) >= 5, progress
    assert watcher.of(job.id)[-1][1]["progress"] == 100
    assert stranger.of(job.id) == [] and stranger.of(paused.id) == []  # another project's user sees none
    watcher.stop.set()
    stranger.stop.set()


def test_a_project_the_caller_cannot_see_is_404(system: System, api_url: str) -> None:
    hidden, own = system.project(), system.project()
    headers = _user(system, f"viewer-{own}", own, "viewer")
    response = httpx.get(f"{api_url}/api/v1/events", headers=headers, params={"project": hidden}, timeout=5)
    assert response.status_code == 404
    assert httpx.get(f"{api_url}/api/v1/events", timeout=5).status_code == 401


def test_a_removed_role_ends_the_callers_open_streams_within_a_second_or_two(system: System, api_url: str) -> None:
    project = system.project()
    name = f"leaving-{project}"
    leaving = _user(system, name, project, "viewer")
    staying = _user(system, f"staying-{project}", project, "viewer")
    readers = {"leaving": Subscriber(api_url, leaving), "staying": Subscriber(api_url, staying)}
    for reader in readers.values():
        reader.start()
        assert reader.connected.wait(10) and reader.status_code == 200
    first = system.submit(project, params={"steps": 1, "seconds": 0})
    wait_until(lambda: all(r.of(first.id) for r in readers.values()), 5, "both streams to see the first job")

    removed = httpx.put(f"{api_url}/api/v1/users/{name}/roles", headers=ADMIN, json={project: None}, timeout=5)
    assert removed.status_code == 200, removed.text
    began = time.monotonic()
    wait_until(lambda: not readers["leaving"].is_alive(), 5, "the server to end the stream of the removed role")
    ended_after = time.monotonic() - began
    assert ended_after < 2.5, ended_after  # the hub checks every second
    again = httpx.get(f"{api_url}/api/v1/events", headers=leaving, params={"project": project}, timeout=5)
    assert again.status_code == 404

    later = system.submit(project, params={"steps": 1, "seconds": 0})
    wait_until(lambda: readers["staying"].of(later.id), 5, "the other viewer's stream to go on")
    assert readers["leaving"].of(later.id) == []
    readers["staying"].stop.set()
    metrics = httpx.get(f"{api_url}/metrics", headers=ADMIN, timeout=5).text
    assert 'jobctl_event_streams_disconnected_total{reason="access"}' in metrics


def _open_stream(api_url: str, headers: dict[str, str], receive_buffer: int) -> socket.socket:
    """A raw event-stream connection with a small receive buffer, read up to the `: connected` comment."""
    url = httpx.URL(api_url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((url.host, url.port or 80))
    lines = ["GET /api/v1/events HTTP/1.1", f"Host: {url.host}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    sock.settimeout(10)
    seen = b""
    while b": connected" not in seen:
        chunk = sock.recv(4096)
        assert chunk, seen
        seen += chunk
    return sock


def _flood(system: System, project: str, changes: int) -> None:
    padding = "x" * 4000
    client = redis.Redis.from_url(system.svc.settings.redis_url)
    try:
        with client.pipeline(transaction=False) as pipe:
            for n in range(changes):
                pipe.publish(keys.EVENTS, json.dumps({"id": f"flood-{n}", "project": project, "pad": padding}))
            pipe.execute()
    finally:
        client.close()


def _disconnected(api_url: str) -> float:
    """How many event streams the API process has ended as too slow or not reading (its /metrics)."""
    text = httpx.get(f"{api_url}/metrics", headers=ADMIN, timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("jobctl_event_streams_disconnected_total") and ("slow" in line or "not_reading" in line)
    )


def test_a_client_that_stops_reading_is_disconnected_and_others_go_on(system: System, api_url: str) -> None:
    flooded, quiet = system.project(), system.project()
    viewer = _user(system, f"viewer-{quiet}", quiet, "viewer")
    before = _disconnected(api_url)
    slow = _open_stream(api_url, ADMIN, receive_buffer=4096)
    bystander = _open_stream(api_url, viewer, receive_buffer=4096)  # reads nothing either, but sees no flood
    _flood(system, flooded, 3000)  # 12 MB: more than the socket buffers and the stream's backlog of changes

    wait_until(lambda: _disconnected(api_url) > before, 30, "the server to disconnect the client that reads nothing")
    received = 0
    slow.settimeout(10)
    while chunk := slow.recv(65536):  # what was sent before the server gave up, then the end of the connection
        received += chunk.count(b"event: job")
    assert 0 < received < 3000
    slow.close()

    watcher = Subscriber(api_url, ADMIN, {"project": quiet})
    watcher.start()
    assert watcher.connected.wait(10)
    job = system.submit(quiet, params={"steps": 1, "seconds": 0})
    system.wait_status(job.id, "FINISHED")
    wait_until(lambda: any(m["status"] == "FINISHED" for _, m in watcher.of(job.id)), 5, "the new stream's events")
    watcher.stop.set()
    seen = b""
    while b'"status":"FINISHED"' not in seen:  # the bystander's stream was left alone and still delivers
        chunk = bystander.recv(65536)
        assert chunk, "the bystander's stream was closed"
        seen += chunk
    bystander.close()
