"""The servers of a several-hosts run: a PostgreSQL cluster and a Redis of the test's own, listening on the
bridge's address (`tests.chaos.hosts.netns`), so the hosts reach them over their links.

Both live under a run directory `/tmp/jobctl-chaos-<pid>-*` (the test process's pid): `sweep()` stops the servers of
runs whose test process is gone and removes their directories, so a crashed run leaves nothing running.
PostgreSQL refuses to run as root: its cluster is made and run as the `postgres` user (`runuser`).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis
import sqlalchemy as sa

from tests.chaos.hosts.netns import alive, run

RUN_PREFIX = "jobctl-chaos-"
PG_BINS = ("/usr/lib/postgresql/15/bin", "/usr/local/bin", "/usr/lib/postgresql/16/bin", "/usr/bin")

# PostgreSQL as docs/reliability.md ("Several hosts") recommends for workers on other hosts: an open transaction
# whose client went silent is ended, so a partitioned worker cannot hold a step's row lock for long.
IDLE_IN_TRANSACTION_S = 2


def pg_bin(name: str) -> str | None:
    """Where PostgreSQL's program `name` is, or None."""
    for folder in PG_BINS:
        if os.access(f"{folder}/{name}", os.X_OK):
            return f"{folder}/{name}"
    return None


def unavailable() -> str | None:
    """Why the servers cannot be started here, or None."""
    if shutil.which("redis-server") is None:
        return "`redis-server` is not installed"
    if pg_bin("initdb") is None or pg_bin("pg_ctl") is None:
        return "PostgreSQL's `initdb` and `pg_ctl` are not installed"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no `postgres` user to run PostgreSQL as"
    if shutil.which("runuser") is None:
        return "`runuser` is not installed"
    return None


def free_port(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def sweep() -> list[str]:
    """Stop the servers of runs whose test process is gone and remove their directories; what was removed."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{RUN_PREFIX}*"):
        owner = folder.name[len(RUN_PREFIX) :].split("-")[0]
        if not owner.isdigit() or alive(int(owner)):
            continue
        _stop_postgres(folder / "pg")
        _kill_pidfile(folder / "redis.pid")
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(str(folder))
    return removed


def _kill_pidfile(path: Path) -> None:
    with contextlib.suppress(OSError, ValueError, ProcessLookupError):
        os.kill(int(path.read_text().split()[0]), signal.SIGKILL)


def _stop_postgres(data: Path) -> None:
    """Stop the cluster in `data` at once, if it runs."""
    pid_file = data / "postmaster.pid"
    if not pid_file.exists():
        return
    pg_ctl = pg_bin("pg_ctl")
    if pg_ctl is not None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            timeout=60,
        )
    _kill_pidfile(pid_file)  # still there: whatever pg_ctl could not stop


class Servers:
    """PostgreSQL and Redis listening on `address` (and nowhere else), in a run directory of their own."""

    def __init__(self, address: str, subnet: str) -> None:
        self.address = address
        self.subnet = subnet
        self.dir = Path(tempfile.mkdtemp(prefix=f"{RUN_PREFIX}{os.getpid()}-"))
        os.chmod(self.dir, 0o755)  # the postgres user must reach its data directory inside
        self.pg_port = free_port(address)
        self.redis_port = free_port(address)
        self.redis_proc: subprocess.Popen[bytes] | None = None

    @property
    def pg_data(self) -> Path:
        return self.dir / "pg"

    def start(self) -> Servers:
        self._start_postgres()
        self._start_redis()
        return self

    def _start_postgres(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        assert initdb and pg_ctl
        self.pg_data.mkdir(mode=0o700)
        shutil.chown(self.pg_data, "postgres", "postgres")
        as_postgres = ["runuser", "-u", "postgres", "--"]
        run(*as_postgres, initdb, "-D", str(self.pg_data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        with open(self.pg_data / "pg_hba.conf", "a", encoding="utf-8") as hba:
            hba.write(f"host all all {self.subnet} trust\n")
        options = " ".join(
            [
                f"-c listen_addresses={self.address}",
                f"-p {self.pg_port}",
                f"-c unix_socket_directories={self.pg_data}",
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
                "-c max_connections=300",
                f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_S * 1000}",
            ]
        )
        log = self.pg_data / "server.log"
        run(*as_postgres, pg_ctl, "-D", str(self.pg_data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")

    def _start_redis(self) -> None:
        log = open(self.dir / "redis.log", "ab")  # noqa: SIM115 - the server's own, closed with this process
        self.redis_proc = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                self.address,
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        (self.dir / "redis.pid").write_text(str(self.redis_proc.pid))
        client = redis.Redis(host=self.address, port=self.redis_port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 20
        while True:
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            assert self.redis_proc.poll() is None, (self.dir / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not answer"
            time.sleep(0.05)
        client.close()

    # -- what the tests use ------------------------------------------------------------------------------------

    def database_url(self, name: str = "postgres", port: int | None = None) -> str:
        """The URL of database `name` (through `port` instead of the server's own: a relay)."""
        return f"postgresql+psycopg://postgres@{self.address}:{port or self.pg_port}/{name}"

    def redis_url(self, db: int = 0) -> str:
        return f"redis://{self.address}:{self.redis_port}/{db}"

    def create_database(self, name: str) -> str:
        """A new, empty database; its URL."""
        admin = sa.create_engine(self.database_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        admin.dispose()
        return self.database_url(name)

    def stop(self) -> None:
        if self.redis_proc is not None and self.redis_proc.poll() is None:
            self.redis_proc.kill()
            self.redis_proc.wait(timeout=10)
        _stop_postgres(self.pg_data)
        shutil.rmtree(self.dir, ignore_errors=True)
