"""The peers a user would pick instead of jobctl, each with 2 worker processes like every other side.

Durable, each on a PostgreSQL database of its own (created and dropped by the run):

- `DurableCelerySide`: Celery, Redis broker, the database result backend (`bench.peer_celery`);
- `ProcrastinateSide`: procrastinate, a PostgreSQL-native queue (`bench.peer_procrastinate`);

and one for context, not durable, on Redis only (database `DRAMATIQ_REDIS_DB`, flushed before and after):

- `DramatiqSide`: Dramatiq, Redis broker and the Results middleware on Redis, its default 8 threads per worker
  process (`bench.peer_dramatiq`).

Each runs rounds like the raw Celery side (`throughput.raw_round`): `jobs` chains of 5 no-op links sent one after
another from this process, then completion polled every 10 ms, one query per poll; chains per second.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable

import psycopg
from celery import chain

from jobctl.bench.env import empty_database
from jobctl.bench.procs import Procs, wait_for

LINKS = 5
POLL_S = 0.01
PEER_REDIS_DB = 12  # the Celery peer's broker; 13 and 14 are jobctl's and raw Celery's
DRAMATIQ_REDIS_DB = 11  # the Dramatiq peer's broker and results


def _libpq(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as a libpq connection string."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _poll(done: Callable[[], int], jobs: int, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while (finished := done()) < jobs:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} finished {finished} of {jobs} chains in {timeout:.0f} s")
        time.sleep(POLL_S)


class DurableCelerySide:
    """Celery with its results in PostgreSQL: a prefork worker of `concurrency` processes."""

    name = "Celery + PostgreSQL result backend"

    def __init__(self, procs: Procs, pg_admin_url: str, redis_base: str, concurrency: int) -> None:
        self.procs = procs
        self.tag = uuid.uuid4().hex[:8]
        url, self._drop = empty_database(pg_admin_url, "bench_celery")
        self.dsn = _libpq(url)
        self.how = (
            f'Redis broker, `result_backend="db+{url.split("://")[0]}://..."`, `result_extended=True`, prefork '
            f"worker `--concurrency={concurrency}`, `worker_prefetch_multiplier=1`, `--without-mingle "
            "--without-gossip`; completion read from `celery_taskmeta` (one query per 10 ms poll)"
        )
        env = dict(
            os.environ,
            BENCH_PEER_BROKER=f"{redis_base}/{PEER_REDIS_DB}",
            BENCH_PEER_BACKEND=f"db+{url}",
            BENCH_PEER_QUEUE=f"bench-peer-{self.tag}",
        )
        os.environ.update({k: env[k] for k in ("BENCH_PEER_BROKER", "BENCH_PEER_BACKEND", "BENCH_PEER_QUEUE")})
        from jobctl.bench import peer_celery

        peer_celery.app.conf.update(
            broker_url=env["BENCH_PEER_BROKER"],
            result_backend=env["BENCH_PEER_BACKEND"],
            task_default_queue=env["BENCH_PEER_QUEUE"],
        )
        self.app = peer_celery.app
        self.noop = peer_celery.noop
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "jobctl.bench.peer_celery",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            f"--queues={env['BENCH_PEER_QUEUE']}",
            f"--hostname=peer-{self.tag}@bench",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
        ]
        self.worker = procs.start(f"peer-celery-{self.tag}", argv, env)
        wait_for(self._answers, 60, "the Celery peer's worker to answer pings", interval=0.2)
        self.db = psycopg.connect(self.dsn, autocommit=True)

    def _answers(self) -> bool:
        if self.worker.poll() is not None:
            raise RuntimeError(f"the Celery peer's worker died:\n{self.procs.tail(f'peer-celery-{self.tag}')}")
        return bool(self.app.control.ping(destination=[f"peer-{self.tag}@bench"], timeout=0.5))

    def round(self, jobs: int, timeout: float = 600) -> float:
        """Send `jobs` 5-task chains; wait until each chain's last result is stored. Chains per second."""
        began = time.perf_counter()
        last = [chain(*(self.noop.si() for _ in range(LINKS))).apply_async().id for _ in range(jobs)]

        def done() -> int:
            row = self.db.execute(
                "SELECT count(*) FROM celery_taskmeta WHERE task_id = ANY(%s) AND status = 'SUCCESS'", (last,)
            ).fetchone()
            return int(row[0]) if row else 0

        _poll(done, jobs, timeout, self.name)
        return jobs / (time.perf_counter() - began)

    def close(self) -> None:
        self.procs.stop(self.worker)
        self.db.close()
        self.app.pool.force_close_all()
        self._drop()


