"""`jobctl stats` (docs/contract.md §5.2): the statistics of `GET /api/v1/stats` - how many jobs by status and by
project, and the job types slowest first with the median and 95th percentile of their running and waiting times.

Like the other client commands: Rich tables, or the API's JSON with `--json`; exit status 1 after an error, with
the reason on stderr. The window is the job list's: `--period`, or `--since`/`--until` (a duration back from now,
`7d`, or an ISO-8601 time).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from jobctl.api.schemas import Period
from jobctl.cli.accounts import parse_when
from jobctl.cli.connection import JsonOption, TokenOption, UrlOption, wants_json
from jobctl.cli.output import console
from jobctl.cli.render import fmt_duration, fmt_time, print_json, status_text
from jobctl.cli.resources import offered
from jobctl.client import Stats


def stats_command(
    ctx: typer.Context,
    project: Annotated[
        list[str] | None, typer.Option("--project", "-p", help="Repeatable; default: every project you see.")
    ] = None,
    period: Annotated[Period | None, typer.Option(help="Jobs created within the last ...")] = None,
    since: Annotated[
        str | None, typer.Option(metavar="ISO|7d", help="Jobs created since then (not with --period).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(metavar="ISO|7d", help="Jobs created before then (not with --period).")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Job statistics: counts by status and project, and the slowest job types (p50/p95 of the running and
    waiting times of their FINISHED jobs)."""
    start = parse_when(since, "--since") if since else None
    end = parse_when(until, "--until") if until else None
    with offered(ctx, url, token, "statistics (no /api/v1/stats)") as client:
        answer = client.stats(
            project=tuple(project or ()), period=period.value if period else None, since=start, until=end
        )
    if wants_json(ctx, as_json):
        print_json(answer.model_dump(mode="json"))
        return
    console.print(window_line(answer))
    console.print(counts_table(answer))
    console.print(types_table(answer))


def window_line(stats: Stats) -> str:
    """`13 jobs created since 05-01 12:00 until ...`: what the figures are over."""
    noun = "job" if stats.total == 1 else "jobs"
    if stats.since is None and stats.until is None:
        return f"{stats.total} {noun}, created at any time"
    parts = [f"{stats.total} {noun} created"]
    if stats.since is not None:
        parts.append(f"since {fmt_time(stats.since)}")
    if stats.until is not None:
        parts.append(f"before {fmt_time(stats.until)}")
    return " ".join(parts)


def counts_table(stats: Stats) -> Table:
    """Jobs by status (all six) and, beside them, by project."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("JOBS", justify="right")
    table.add_column("  PROJECT", overflow="fold")
    table.add_column("JOBS", justify="right")
    statuses = list(stats.by_status.items())
    projects = list(stats.by_project.items())
    for row in range(max(len(statuses), len(projects))):
        status, count = statuses[row] if row < len(statuses) else ("", None)
        name, jobs = projects[row] if row < len(projects) else ("", None)
        table.add_row(
            status_text(status) if status else "",
            "" if count is None else str(count),
            f"  {name}" if name else "",
            "" if jobs is None else str(jobs),
        )
    return table


def types_table(stats: Stats) -> Table:
    """The job types, slowest first: jobs, finished, and the p50/p95 of the running and waiting times."""
    table = Table(box=None, header_style="bold", pad_edge=False, title="slowest types", title_justify="left")
    table.add_column("TYPE", overflow="fold")
    for column in ("JOBS", "FINISHED", "RUN P50", "RUN P95", "WAIT P50", "WAIT P95"):
        table.add_column(column, justify="right", no_wrap=True)
    for t in stats.types:
        table.add_row(
            t.type,
            str(t.jobs),
            str(t.finished),
            fmt_duration(t.duration_p50_s),
            fmt_duration(t.duration_p95_s),
            fmt_duration(t.waiting_p50_s),
            fmt_duration(t.waiting_p95_s),
        )
    return table
