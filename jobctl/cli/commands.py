"""The whole `jobctl` command: the services' commands (`cli.services`) and the client commands."""

from __future__ import annotations

from jobctl.cli.accounts import audit_command, tokens_app
from jobctl.cli.jobs import jobs_app
from jobctl.cli.resources import projects_app, targets_app, types_command, users_app
from jobctl.cli.services import new_app
from jobctl.cli.stats import stats_command
from jobctl.cli.webhooks import webhooks_app

app = new_app()
app.add_typer(jobs_app, name="jobs")
app.add_typer(projects_app, name="projects")
app.add_typer(users_app, name="users")
app.add_typer(targets_app, name="targets")
app.add_typer(tokens_app, name="tokens")
app.add_typer(webhooks_app, name="webhooks")
app.command("types")(types_command)
app.command("audit")(audit_command)
app.command("stats")(stats_command)
