"""The `jobctl` commands that run a service in this process (docs/contract.md §5.1): `api`, `scheduler`,
`worker`, `flower`, `db upgrade`, and `bench`. Each reads its settings when it runs (`load_settings`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from jobctl.cli.output import console, fail
from jobctl.cli.settings import load_settings, mask_url
from jobctl.scheduler.settings import Settings

# Every import of uvicorn, Celery, SQLAlchemy or the benchmark below is inside the command that needs it, so
# that `jobctl --help` and the client commands do not load them.


def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version (safe to run repeatedly)."""
    settings = load_settings()
    migrate_database(settings)
    console.print(f"database {mask_url(settings.database_url)} is up to date")


def migrate_database(settings: Settings) -> None:
    """Run the migrations; exit 1 with a readable message when the database cannot be reached."""
    from sqlalchemy.exc import OperationalError  # not at the top: see above

    from jobctl.scheduler.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(f"cannot migrate the database at {mask_url(settings.database_url)}: {reason}")


def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on", show_default="JOBCTL_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on", show_default="JOBCTL_API_PORT")] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="uvicorn worker processes sharing the port (each its own connection pools)")
    ] = 1,
) -> None:
    """Serve the HTTP API (and its docs at /docs) with uvicorn, in `workers` processes."""
    settings = load_settings()
    import uvicorn  # not at the top: see above

    from jobctl.logs import configure

    configure(settings.log_format, "api", settings.log_level)
    uvicorn.run(
        "jobctl.processes:api_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        workers=workers,
        timeout_graceful_shutdown=5,
        log_config=None,  # our root handler formats uvicorn's lines too
    )


def scheduler() -> None:
    """Run the scheduler: dispatches pending jobs, watches leases and targets, purges old jobs."""
    settings = load_settings()
    from jobctl.processes import run_scheduler  # not at the top: see above

    run_scheduler(settings)


def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Steps run at once", show_default="CPU count")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name, e.g. worker1@%h")] = None,
    loglevel: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run a Celery worker that executes job steps."""
    settings = load_settings()
    from jobctl.processes import run_worker  # not at the top: see above

    run_worker(settings, concurrency=concurrency, hostname=hostname, loglevel=loglevel)


def flower(
    port: Annotated[int | None, typer.Option(help="Port to listen on", show_default="JOBCTL_FLOWER_PORT")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in a container)")] = "127.0.0.1",
) -> None:
    """Run Flower, Celery's monitor, behind basic auth (JOBCTL_FLOWER_USER / JOBCTL_FLOWER_PASSWORD)."""
    settings = load_settings()
    from jobctl.processes import run_flower  # not at the top: see above

    run_flower(settings, port=port or settings.flower_port, address=host)


def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer rounds and rows: under 3 minutes")] = False,
    database: Annotated[list[str] | None, typer.Option(help="sqlite or postgresql (repeatable; default: both)")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the Markdown report here")] = Path("docs/benchmarks.md"),
) -> None:
    """Benchmark jobctl against raw Celery on this machine (starts and stops everything it needs)."""
    from jobctl.bench.run import main as run_bench  # not at the top: see above

    kinds = database or ["sqlite", "postgresql"]
    unknown = sorted(set(kinds) - {"sqlite", "postgresql"})
    if unknown:
        fail(f"unknown database(s): {', '.join(unknown)}; use sqlite or postgresql", code=2)
    raise typer.Exit(run_bench(quick, kinds, output, ["bench", *sys.argv[2:]]))
