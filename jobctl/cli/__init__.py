"""The `jobctl` command (docs/contract.md §5): the services, `jobctl up`, and the client commands.

- services, each run in this process: `api`, `scheduler`, `worker`, `flower`, `db upgrade`, `bench`
  (processes.py), their settings (settings.py);
- `jobctl up`, the whole system in the foreground (up.py): its children (supervisor.py), Redis
  (redis_server.py), the generated admin token and Flower login (dev_secrets.py);
- the client commands over the HTTP API through `jobctl.client`: `jobs` (jobs.py, `jobs watch` in watch.py),
  `projects`, `users`, `targets`, `types` (resources.py), `tokens` and `audit` (accounts.py), `stats`
  (stats.py), `webhooks` (webhooks.py), their shared options and connection (connection.py) and what they print
  (render.py).

`main()` is the console script; `python -m jobctl.cli` runs the same command. Importing the package loads
neither Celery, uvicorn nor the benchmark: each service command imports what it runs when it runs.
"""

from __future__ import annotations

from typing import Annotated

import typer

from jobctl.cli import processes
from jobctl.cli.accounts import audit_command, tokens_app
from jobctl.cli.jobs import jobs_app
from jobctl.cli.resources import projects_app, targets_app, types_command, users_app
from jobctl.cli.stats import stats_command
from jobctl.cli.up import up
from jobctl.cli.webhooks import webhooks_app

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
app.add_typer(jobs_app, name="jobs")
app.add_typer(projects_app, name="projects")
app.add_typer(users_app, name="users")
app.add_typer(targets_app, name="targets")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.command("types")(types_command)
app.command("audit")(audit_command)
app.command("stats")(stats_command)
for _command in (processes.api, processes.scheduler, processes.worker, processes.flower, processes.bench, up):
    app.command()(_command)


def main() -> None:
    """The `jobctl` console entry point."""
    app(prog_name="jobctl")
