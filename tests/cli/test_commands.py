"""The `jobctl` command line: the service commands, settings errors, and what `jobctl up` prepares (Redis, the
generated secrets). The supervisor behind `jobctl up` is tests/cli/test_supervisor.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from jobctl import cli
from jobctl.cli import dev_secrets, redis_server
from jobctl.cli.settings import mask_url
from jobctl.scheduler.settings import Settings, get_settings

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


def test_a_service_command_is_the_same_without_the_client_commands() -> None:
    """`main` runs a service's command on the services' own app (`cli.services`): the same options and help as
    in the whole command, and none of the client commands' modules loaded."""
    from jobctl.cli.services import SERVICE_COMMANDS as FAST
    from jobctl.cli.services import new_app

    assert set(SERVICE_COMMANDS) | {"bench"} == FAST
    for command in sorted(FAST):
        alone, whole = (runner.invoke(app, [command, "--help"]) for app in (new_app(), cli.app))
        assert alone.exit_code == whole.exit_code == 0 and alone.output == whole.output, command
    code = (
        "import sys\n"
        "sys.argv = ['jobctl', 'worker', '--help']\n"
        "from jobctl.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('jobctl.client', 'jobctl.cli.jobs', 'jobctl.api'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "--concurrency" in out.stdout and out.stdout.strip().splitlines()[-1] == "[]"


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


@pytest.mark.parametrize(
    ("token", "password", "refused"),
    [
        ("t", "p" * 16, "JOBCTL_ADMIN_TOKEN must have at least 32 characters"),
        ("t" * 32, "short-password", "JOBCTL_FLOWER_PASSWORD must have at least 16 characters"),
        ("t" * 32, "p" * 16, None),
    ],
)
def test_production_refuses_short_secrets(token: str, password: str, refused: str | None) -> None:
    settings = Settings(
        env="production",
        database_url="postgresql+psycopg://jobctl@db.example/jobctl",
        admin_token=token,
        flower_user="admin",
        flower_password=password,
    )
    if refused is None:
        settings.check_safe()
        return
    with pytest.raises(ValueError, match=refused):
        settings.check_safe()


def test_unreachable_database_is_a_message_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", "postgresql+psycopg://nobody:secret@127.0.0.1:1/nothing")
    result = runner.invoke(cli.app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "cannot migrate the database at postgresql+psycopg://nobody:***@127.0.0.1:1/nothing" in result.stderr
    assert "secret" not in result.output


def test_up_without_redis_server_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setattr(redis_server.shutil, "which", lambda _name: None)
    result = runner.invoke(cli.app, ["up"])
    assert result.exit_code == 1
    assert "apt-get install redis-server" in result.stderr
    assert "JOBCTL_REDIS_URL" in result.stderr


def test_up_does_not_start_redis_for_a_remote_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBCTL_REDIS_URL", "redis://redis.invalid:6379/0")
    monkeypatch.setattr(redis_server, "redis_up", lambda _url: False)
    result = runner.invoke(cli.app, ["up"])
    assert result.exit_code == 1
    assert "Redis does not answer at redis://redis.invalid:6379/0" in result.stderr


def test_up_refuses_a_port_something_already_listens_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another server on the API's port would answer the readiness check in place of ours: `jobctl up` says so
    and starts nothing (not even Redis)."""
    monkeypatch.setattr(sys.modules["jobctl.cli.up"], "ensure_redis", lambda *_: pytest.fail("started something"))
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        monkeypatch.setenv("JOBCTL_API_PORT", str(port))
        result = runner.invoke(cli.app, ["up"])
    assert result.exit_code == 1
    assert f"port {port} (API) already in use" in result.stderr
    assert "JOBCTL_API_PORT" in result.stderr


def test_mask_url_hides_passwords() -> None:
    assert mask_url("redis://:pw@127.0.0.1:6379/0") == "redis://:***@127.0.0.1:6379/0"
    assert mask_url("postgresql+psycopg://u:pw@db/x") == "postgresql+psycopg://u:***@db/x"
    assert mask_url("sqlite:///./jobctl.db") == "sqlite:///./jobctl.db"


def test_up_generates_secrets_once_per_database_and_keeps_them(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    settings = get_settings()
    env, secrets = dev_secrets.child_environment(settings)
    assert secrets.admin_token and env["JOBCTL_ADMIN_TOKEN"] == secrets.admin_token
    assert (
        secrets.admin_token_note == "generated by this `jobctl up` for the new database, kept in var/dev-secrets.json"
    )
    assert "JOBCTL_ADMIN_TOKEN" not in secrets.admin_token_note
    assert admin_holds(settings.database_url, secrets.admin_token)  # created here: the API will not say otherwise
    assert env["JOBCTL_FLOWER_USER"] == secrets.flower_user
    assert env["JOBCTL_FLOWER_PASSWORD"] == secrets.flower_password
    assert oct(dev_secrets.DEV_SECRETS.stat().st_mode & 0o777) == "0o600"
    env2, secrets2 = dev_secrets.child_environment(settings)  # the next `jobctl up` reuses them
    assert secrets2.admin_token == secrets.admin_token
    assert (secrets2.flower_user, secrets2.flower_password) == (secrets.flower_user, secrets.flower_password)
    assert env2["JOBCTL_ADMIN_TOKEN"] == secrets.admin_token
    assert secrets2.admin_token_note.startswith("generated by an earlier `jobctl up`")


def test_up_with_a_kept_token_and_a_new_database_creates_its_admin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'jobctl.db'}"
    monkeypatch.setenv("JOBCTL_DATABASE_URL", url)
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    _, first = dev_secrets.child_environment(get_settings())
    (tmp_path / "jobctl.db").unlink()  # the database is new again; var/dev-secrets.json still has its token
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    _, again = dev_secrets.child_environment(get_settings())
    assert again.admin_token == first.admin_token and again.admin_token_note.startswith("generated by an earlier")
    assert first.admin_token and admin_holds(url, first.admin_token)


def admin_holds(url: str, token: str) -> bool:
    from jobctl.api.auth import hash_token
    from jobctl.scheduler.store import accounts
    from jobctl.scheduler.store.db import Database

    db = Database(url)
    try:
        with db.read() as session:
            user = accounts.user_by_token_hash(session, hash_token(token))
            return user is not None and user.admin
    finally:
        db.dispose()


def test_up_does_not_invent_a_token_for_a_database_that_has_an_admin(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from jobctl.scheduler.store import accounts
    from jobctl.scheduler.store.db import Database

    url = f"sqlite:///{tmp_path / 'jobctl.db'}"
    monkeypatch.setenv("JOBCTL_DATABASE_URL", url)
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    db = Database(url)
    with db.write() as session:
        accounts.create_user(session, "admin", "0" * 64, admin=True)
    db.dispose()
    env, secrets = dev_secrets.child_environment(get_settings())
    assert secrets.admin_token is None
    assert "JOBCTL_ADMIN_TOKEN" not in env
    assert "already has an admin" in secrets.admin_token_note


def test_up_uses_the_configured_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    monkeypatch.setenv("JOBCTL_ADMIN_TOKEN", "my-token")
    monkeypatch.setenv("JOBCTL_FLOWER_USER", "me")
    monkeypatch.setenv("JOBCTL_FLOWER_PASSWORD", "my-password")
    env, secrets = dev_secrets.child_environment(get_settings())
    assert (secrets.admin_token, secrets.flower_user, secrets.flower_password) == ("my-token", "me", "my-password")
    assert env["JOBCTL_ADMIN_TOKEN"] == "my-token"
    assert secrets.admin_token_note == "from JOBCTL_ADMIN_TOKEN"


def test_up_says_when_the_configured_token_is_not_the_admins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    dev_secrets.child_environment(get_settings())  # the admin, with a generated token
    monkeypatch.setenv("JOBCTL_ADMIN_TOKEN", "set-later")
    get_settings.cache_clear()
    _, secrets = dev_secrets.child_environment(get_settings())
    assert secrets.admin_token == "set-later" and "not an admin's token in this database" in secrets.admin_token_note


@pytest.mark.parametrize("command", [["api"], ["scheduler"], ["worker"], ["flower"], ["up"], ["db", "upgrade"]])
def test_a_plugin_that_cannot_be_imported_stops_the_real_command_with_one_line(
    command: list[str], tmp_path: Path
) -> None:
    """`JOBCTL_PLUGINS=nosuchmodule jobctl api` (the installed `jobctl` script): one line on stderr, exit status 2,
    nothing started - also for a plugin that raises on import with a message of several lines."""
    jobctl = Path(sys.executable).with_name("jobctl")
    assert jobctl.exists(), "the jobctl script is installed next to the interpreter (pip install -e .)"
    (tmp_path / "broken_plugin.py").write_text("raise RuntimeError('no config\\nfor you')\n")
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    for plugins, says in [
        ("nosuchmodule", "jobctl: cannot import plugin 'nosuchmodule'"),
        ("broken_plugin", "jobctl: cannot import plugin 'broken_plugin'"),
    ]:
        env = {**base, "JOBCTL_PLUGINS": plugins, "JOBCTL_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
        done = subprocess.run(
            [str(jobctl), *command], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 2, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith(says), done.stderr
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert (
        "No module named 'nosuchmodule'"
        in subprocess.run(
            [str(jobctl), *command],
            env={**base, "JOBCTL_PLUGINS": "nosuchmodule"},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        ).stderr
    )
    assert not (tmp_path / "x.db").exists()  # nothing was started or created
