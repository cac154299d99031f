"""The `jobctl` command with the services' commands alone - `api`, `scheduler`, `worker`, `flower`, `bench`,
`up` and `db upgrade` - which `main` runs when one of them is asked for: a service starts without loading the
client commands (the HTTP client, its models, the API's schemas for its options), a third of the command's
import time. `cli.commands` adds the client commands to the same app."""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl.cli import processes
from jobctl.cli.up import up

#: The first arguments that `main` runs on this app alone.
SERVICE_COMMANDS = frozenset({"api", "scheduler", "worker", "flower", "bench", "up", "db"})


def new_app() -> typer.Typer:
    """The `jobctl` app with its global options and the services' commands."""
    app = typer.Typer(
        name="jobctl",
        help="Run long, multi-step background jobs on Celery workers, and operate them.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _options(
        ctx: typer.Context,
        as_json: Annotated[bool, typer.Option("--json", help="Client commands print the API's JSON.")] = False,
    ) -> None:
        """Run long, multi-step background jobs on Celery workers, and operate them."""
        ctx.meta["json"] = as_json

    db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
    db_app.command("upgrade")(processes.db_upgrade)
    app.add_typer(db_app, name="db")
    for command in (processes.api, processes.scheduler, processes.worker, processes.flower, processes.bench, up):
        app.command()(command)
    return app
