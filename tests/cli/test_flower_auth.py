"""Flower never runs without basic auth, and never with credentials Flower would misread (issue 5, part 8).

`jobctl flower` refuses to start without JOBCTL_FLOWER_USER and JOBCTL_FLOWER_PASSWORD; `jobctl up` always hands
Flower a login (tests/cli/test_commands.py); the live 401 is tests/integration/test_flower.py. Flower splits its
`--basic-auth` value at commas into several accepted credentials, so a password `secret,x` would let in anyone
who sends just `x`: the settings refuse commas in both, and a colon in the user name.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from jobctl import cli
from jobctl.cli import dev_secrets
from jobctl.scheduler.settings import Settings, get_settings

runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test reads its settings from its own environment, with no JOBCTL_* variable of the caller's."""
    for name in list(os.environ):
        if name.startswith(("JOBCTL_", "FLOWER_")):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.parametrize(
    ("user", "password"),
    [("admin", "secret,x"), ("admin", ","), ("a,b", "secret"), ("ad:min", "secret")],
)
def test_credentials_flower_would_misread_are_refused(user: str, password: str) -> None:
    with pytest.raises(ValidationError, match="must not contain"):
        Settings(flower_user=user, flower_password=password)


def test_ordinary_credentials_are_kept() -> None:
    settings = Settings(flower_user="ops@example.com", flower_password="p:w!d-_~ =x")
    assert (settings.flower_user, settings.flower_password) == ("ops@example.com", "p:w!d-_~ =x")


@pytest.mark.parametrize("command", [["flower"], ["up"]])
def test_a_comma_in_the_flower_password_stops_every_command(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("JOBCTL_FLOWER_USER", "admin")
    monkeypatch.setenv("JOBCTL_FLOWER_PASSWORD", "secret,x")
    result = runner.invoke(cli.app, command)
    assert result.exit_code == 2, result.output
    assert "JOBCTL_FLOWER_PASSWORD" in result.stderr and "comma" in result.stderr
    assert "secret,x" not in result.output


@pytest.mark.parametrize(
    "env",
    [{}, {"JOBCTL_FLOWER_USER": "admin"}, {"JOBCTL_FLOWER_PASSWORD": "secret"}, {"JOBCTL_FLOWER_PASSWORD": ""}],
)
def test_flower_does_not_start_without_a_login(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The refusal comes before Flower is imported or started: nothing listens, the command fails and says why."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    started: list[object] = []
    monkeypatch.setattr("jobctl.workers.celery_app.get_app", lambda *a, **k: started.append(a))
    result = runner.invoke(cli.app, ["flower", "--port", "1"])
    assert result.exit_code != 0
    assert "basic auth is required" in result.output
    assert started == []


def test_up_always_gives_flower_a_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no Flower credentials configured, `jobctl up` generates a password (and a user) for its Flower."""
    monkeypatch.setenv("JOBCTL_DATABASE_URL", f"sqlite:///{tmp_path / 'jobctl.db'}")
    assert runner.invoke(cli.app, ["db", "upgrade"]).exit_code == 0
    env, _ = dev_secrets.child_environment(get_settings())
    assert env["JOBCTL_FLOWER_USER"] and len(env["JOBCTL_FLOWER_PASSWORD"]) >= 12
    Settings(flower_user=env["JOBCTL_FLOWER_USER"], flower_password=env["JOBCTL_FLOWER_PASSWORD"])  # valid
