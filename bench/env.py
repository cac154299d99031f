"""What the benchmark needs around it: the machine's description, Redis, PostgreSQL and fresh databases.

Redis and PostgreSQL are used where they already answer; otherwise a private one is started (Redis on the
default port, PostgreSQL in a temporary cluster) as a subprocess of the run and stopped with it. Every
jobctl database is fresh: a SQLite file in the run's directory, or a PostgreSQL database created and dropped.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from jobctl.bench.procs import Procs, wait_for
from jobctl.redis_probe import redis_answers
from jobctl.scheduler.migrate import upgrade

PG_ADMIN_URL = os.environ.get("JOBCTL_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_BASE = os.environ.get("JOBCTL_BENCH_REDIS", "redis://127.0.0.1:6379")
JOBCTL_REDIS_DB = 13  # the jobctl side's Redis database; 14 is the raw side's
RAW_REDIS_DB = 14


@dataclass(frozen=True)
class Machine:
    cpus: int
    model: str
    ram_gib: float
    python: str

    def describe(self) -> str:
        return f"{self.cpus} CPUs ({self.model}), {self.ram_gib:.1f} GiB RAM, Python {self.python}"


def machine() -> Machine:
    """This machine: CPU count and model, total RAM, Python version."""
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram = 0.0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = int(line.split()[1]) / 1024 / 1024
    return Machine(os.cpu_count() or 1, model, ram, platform.python_version())


def ensure_redis(procs: Procs) -> str:
    """The Redis base URL (no database number), starting a private redis-server if none answers."""
    if redis_answers(REDIS_BASE):
        return REDIS_BASE
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError(f"no Redis answers at {REDIS_BASE} and redis-server is not installed")
    port = int(REDIS_BASE.rsplit(":", 1)[1].split("/")[0])
    procs.start("redis", [server, "--port", str(port), "--save", "", "--appendonly", "no"])
    wait_for(lambda: redis_answers(REDIS_BASE), 15, "redis-server to answer")
    return REDIS_BASE


def _pg_answers(url: str) -> bool:
    engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
        return True
    except sa.exc.OperationalError:
        return False
    finally:
        engine.dispose()


def ensure_postgres(procs: Procs, workdir: Path) -> str:
    """An admin URL of a PostgreSQL server: JOBCTL_BENCH_PG if it answers, else a temporary cluster."""
    if _pg_answers(PG_ADMIN_URL):
        return PG_ADMIN_URL
    initdb, postgres = shutil.which("initdb"), shutil.which("postgres")
    if initdb is None or postgres is None:
        raise RuntimeError(f"no PostgreSQL answers at {PG_ADMIN_URL} and initdb/postgres are not installed")
    data = workdir / "pgdata"
    import subprocess

    subprocess.run([initdb, "-D", str(data), "-U", "postgres", "-A", "trust"], check=True, capture_output=True)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    procs.start("postgres", [postgres, "-D", str(data), "-p", str(port), "-k", str(workdir), "-h", "127.0.0.1"])
    url = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    wait_for(lambda: _pg_answers(url), 30, "the temporary PostgreSQL to answer", interval=0.2)
    return url


def fresh_database(kind: str, workdir: Path, pg_admin: str | None) -> tuple[str, Callable[[], None]]:
    """A new, migrated jobctl database of `kind` (`sqlite` or `postgresql`) and the function that drops it."""
    if kind == "sqlite":
        path = workdir / f"jobctl-{uuid.uuid4().hex[:8]}.db"
        url = f"sqlite:///{path}"
        upgrade(url)

        def remove() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)

        return url, remove
    assert pg_admin is not None
    url, drop = empty_database(pg_admin, "jobctl_bench")
    upgrade(url)
    return url, drop


def empty_database(pg_admin: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """A new, empty PostgreSQL database named `<prefix>_<random>` (its SQLAlchemy URL) and the function that
    drops it (with every connection still open to it)."""
    admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = pg_admin.rsplit("/", 1)[0] + f"/{name}"

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop
