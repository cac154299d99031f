"""Service outages mid-run (issue 5, scenario 4): Redis restarted, PostgreSQL connections terminated.

Every job still finishes, exactly once per attempt, and the scheduler, the worker and the API reconnect on their
own. Redis: a private `redis-server` on a free port (never the shared one), killed with SIGKILL and started
again on the same port, empty, as a restart without persistence leaves it. PostgreSQL: every connection to the
system's database is terminated, several times, while jobs run and the API is being read.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from jobctl.scheduler import keys
from tests.chaos.harness import Chaos, scale, wait_all
from tests.conftest import PG_ADMIN_URL
from tests.integration.system import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

TOKEN = "test-admin-token"
LEASES = {"lease_s": 2.0, "queue_lease_s": 3.0}
STEP = {"steps": 2, "seconds": 0.2}
NO_PERSISTENCE = ["--save", "", "--appendonly", "no", "--daemonize", "no"]


class PrivateRedis:
    """A `redis-server` of this test's own, on a free port, without persistence; killed by its pid only."""

    def __init__(self, log_dir: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = log_dir / f"redis-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)

        def answers() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.log_path.read_text()
            try:
                return bool(client.ping())
            except redis.RedisError:
                return False

        wait_until(answers, 10, f"redis-server on port {self.port}", interval=0.05)
        client.close()

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.kill9()


def _api(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def _watch_stuck(live: Chaos, slack_s: float, stop: threading.Event) -> tuple[threading.Thread, list[int]]:
    """Sample, until `stop`, how many steps are RUNNING past their lease (plus `slack_s`)."""
    samples: list[int] = []

    def sample() -> None:
        while not stop.wait(0.5):
            with contextlib.suppress(Exception):  # the database may be the service that is down
                samples.append(live.overdue(slack_s))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    return thread, samples


def _sse_sees_a_new_job(api: httpx.Client, project: str) -> bool:
    """Open the event stream, submit a job through the API, and see its event come through Redis pub/sub."""
    try:
        with api.stream("GET", "/api/v1/events", params={"project": project}, timeout=10) as stream:
            lines = stream.iter_lines()
            if not next(lines).startswith(": connected"):
                return False
            job = api.post("/api/v1/jobs", json={"project": project, "type": "record", "params": STEP})
            job_id = job.json()["id"]
            for line in lines:
                if line.startswith("data:") and json.loads(line[5:])["id"] == job_id:
                    return True
    except httpx.HTTPError:
        pass
    return False


def _follow_events(api_url: str, project: str) -> tuple[threading.Thread, dict[str, str]]:
    """Read an event stream in a thread until it ends; `ended["how"]` is then "clean" or the client's error."""
    ended: dict[str, str] = {}

    def follow() -> None:
        try:
            with _api(api_url) as api, api.stream("GET", "/api/v1/events", params={"project": project}) as stream:
                for _ in stream.iter_lines():
                    pass
            ended["how"] = "clean"
        except httpx.HTTPError as exc:
            ended["how"] = repr(exc)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread, ended


def test_redis_restart_mid_run(
    private_redis: PrivateRedis, chaos: Callable[..., Chaos], report: Callable[..., None]
) -> None:  # private_redis first: it is torn down after the system that uses it
    jobs_n = scale(10, 100)
    restarts = scale(1, 3)
    live = chaos(redis_url=private_redis.url, **LEASES)
    live.start_scheduler()
    worker = live.spawn_worker("outage@test", concurrency=2)
    _, api_url = live.start_api()
    live.wait_up("outage@test")
    api = _api(api_url)
    project = live.project()
    ids = [live.submit(project, "record", STEP).id for _ in range(jobs_n)]
    follower, stream_ended = _follow_events(api_url, project)

    stop = threading.Event()
    sampler, stuck = _watch_stuck(live, slack_s=1.0, stop=stop)
    lost = jobs_n
    recover_s = -1.0
    reconnected: dict[str, bool] = {}
    outage_ops: list[tuple[str, int, float]] = []
    notes = ""
    try:
        for restart in range(restarts):
            floor = (restart + 1) * jobs_n // (restarts + 2)  # spread the restarts over the run
            wait_all(
                lambda f=floor: live.statuses(ids).get("FINISHED", 0) >= f,
                60,
                f"{floor} jobs finished before restart {restart + 1}",
                lambda: str(live.statuses(ids)),
            )
            private_redis.kill9()
            if restart == 0:  # an open event stream ends cleanly (its client reconnects and resyncs)
                follower.join(timeout=10)
                reconnected["stream_ended_cleanly"] = stream_ended.get("how") == "clean"
                # operations still work without Redis (the database is the truth), promptly; a PENDING job
                # stays PENDING meanwhile (no capacity is known without Redis, so nothing is dispatched)
                victim = next((i for i in reversed(ids) if live.job(i).status.value == "PENDING"), ids[-1])
                for action in ("pause", "resume"):
                    began = time.monotonic()
                    code = api.post(f"/api/v1/jobs/{victim}/{action}", timeout=30).status_code
                    outage_ops.append((action, code, round(time.monotonic() - began, 2)))
            else:
                time.sleep(0.5)  # the outage itself: what Redis was carrying is lost, every connection breaks
            private_redis.start()
        restarted_at = time.monotonic()
        wait_all(
            lambda: live.statuses(ids).get("FINISHED", 0) == jobs_n,
            scale(45, 120),
            "every job to finish after the Redis restart",
            lambda: f"{live.statuses(ids)}\n{live.logs()}",
        )
        recover_s = round(time.monotonic() - restarted_at, 2)
        lost = 0
        # Each service on the new Redis: the worker announces its capacity again, the scheduler dispatches
        # against it and the worker takes the messages; the API publishes to (and streams from) it.
        fresh = redis.Redis.from_url(private_redis.url)
        reconnected["worker_capacity"] = bool(fresh.exists(keys.worker(live.settings.queue, "outage@test")))
        fresh.close()
        reconnected["api_ready"] = api.get("/readyz").status_code == 200
        reconnected["api_events"] = _sse_sees_a_new_job(api, project)
        more = [
            api.post("/api/v1/jobs", json={"project": project, "type": "record", "params": STEP}).json()["id"]
            for _ in range(3)
        ]
        wait_all(
            lambda: live.statuses(more).get("FINISHED", 0) == len(more),
            30,
            "jobs submitted after the restart to finish",
            lambda: str(live.statuses(more)),
        )
        reconnected["new_jobs_run"] = True
    except AssertionError as exc:
        notes = str(exc)[:300]
    finally:
        stop.set()
        sampler.join()
        verdict = live.verdict()
        stuck_n = sum(1 for n in stuck if n)
        worker_alive = worker.popen.poll() is None
        passed = (
            lost == 0
            and stuck_n == 0
            and verdict.double_recorded == 0
            and verdict.double_executed == 0
            and all(reconnected.values())
            and len(reconnected) == 5
            and [c for _, c, _ in outage_ops] == [200, 200]
            and worker_alive
        )
        report(
            "Redis restarted mid-run",
            rounds=restarts,
            jobs=jobs_n,
            lost=lost,
            stuck=stuck_n,
            double_recorded=verdict.double_recorded,
            double_executed=verdict.double_executed,
            recover_s=recover_s,
            executions=verdict.executions,
            redispatched=_redispatched(live),
            reconnected=",".join(k for k, v in reconnected.items() if v),
            stream_ended=stream_ended.get("how", "not ended"),
            ops_during_outage=" ".join(f"{a}:{c}:{t}s" for a, c, t in outage_ops),
            passed=passed,
            notes=notes
            or "private redis-server killed with SIGKILL and restarted empty on the same port; recover s: last "
            "restart to every job FINISHED",
        )
        api.close()
        live.kill_all()
    assert not notes, notes
    assert lost == 0
    assert stream_ended.get("how") == "clean", stream_ended
    assert [(a, c) for a, c, _ in outage_ops] == [("pause", 200), ("resume", 200)], outage_ops
    assert max(t for _, _, t in outage_ops) < 5.0, outage_ops
    assert set(reconnected) == {"stream_ended_cleanly", "worker_capacity", "api_ready", "api_events", "new_jobs_run"}
    assert all(reconnected.values()), reconnected
    assert stuck_n == 0, stuck
    assert (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0), verdict
    assert worker_alive, "the worker died"


def _redispatched(live: Chaos) -> int:
    """Step messages sent beyond one per step: re-sent after a lost message, or a lost attempt retried."""
    with live.svc.db.engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT coalesce(sum(dispatches), 0) - count(*) FROM steps")).scalar_one())


def _terminate(database_url: str) -> int:
    """Terminate every connection to the database of `database_url`; returns how many."""
    name = sa.make_url(database_url).database
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            return len(
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :db AND pid <> pg_backend_pid()"
                    ),
                    {"db": name},
                ).all()
            )
    finally:
        admin.dispose()


