"""`jobctl up` (docs/contract.md §5.1): the whole system in the foreground on a developer's machine. Redis
(started if none answers), the migrations, then `api`, `scheduler`, `worker` and `flower`, each a child process
(`python -m jobctl.cli <service>`) of one `Supervisor`; a banner with the addresses and credentials once they
answer. One Ctrl-C or SIGTERM stops them all, and when one dies on its own the others are stopped too."""

from __future__ import annotations

import socket
import sys
import urllib.error
import urllib.request
from typing import Annotated

import typer
from rich.text import Text

from jobctl.cli import dev_secrets
from jobctl.cli.output import console, fail
from jobctl.cli.processes import migrate_database
from jobctl.cli.redis_server import ensure_redis
from jobctl.cli.settings import load_settings
from jobctl.cli.supervisor import Supervisor, become_subreaper, console_lock
from jobctl.scheduler.settings import Settings


def up(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Steps the worker runs at once")] = None,
) -> None:
    """Run everything in the foreground: Redis (if needed), migrations, API, scheduler, worker and Flower.

    One Ctrl-C stops it all. Without JOBCTL_ADMIN_TOKEN or the Flower credentials, generates them, keeps
    them in var/dev-secrets.json for the next run and prints them.
    """
    settings = load_settings()
    if taken := ports_in_use(settings):
        fix = "stop it, or set JOBCTL_API_PORT or JOBCTL_FLOWER_PORT"
        fail(f"{', '.join(taken)} already in use (another `jobctl up`?); {fix}")
    supervisor = Supervisor(console, orphans_are_ours=become_subreaper())
    with supervisor.handling_signals():
        try:
            ensure_redis(settings, supervisor)
            migrate_database(settings)
            settings.file_root.mkdir(parents=True, exist_ok=True)
            env, secrets_ = dev_secrets.child_environment(settings)
            worker_args = ["--concurrency", str(concurrency)] if concurrency else []
            for name, args in [("api", []), ("scheduler", []), ("worker", worker_args), ("flower", [])]:
                if supervisor.stopping:
                    break
                supervisor.start(name, [sys.executable, "-m", "jobctl.cli", name, *args], env)
            code = supervisor.run(ready=lambda: services_ready(settings), on_ready=lambda: banner(settings, secrets_))
        finally:
            supervisor.stop()
    raise typer.Exit(code)


def ports_in_use(settings: Settings) -> list[str]:
    """The API's and Flower's ports that something already listens on, as `port N (what)`. Checked before
    anything starts: otherwise another server there could answer the readiness checks in place of ours."""
    wanted = [("API", display_host(settings.api_host).strip("[]"), settings.api_port)]
    wanted.append(("Flower", "127.0.0.1", settings.flower_port))
    taken = []
    for what, host, port in wanted:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                taken.append(f"port {port} ({what})")
        except OSError:
            continue
    return taken


def services_ready(settings: Settings) -> bool:
    """Whether the API answers /healthz and Flower accepts connections."""
    host = display_host(settings.api_host)
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.api_port}/healthz", timeout=0.5) as answer:
            if answer.status != 200:
                return False
        with socket.create_connection(("127.0.0.1", settings.flower_port), timeout=0.5):
            return True
    except (OSError, urllib.error.URLError):
        return False


def display_host(host: str) -> str:
    """The address a user on this machine types for a server listening on `host`."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def banner(settings: Settings, secrets_: dev_secrets.DevSecrets) -> None:
    """Print, once everything answers, where the services are and the credentials to use them."""
    api_url = f"http://{display_host(settings.api_host)}:{settings.api_port}"
    flower_login = f"user {secrets_.flower_user}, password {secrets_.flower_password}"
    lines = [
        ("jobctl is up", "bold green"),
        (f"  API      {api_url}/api/v1", ""),
        (f"  API docs {api_url}/docs", ""),
        (f"  Flower   http://127.0.0.1:{settings.flower_port}  ({flower_login})", ""),
    ]
    if secrets_.admin_token:
        lines += [
            (f"  Admin token ({secrets_.admin_token_note}):", ""),
            (f"    export TOKEN={secrets_.admin_token}", "bold"),
            (f'    curl -H "Authorization: Bearer $TOKEN" {api_url}/api/v1/me', ""),
        ]
    else:
        lines.append((f"  Admin token: {secrets_.admin_token_note} (or set JOBCTL_ADMIN_TOKEN)", "yellow"))
    lines.append(("Press Ctrl-C to stop everything.", "dim"))
    with console_lock:
        console.rule(style="green")
        for text, style in lines:
            console.print(Text(text, style=style), soft_wrap=True)
        console.rule(style="green")
