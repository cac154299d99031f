"""A live jobctl for the benchmark's measurements at a tiny scale: SQLite, Redis, scheduler, a prefork worker of
2 processes and the API over HTTP, shared by the tests of a module."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobctl.bench import env
from jobctl.bench.procs import Procs
from jobctl.bench.sides import JobctlSide
from jobctl.redis_probe import redis_answers
from tests.conftest import missing


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def side(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JobctlSide]:
    if not redis_answers(env.REDIS_BASE):
        missing(f"Redis at {env.REDIS_BASE}")
    workdir = tmp_path_factory.mktemp("bench-http")
    with Procs(Path(workdir)) as procs:
        url, drop = env.fresh_database("sqlite", workdir, None)
        running = JobctlSide(procs, url, env.REDIS_BASE, 2)
        try:
            running.start_api(free_port())
            yield running
        finally:
            running.close()
            drop()
