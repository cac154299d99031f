"""docker-compose.yml and the Dockerfile agree with the code: real `jobctl` commands, real settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from jobctl.cli import app
from jobctl.scheduler.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
JOBCTL_SERVICES = {"migrate", "api", "scheduler", "worker", "flower"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def jobctl_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: service for name, service in compose["services"].items() if service.get("image") == "jobctl:latest"}


def parse_jobctl(args: list[str]) -> Any:
    """The command that `jobctl *args` runs, its options parsed and checked (nothing is run).

    Asks the Typer app itself, so a renamed command or option fails here. Duck-typed: recent Typer versions
    ship their own copy of click.
    """
    command: Any = typer.main.get_command(app)
    rest = list(args)
    while hasattr(command, "list_commands"):  # a group: the next word names a subcommand
        assert rest, f"`jobctl {' '.join(args)}` names no command"
        name = rest.pop(0)
        sub = command.get_command(command.context_class(command), name)
        assert sub is not None, f"`jobctl {' '.join(args)}`: {name!r} is not a jobctl command"
        command = sub
    command.make_context(command.name or "", rest)  # raises on an unknown option or a bad value
    return command


def test_the_services_are_all_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"redis", "postgres"} | JOBCTL_SERVICES
    assert set(jobctl_services(compose)) == JOBCTL_SERVICES


def test_each_jobctl_service_runs_a_real_jobctl_command(compose: dict[str, Any]) -> None:
    for name, service in jobctl_services(compose).items():
        command = service["command"]
        assert isinstance(command, list), f"{name}: give the command as a list"
        parse_jobctl(command)


def test_parse_jobctl_refuses_what_jobctl_would_refuse() -> None:
    with pytest.raises(AssertionError):
        parse_jobctl(["nope"])
    with pytest.raises(Exception, match="No such option"):
        parse_jobctl(["worker", "--nope", "1"])
    with pytest.raises(Exception, match="integer"):
        parse_jobctl(["worker", "--concurrency", "many"])
    assert parse_jobctl(["db", "upgrade"]).name == "upgrade"


def test_every_jobctl_variable_is_a_setting(compose: dict[str, Any]) -> None:
    fields = {f"JOBCTL_{name.upper()}" for name in Settings.model_fields}
    seen = set()
    for name, service in jobctl_services(compose).items():
        environment = service["environment"]
        assert isinstance(environment, dict), f"{name}: give the environment as a mapping"
        for variable in environment:
            if variable.startswith("JOBCTL_"):
                assert variable in fields, f"{name} sets {variable}, which is not a setting"
                seen.add(variable)
    assert {"JOBCTL_DATABASE_URL", "JOBCTL_REDIS_URL", "JOBCTL_FLOWER_USER", "JOBCTL_FLOWER_PASSWORD"} <= seen


def test_services_start_in_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("redis", "postgres"):
        assert "healthcheck" in services[name]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "scheduler", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["postgres"]["condition"] == "service_healthy"
    assert services["flower"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert "container_name" not in services["worker"], "a fixed container name would forbid --scale"


def test_redis_keeps_every_message(compose: dict[str, Any]) -> None:
    command = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in command
    assert "--maxmemory-policy noeviction" in command


def test_dockerfile_entrypoint_is_jobctl() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    assert 'ENTRYPOINT ["jobctl"]' in lines
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    assert any("pip install ." in line for line in lines)


def test_docker_compose_validates_the_file() -> None:
    """Debian's docker-compose parses the file against the Compose schema (no engine needed for `config`)."""
    import os
    import shutil
    import subprocess

    if shutil.which("docker-compose") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("docker-compose is required under CI=true (.ci/run installs it)")
        pytest.skip("docker-compose is not installed (apt-get install docker-compose)")
    env = {**os.environ, "JOBCTL_ADMIN_TOKEN": "t", "JOBCTL_FLOWER_PASSWORD": "p"}
    result = subprocess.run(
        ["docker-compose", "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
