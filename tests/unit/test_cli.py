"""The `jobctl` command line: service commands, settings errors, and the process supervisor behind `jobctl up`."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from jobctl.api import cli
from jobctl.scheduler.settings import get_settings

runner = CliRunner()
SERVICE_COMMANDS = ["up", "api", "scheduler", "worker", "flower", "db"]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Every test reads the settings from its own environment, in its own working directory."""
    for name in list(os.environ):
        if name.startswith("JOBCTL_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_help_lists_every_service_command() -> None:
    result = runner.invoke(cli.app, ["--help"])
    assert result.exit_code == 0, result.output
    for name in SERVICE_COMMANDS:
        assert name in result.output
    result = runner.invoke(cli.app, ["db", "--help"])
    assert result.exit_code == 0
    assert "upgrade" in result.output


def test_db_upgrade_creates_the_tables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'jobctl.db'}"
    monkeypatch.setenv("JOBCTL_DATABASE_URL", url)
    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = sa.create_engine(url)
    try:
        tables = set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"projects", "users", "jobs", "steps", "events", "alembic_version"} <= tables
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0  # again: nothing to do, still fine


@pytest.mark.parametrize("command", [["db", "upgrade"], ["scheduler"], ["worker"], ["api"], ["up"]])
def test_invalid_setting_exits_2_with_one_readable_line(monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    monkeypatch.setenv("JOBCTL_PROJECT_MAX_RUNNING", "0")
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "jobctl: invalid settings: JOBCTL_PROJECT_MAX_RUNNING: Input should be greater than or equal to 1"
    ]


def test_unsafe_production_settings_exit_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_ENV", "production")
    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 2
    assert "unsafe settings" in result.stderr
    assert "JOBCTL_DATABASE_URL must point at PostgreSQL" in result.stderr


def test_unreachable_database_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing")
    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot migrate the database at postgresql+psycopg://nobody:***@127.0.0.1:1/nothing" in result.stderr
    assert "secret" not in result.output


def test_up_without_redis_server_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(cli.shutil, "which", lambda _name: None)
    result = runner.invoke(cli.app, ["up"])
    assert result.exit_code == 1
    assert "apt-get install redis-server" in result.stderr
    assert "JOBCTL_REDIS_URL" in result.stderr


def test_up_does_not_start_redis_for_a_remote_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_REDIS_URL", "redis://redis.invalid:6379/0")
    monkeypatch.setattr(cli, "redis_answers", lambda _url: False)
    result = runner.invoke(cli.app, ["up"])
    assert result.exit_code == 1
    assert "Redis does not answer at redis://redis.invalid:6379/0" in result.stderr


def test_mask_url_hides_passwords() -> None:
    assert cli.mask_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert cli.mask_url("postgresql+psycopg://u:pw@db/x") == "postgresql+psycopg://u:***@db/x"
    assert cli.mask_url("sqlite:///./jobctl.db") == "sqlite:///./jobctl.db"


def test_up_generates_secrets_once_per_database_and_keeps_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    settings = get_settings()
    env, secrets = cli.child_environment(settings)
    assert secrets.admin_token and env["JOBCTL_ADMIN_TOKEN"] == secrets.admin_token
    assert env["JOBCTL_FLOWER_USER"] == secrets.flower_user
    assert env["JOBCTL_FLOWER_PASSWORD"] == secrets.flower_password
    assert oct(cli.DEV_SECRETS.stat().st_mode & 0o777) == "0o600"
    env2, secrets2 = cli.child_environment(settings)  # the next `jobctl up` reuses them
    assert secrets2.admin_token == secrets.admin_token
    assert (secrets2.flower_user, secrets2.flower_password) == (secrets.flower_user, secrets.flower_password)
    assert env2["JOBCTL_ADMIN_TOKEN"] == secrets.admin_token


def test_up_does_not_invent_a_token_for_a_database_that_has_an_admin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from jobctl.scheduler import store
    from jobctl.scheduler.db import Database

    url = f"sqlite:///{tmp_path / 'jobctl.db'}"
    monkeypatch.setenv("JOBCTL_DATABASE_URL", url)
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    db = Database(url)
    with db.write() as session:
        store.create_user(session, "admin", "0" * 64, admin=True)
    db.dispose()
    env, secrets = cli.child_environment(get_settings())
    assert secrets.admin_token is None
    assert "JOBCTL_ADMIN_TOKEN" not in env
    assert "already has an admin" in secrets.admin_token_note


def test_up_uses_the_configured_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    monkeypatch.setenv("JOBCTL_ADMIN_TOKEN", "my-token")
    monkeypatch.setenv("JOBCTL_FLOWER_USER", "me")
    monkeypatch.setenv("JOBCTL_FLOWER_PASSWORD", "my-password")
    env, secrets = cli.child_environment(get_settings())
    assert (secrets.admin_token, secrets.flower_user, secrets.flower_password) == ("my-token", "me", "my-password")
    assert env["JOBCTL_ADMIN_TOKEN"] == "my-token"


# ------------------------------------------------------------------------------------------------ supervisor


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


SLEEPER = python("import time\nprint('ready', flush=True)\nwhile True: time.sleep(1)")
STUBBORN = python(
    "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
    "while True: time.sleep(1)"
)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed but not yet reaped by its new parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return not sys.platform.startswith("linux")


