"""The `jobctl` command (docs/contract.md §5): the services, `jobctl up`, and the client commands.

- services, each run in this process: `api`, `scheduler`, `worker`, `flower`, `db upgrade`, `bench`
  (processes.py), their settings (settings.py), the app of the services alone (services.py);
- `jobctl up`, the whole system in the foreground (up.py): its children (supervisor.py), Redis
  (redis_server.py), the generated admin token and Flower login (dev_secrets.py);
- the client commands over the HTTP API through `jobctl.client`: `jobs` (jobs.py, `jobs watch` in watch.py),
  `projects`, `users`, `targets`, `types` (resources.py), `tokens` and `audit` (accounts.py), `stats`
  (stats.py), `webhooks` (webhooks.py), their shared options and connection (connection.py) and what they print
  (render.py); the whole command's app (commands.py);
- the consoles and the `jobctl: ...` error line of every command (output.py).

`main()` is the console script; `python -m jobctl.cli` runs the same command. Importing the package loads
nothing; a service's command loads neither the client commands (`services.py`: a service's own app) nor
Celery, uvicorn or the benchmark until it runs them; the whole command is `commands.py`, also `jobctl.cli.app`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]


def main() -> None:
    """The `jobctl` console entry point: the services' commands alone when one of them is asked for
    (`cli.services`), else the whole command (`cli.commands`)."""
    from jobctl.cli.services import SERVICE_COMMANDS

    if len(sys.argv) > 1 and sys.argv[1] in SERVICE_COMMANDS:
        from jobctl.cli.services import new_app

        new_app()(prog_name="jobctl")
        return
    from jobctl.cli.commands import app

    app(prog_name="jobctl")


def __getattr__(name: str) -> Any:
    """`jobctl.cli.app`: the whole command's Typer app (`cli.commands`), loaded on first use."""
    if name == "app":
        from jobctl.cli.commands import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    app: typer.Typer