def test_postgres_connections_terminated_mid_run(
    chaos: Callable[..., Chaos], backend: str, report: Callable[..., None]
) -> None:
    if backend != "postgresql":
        pytest.skip("terminating server connections is a PostgreSQL fault; SQLite has no server")
    jobs_n = scale(10, 100)
    rounds = scale(2, 6)
    live = chaos(**LEASES)
    live.start_scheduler()
    live.spawn_worker("terminations@test", concurrency=2)
    _, api_url = live.start_api()
    live.wait_up("terminations@test")
    project = live.project()
    ids = [live.submit(project, "record", STEP).id for _ in range(jobs_n)]

    # Readers on the API all along: a request caught by a termination may fail cleanly (503), never with a 500.
    codes: dict[int, int] = {}
    stop = threading.Event()

    def read_api() -> None:
        with _api(api_url) as api:
            while not stop.is_set():
                for path in ("/api/v1/jobs", f"/api/v1/jobs/{ids[0]}", f"/api/v1/jobs/{ids[-1]}/events"):
                    try:
                        code = api.get(path, params={"project": project} if path == "/api/v1/jobs" else None)
                        codes[code.status_code] = codes.get(code.status_code, 0) + 1
                    except httpx.HTTPError:
                        codes[0] = codes.get(0, 0) + 1

    readers = [threading.Thread(target=read_api, daemon=True) for _ in range(2)]
    for reader in readers:
        reader.start()
    sampler, stuck = _watch_stuck(live, slack_s=1.0, stop=stop)
    terminated = 0
    lost = jobs_n
    recover_s = -1.0
    notes = ""
    try:
        for round_ in range(rounds):
            floor = (round_ + 1) * jobs_n // (rounds + 2)
            wait_all(
                lambda f=floor: live.statuses(ids).get("FINISHED", 0) >= f,
                60,
                f"{floor} jobs finished before termination {round_ + 1}",
                lambda: str(live.statuses(ids)),
            )
            terminated += _terminate(live.settings.database_url)
        last = time.monotonic()
        wait_all(
            lambda: live.statuses(ids).get("FINISHED", 0) == jobs_n,
            scale(45, 120),
            "every job to finish after the terminations",
            lambda: f"{live.statuses(ids)}\n{live.logs()}",
        )
        recover_s = round(time.monotonic() - last, 2)
        lost = 0
    except AssertionError as exc:
        notes = str(exc)[:300]
    finally:
        stop.set()
        for reader in readers:
            reader.join()
        sampler.join()
        verdict = live.verdict()
        stuck_n = sum(1 for n in stuck if n)
        errors_5xx = sum(n for code, n in codes.items() if code >= 500 and code != 503)
        passed = lost == 0 and stuck_n == 0 and errors_5xx == 0 and not verdict.double_recorded
        report(
            "PostgreSQL connections terminated mid-run",
            rounds=rounds,
            jobs=jobs_n,
            lost=lost,
            stuck=stuck_n,
            double_recorded=verdict.double_recorded,
            double_executed=verdict.double_executed,
            recover_s=recover_s,
            connections_terminated=terminated,
            executions=verdict.executions,
            redispatched=_redispatched(live),
            api_requests=sum(codes.values()),
            api_503=codes.get(503, 0),
            api_5xx=errors_5xx,
            passed=passed and not verdict.double_executed,
            notes=notes
            or "pg_terminate_backend on every connection of the system's database while jobs run and two clients "
            "read the API; recover s: last termination to every job FINISHED",
        )
        live.kill_all()
    assert not notes, notes
    assert lost == 0
    assert errors_5xx == 0, codes
    assert codes.get(0, 0) == 0, codes
    assert stuck_n == 0, stuck
    assert (verdict.double_recorded, verdict.double_executed, verdict.double_dispatched) == (0, 0, 0), verdict
