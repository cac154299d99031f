"""Shared fixtures: real Redis, real SQLite and PostgreSQL databases, settings and services.

A test that needs a missing service is skipped locally and fails under CI=true (README, "Running tests").
Session-scoped fixtures are parametrised by backend, so every test that uses `database_url` runs once on
SQLite and once on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from jobctl.scheduler.migrate import upgrade
from jobctl.scheduler.settings import Settings

pytest_plugins = [
    "tests.secrets_check",  # the session fails if any secret the run used shows up in a log
    "tests.live",  # the shared live system: registered once, so there is one per backend
]

CI = os.environ.get("CI") == "true"
PG_ADMIN_URL = os.environ.get("JOBCTL_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("JOBCTL_TEST_REDIS", "redis://127.0.0.1:6379")
REDIS_DB = {"sqlite": 11, "postgresql": 12}
SESSION = uuid.uuid4().hex[:8]


#: Live tests whose subject is not the database run on one backend in `make test`: the other would add minutes
#: and no coverage, since the API and store tests below them run on both. The chaos scenarios' quick scale runs
#: on PostgreSQL, the production database; `make chaos` (JOBCTL_CHAOS_FULL=1) runs them at full scale on both.
ONE_BACKEND = {
    "tests/e2e/": "sqlite",  # the monitor in a browser
    "tests/integration/test_flower.py": "sqlite",  # what Flower shows comes from the broker
    "tests/cli/test_client_commands_live.py": "sqlite",  # the command line over HTTP
    "tests/integration/test_client.py": "sqlite",  # the Python client over HTTP
    "tests/integration/test_logs.py": "postgresql",  # the services' log lines
    "tests/integration/test_diagnostics.py": "postgresql",  # its database URL holds a password
    **({} if os.environ.get("JOBCTL_CHAOS_FULL") == "1" else {"tests/chaos/": "postgresql"}),
}


def _backend(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    backend = callspec.params.get("backend") if callspec is not None else None
    return None if backend is None else str(backend)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep a live test of `ONE_BACKEND` on its one backend (the rest are deselected, and counted as such), and
    under pytest-xdist (`make test` runs `-n 2 --dist loadgroup`) keep a backend's tests on one worker: its
    session fixtures - the database, the shared live system, the browser's system - start once, and the tests
    of one backend run one at a time, as they do without xdist. Tests without a backend go anywhere."""
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        backend = _backend(item)
        path = item.nodeid.split("::", 1)[0]
        only = next((b for prefix, b in ONE_BACKEND.items() if path.startswith(prefix)), None)
        if backend is not None and only is not None and backend != only and not config.option.keyword:
            dropped.append(item)
            continue
        if backend is not None:
            item.add_marker(pytest.mark.xdist_group(backend))
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def missing(what: str) -> None:
    """Skip (locally) or fail (in CI) a test whose service is missing."""
    if CI:
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not available")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def redis_url(backend: str) -> str:
    url = f"{REDIS_BASE}/{REDIS_DB[backend]}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        missing(f"Redis at {REDIS_BASE}")
    client.close()  # never flushed: other sessions may be using it; every key we use is ours by queue or id
    return url


@pytest.fixture(scope="session")
def database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A fresh, migrated database for the session."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'jobctl.db'}"
        upgrade(url)
        yield url
        return
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jobctl_test_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError:
        missing(f"PostgreSQL at {PG_ADMIN_URL}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.dispose()


@pytest.fixture(scope="session")
def file_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, file_root: Path, backend: str) -> Settings:
    """Settings for this backend's session; `.env_vars()` gives them to subprocesses."""
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        file_root=file_root,
        admin_token="test-admin-token",
        queue=f"jobctl-test-{backend}-{SESSION}",  # unique: concurrent sessions never take each other's work
        lease_s=3.0,
        queue_lease_s=10.0,
        stop_grace_s=0.5,
        scheduler_tick_s=0.2,
        target_check_s=0.5,
        worker_ttl_s=3.0,
        flower_user="flower",
        flower_password="flower-test-password",
        auth_failure_limit=1_000_000,  # tests of refused tokens share one client address; test_rate_limit sets its own
    )


def env_for(settings: Settings) -> dict[str, str]:
    """The environment a subprocess needs to see `settings`."""
    env = dict(os.environ)
    for key, value in settings.model_dump().items():
        if value is not None:
            env[f"JOBCTL_{key.upper()}"] = str(value)
    return env


def fresh_database(
    backend: str, factory: pytest.TempPathFactory, revision: str = "head"
) -> tuple[str, Callable[[], None]]:
    """A new database of this backend, migrated to `revision`, and the function that drops it."""
    if backend == "sqlite":
        url = f"sqlite:///{factory.mktemp('db') / 'jobctl.db'}"
        upgrade(url, revision)
        return url, lambda: None
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"jobctl_test_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url, revision)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()

    return url, drop