def make_supervisor(grace_s: float = 5.0) -> tuple[cli.Supervisor, io.StringIO]:
    out = io.StringIO()
    return cli.Supervisor(Console(file=out, width=200, color_system=None), grace_s=grace_s), out


def test_supervisor_stops_every_child_on_request() -> None:
    supervisor, out = make_supervisor()
    children = [supervisor.start(name, SLEEPER, os.environ) for name in ("api", "worker")]
    children.append(supervisor.start("redis", SLEEPER, os.environ, service=True))
    threading.Timer(0.5, supervisor.request_stop).start()
    started = time.monotonic()
    assert supervisor.run() == 0
    supervisor.stop()
    assert time.monotonic() - started < 5
    assert all(child.process.returncode is not None for child in children)
    assert not any(alive(child.process.pid) for child in children)
    assert "api       | ready" in out.getvalue()
    assert "redis     | ready" in out.getvalue()


def test_supervisor_stops_everything_when_a_child_dies() -> None:
    supervisor, out = make_supervisor()
    sleeper = supervisor.start("api", SLEEPER, os.environ)
    supervisor.start("worker", python("import time, sys\ntime.sleep(0.3)\nsys.exit(3)"), os.environ)
    assert supervisor.run() == 1
    supervisor.stop()
    assert sleeper.process.returncode is not None
    assert "worker exited with status 3 unexpectedly; stopping" in out.getvalue()


def test_supervisor_kills_a_child_that_ignores_sigterm_and_its_own_children() -> None:
    supervisor, out = make_supervisor(grace_s=0.5)
    grandchild_pid = Path("grandchild.pid")
    spawner = python(
        "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\nprint('ready', flush=True)\n"
        "while True: time.sleep(1)"
    )
    child = supervisor.start("worker", spawner, os.environ)
    pid = wait_for_pid(grandchild_pid)
    supervisor.request_stop()
    assert supervisor.run() == 0
    supervisor.stop()
    assert child.process.returncode == -signal.SIGKILL
    assert "worker did not stop in time; killing it" in out.getvalue()
    assert wait_until_dead(pid)


def test_supervisor_kills_grandchildren_that_left_the_process_group() -> None:
    supervisor, _ = make_supervisor(grace_s=0.3)
    grandchild_pid = Path("grandchild.pid")
    spawner = python(
        "import signal, subprocess, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], start_new_session=True)\n"
        f"open({str(grandchild_pid)!r}, 'w').write(str(p.pid))\n"
        "while True: time.sleep(1)"
    )
    supervisor.start("worker", spawner, os.environ)
    pid = wait_for_pid(grandchild_pid)
    supervisor.request_stop()
    supervisor.run()
    supervisor.stop()
    assert wait_until_dead(pid)


ORPHANING_UP = """
import io, sys
from pathlib import Path
from rich.console import Console
from jobctl.api import cli

supervisor = cli.Supervisor(Console(file=io.StringIO()), grace_s=0.5, orphans_are_ours=cli.become_subreaper())
code = "import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], " \\
       "start_new_session=True); open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(0.5)"
supervisor.start("worker", [sys.executable, "-c", code, sys.argv[1]], {})
status = supervisor.run()
supervisor.stop()
sys.exit(10 + status)
"""


def test_up_kills_what_a_dead_child_left_behind(tmp_path: Path) -> None:
    """A worker killed outright orphans its steps' subprocesses: `up` adopts them (subreaper) and kills them."""
    if not sys.platform.startswith("linux"):
        pytest.skip("subreapers are a Linux feature")
    import subprocess

    grandchild_pid = tmp_path / "orphan.pid"
    result = subprocess.run(
        [sys.executable, "-c", ORPHANING_UP, str(grandchild_pid)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],  # the repository, so `api` imports even without an install
    )
    assert result.returncode == 11, result.stderr  # run() saw the child die: 1
    assert wait_until_dead(int(grandchild_pid.read_text()))


def wait_for_pid(path: Path) -> int:
    deadline = time.monotonic() + 10
    while not (path.exists() and path.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(path.read_text())


def wait_until_dead(pid: int) -> bool:
    """Whether `pid` is gone within 5 s (a killed orphan of ours may take a moment to be reaped by init)."""
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def test_supervisor_announces_once_when_ready() -> None:
    supervisor, _ = make_supervisor()
    supervisor.start("api", SLEEPER, os.environ)
    calls: list[int] = []

    def on_ready() -> None:
        calls.append(1)
        threading.Timer(0.6, supervisor.request_stop).start()

    assert supervisor.run(ready=lambda: True, on_ready=on_ready) == 0
    supervisor.stop()
    assert calls == [1]


def test_sigint_requests_a_stop() -> None:
    supervisor, out = make_supervisor()
    child = supervisor.start("scheduler", STUBBORN, os.environ)
    with supervisor.handling_signals():
        threading.Timer(0.3, os.kill, args=(os.getpid(), signal.SIGINT)).start()
        assert supervisor.run() == 0
        supervisor.grace_s = 0.3
        supervisor.stop()
    assert child.process.returncode is not None
    assert "got SIGINT, stopping everything" in out.getvalue()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