class ProcrastinateSide:
    """procrastinate: `concurrency` worker processes, each running up to `PER_PROCESS` jobs at once."""

    name = "procrastinate"
    PER_PROCESS = 4

    def __init__(self, procs: Procs, pg_admin_url: str, concurrency: int) -> None:
        self.procs = procs
        self.tag = uuid.uuid4().hex[:8]
        url, self._drop = empty_database(pg_admin_url, "bench_procrastinate")
        self.dsn = _libpq(url)
        env = dict(os.environ, BENCH_PROCRASTINATE_DSN=self.dsn)
        os.environ["BENCH_PROCRASTINATE_DSN"] = self.dsn
        from jobctl.bench import peer_procrastinate

        self.module = peer_procrastinate
        self.app = peer_procrastinate.App(connector=peer_procrastinate.PsycopgConnector(conninfo=self.dsn))
        self.link = self.app.task(name="link")(peer_procrastinate.link.func)
        with self.app.open():
            self.app.schema_manager.apply_schema()
        self.how = (
            f"{concurrency} processes `procrastinate --log-level=warning --app=... worker "
            f"--concurrency {self.PER_PROCESS}` (async tasks; LISTEN/NOTIFY on, the default), each link an async "
            "task that defers the next; jobs deferred with `defer` on an open app; completion read from "
            "`procrastinate_jobs` (one query per 10 ms poll)"
        )
        self.workers = [
            procs.start(
                f"peer-procrastinate-{self.tag}-{i}",
                [
                    sys.executable,
                    "-m",
                    "procrastinate",
                    "--app=jobctl.bench.peer_procrastinate.app",
                    "--log-level=warning",
                    "worker",
                    "--concurrency",
                    str(self.PER_PROCESS),
                ],
                env,
            )
            for i in range(concurrency)
        ]
        self.db = psycopg.connect(self.dsn, autocommit=True)
        self.app.open()
        self.round(1, timeout=60)  # the workers are up once a chain goes through

    def round(self, jobs: int, timeout: float = 600) -> float:
        """Defer `jobs` chains of 5 links; wait until each chain's fifth link succeeded. Chains per second."""
        run = uuid.uuid4().hex
        began = time.perf_counter()
        for _ in range(jobs):
            self.link.defer(run=run, n=1)

        def done() -> int:
            for worker in self.workers:
                if worker.poll() is not None:
                    raise RuntimeError(
                        f"a procrastinate worker died:\n{self.procs.tail(f'peer-procrastinate-{self.tag}')}"
                    )
            row = self.db.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded' "
                "AND args->>'run' = %s AND (args->>'n')::int = %s",
                (run, LINKS),
            ).fetchone()
            return int(row[0]) if row else 0

        _poll(done, jobs, timeout, self.name)
        return jobs / (time.perf_counter() - began)

    def close(self) -> None:
        for worker in self.workers:
            self.procs.stop(worker)
        self.app.close()
        self.db.close()
        self._drop()


class DramatiqSide:
    """Dramatiq: one `dramatiq` command of `concurrency` worker processes, each of its default 8 threads; Redis
    broker and the Results middleware on Redis database `DRAMATIQ_REDIS_DB`, flushed before and after."""

    name = "Dramatiq (Redis, not durable)"
    THREADS = 8

    def __init__(self, procs: Procs, redis_base: str, concurrency: int) -> None:
        self.procs = procs
        self.tag = uuid.uuid4().hex[:8]
        url = f"{redis_base}/{DRAMATIQ_REDIS_DB}"
        os.environ["BENCH_DRAMATIQ_BROKER"] = url
        from jobctl.bench import peer_dramatiq

        if url != peer_dramatiq.BROKER_URL:
            raise RuntimeError(f"jobctl.bench.peer_dramatiq was imported on {peer_dramatiq.BROKER_URL}, not {url}")
        self.module = peer_dramatiq
        self.redis = peer_dramatiq.broker.client
        self.redis.flushdb()
        self.how = (
            f"`dramatiq jobctl.bench.peer_dramatiq --processes {concurrency} --threads {self.THREADS}` (8 threads is "
            "its default), `RedisBroker` and the `Results` middleware with a `RedisBackend` on one Redis database; "
            f"a job is a `dramatiq.pipeline` of {LINKS} messages of one no-op actor (`store_results=True`, "
            "`pipe_ignore=True`, `max_retries=0`), Dramatiq's documented way to chain actors: the worker enqueues "
            "each link when the one before it succeeded; pipelines sent with `run()` one after another; completion "
            "read as one `EXISTS` over the last links' result keys per 10 ms poll"
        )
        argv = [sys.executable, "-m", "dramatiq", "jobctl.bench.peer_dramatiq"]
        argv += ["--processes", str(concurrency), "--threads", str(self.THREADS)]
        self.worker = procs.start(f"peer-dramatiq-{self.tag}", argv, dict(os.environ, BENCH_DRAMATIQ_BROKER=url))
        # Every worker process's broker beats in Redis when it fetches; nothing was sent from here yet.
        wait_for(
            lambda: self._alive() and self.redis.zcard(peer_dramatiq.heartbeats_key()) >= concurrency,
            60,
            f"the {concurrency} Dramatiq worker processes to consume",
            interval=0.1,
        )

    def _alive(self) -> bool:
        if self.worker.poll() is not None:
            raise RuntimeError(f"the Dramatiq worker died:\n{self.procs.tail(f'peer-dramatiq-{self.tag}')}")
        return True

    def round(self, jobs: int, timeout: float = 600) -> float:
        """Run `jobs` pipelines of 5 links; wait until each one's last link stored its result. Chains per second."""
        self._alive()
        began = time.perf_counter()
        pipes = [self.module.chain().run() for _ in range(jobs)]
        keys = [self.module.result_key(pipe) for pipe in pipes]

        def done() -> int:
            self._alive()
            return int(self.redis.exists(*keys)) if keys else 0

        _poll(done, jobs, timeout, self.name)
        elapsed = time.perf_counter() - began
        for pipe in pipes:
            pipe.messages[-1].get_result()  # a stored failure raises
        return jobs / elapsed

    def close(self) -> None:
        self.procs.stop(self.worker)
        self.redis.flushdb()
        self.module.broker.close()
        self.module.backend.client.connection_pool.disconnect()
