"""`jobctl jobs ...` (docs/contract.md §5.2): list, show, submit, operate, edit, diagnose and watch jobs over the
HTTP API.

Each command prints Rich tables (or the API's JSON with `--json`, before or after the command) and ends with
exit status 1 after any error or refused operation, the reason on stderr as `jobctl: ...`. Output meant for
scripts (a new job's id, its result) is the last line on stdout; everything else a person reads goes around it.
A job is named by its id or the start of it (the short ids tables show).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.text import Text

from jobctl import states
from jobctl.api.schemas import JobSort, Period
from jobctl.cli.connection import (
    JsonOption,
    TokenOption,
    UrlOption,
    connected,
    connector,
    describe,
    parse_params,
    wants_json,
)
from jobctl.cli.output import console, err_console, warn
from jobctl.cli.render import (
    fmt_duration,
    fmt_error,
    job_details,
    jobs_table,
    page_line,
    print_json,
    status_text,
    step_notes,
    steps_table,
)
from jobctl.cli.watch import DEFAULT_POLL_S, EventSource, JobGone, WatchView, follow
from jobctl.client import (
    OPERATIONS,
    Client,
    JobDiscarded,
    JobFailed,
    JobHandle,
    JobQuery,
    JobStatus,
    NotFound,
    Unreachable,
)
from jobctl.client import Error as ClientError

jobs_app = typer.Typer(
    help="List, show, submit, operate, edit, diagnose and watch jobs (over the HTTP API).", no_args_is_help=True
)

T = TypeVar("T")


def resolve_job_id(client: Client, ref: str) -> str | None:
    """The full id of the one visible job whose id starts with `ref` (the short ids tables show), else None."""
    page = client.list_jobs(JobQuery(q=ref, page_size=200))
    matches = {job.id for job in page.items if job.id.startswith(ref)}
    if len(matches) > 1:
        raise ClientError(f"{ref!r} is the start of {len(matches)} job ids; give more of it")
    return matches.pop() if matches else None


def with_job_id(client: Client, ref: str, call: Callable[[str], T]) -> T:
    """`call(ref)`; if that is a 404 and `ref` starts exactly one visible job's id, `call` with that id."""
    try:
        return call(ref)
    except NotFound as exc:
        if exc.missing_route:
            raise
        full = resolve_job_id(client, ref)
        if full is None or full == ref:
            raise
        return call(full)


@jobs_app.command("list")
def jobs_list(
    ctx: typer.Context,
    project: Annotated[list[str] | None, typer.Option("--project", "-p", help="Repeatable.")] = None,
    status: Annotated[
        list[JobStatus] | None, typer.Option("--status", "-s", case_sensitive=False, help="Repeatable.")
    ] = None,
    job_type: Annotated[str | None, typer.Option("--type", "-t", help="The job type.")] = None,
    query: Annotated[str | None, typer.Option("--query", "-q", help="Job-id prefix or target-name part.")] = None,
    period: Annotated[Period | None, typer.Option(help="Created within the last ...")] = None,
    sort: Annotated[JobSort, typer.Option(help="Sort order; a leading - reverses.")] = JobSort.CREATED_AT_DESC,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1, max=200)] = 50,
    error_code: Annotated[
        list[str] | None, typer.Option("--error-code", help="Jobs whose error has this code. Repeatable.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the jobs you can see, newest first, one page at a time."""
    query_ = JobQuery(
        projects=tuple(project or ()),
        statuses=tuple(s.value for s in status or ()),
        type=job_type,
        q=query,
        period=period.value if period else None,
        sort=sort.value,
        page=page,
        page_size=page_size,
        error_codes=tuple(error_code or ()),
    )
    with connected(ctx, url, token) as client:
        answer = client.list_jobs(query_)
    if wants_json(ctx, as_json):
        print_json(answer.model_dump(mode="json"))
        return
    console.print(jobs_table(answer.items))
    console.print(page_line(answer.total, answer.page, answer.page_size), style="dim")


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Show one job and its steps."""
    with connected(ctx, url, token) as client:
        job = with_job_id(client, job_id, client.get_job)
    if wants_json(ctx, as_json):
        print_json(job.model_dump(mode="json"))
        return
    console.print(job_details(job))
    console.print()
    console.print(steps_table(job))
    for note in step_notes(job):
        console.print(note, soft_wrap=True)


def parse_target(value: str | None) -> tuple[str, str] | None:
    """`kind:name` as (kind, name); the name may contain `:`."""
    if value is None:
        return None
    kind, sep, name = value.partition(":")
    if not sep or not kind or not name:
        raise typer.BadParameter(f"{value!r} is not kind:name (e.g. file:data/a.csv)", param_hint="--target")
    return kind, name


@jobs_app.command("submit")
def jobs_submit(
    ctx: typer.Context,
    project: Annotated[str, typer.Option("--project", "-p", help="The project to submit to.")],
    job_type: Annotated[str, typer.Option("--type", "-t", help="The job type, e.g. sleep or file_digest.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value (value: JSON or text). Repeatable.")
    ] = None,
    params_json: Annotated[str | None, typer.Option("--params-json", help="All params as a JSON object.")] = None,
    target: Annotated[str | None, typer.Option(help="kind:name, e.g. file:data/a.csv")] = None,
    priority: Annotated[int | None, typer.Option(min=0, max=4, help="0 highest ... 4 lowest (default 3).")] = None,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Then follow it like `jobs watch`.")] = False,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait for it: print its result; exit 1 if it ends in ERROR or DISCARDED.")
    ] = False,
    timeout: Annotated[float | None, typer.Option(min=0, help="With --wait: give up after this many seconds.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Submit a job. Its id is the last line on stdout (the only one, without --watch); with --wait, its
    result (JSON) is."""
    params = parse_params(param or (), params_json)
    target_ = parse_target(target)
    with connected(ctx, url, token) as client:
        handle = client.submit(job_type, project=project, params=params, target=target_, priority=priority)
        job = handle.job
        steps = ", ".join(s.name for s in job.steps)
        if wait:
            err_console.print(f"submitted {job.id}, a {job.type} job, to {job.project}; waiting", style="dim")
            raise typer.Exit(wait_for_result(handle, timeout, wants_json(ctx, as_json)))
        if wants_json(ctx, as_json):
            print_json(job.model_dump(mode="json"))
        else:
            err_console.print(f"submitted a {job.type} job to {job.project} (steps: {steps})", style="dim")
            typer.echo(job.id)
        if watch:
            code = run_watch(client, job.id, connector(ctx).events or client.job_events, DEFAULT_POLL_S)
            raise typer.Exit(code)


def wait_for_result(handle: JobHandle, timeout: float | None, as_json: bool) -> int:
    """Wait for the job and print its result as JSON on stdout: exit status 0. ERROR or DISCARDED: the reason on
    stderr (and the job's JSON with `as_json`), exit status 1; 2 if `timeout` ran out first."""
    try:
        result = handle.result(timeout)
    except (JobFailed, JobDiscarded) as exc:
        if as_json:
            print_json(exc.job.model_dump(mode="json"))
        warn(exc.message)
        return 1
    except TimeoutError as exc:
        warn(str(exc))
        return 2
    typer.echo(json.dumps(result))
    return 0


def past(operation: str) -> str:
    """`paused`, `restarted`: what the line after an operation says was done."""
    return f"{operation}{'d' if operation.endswith('e') else 'ed'}"


def _allowed_from(operation: str) -> str:
    """`PAUSED or ERROR`: the states the transition table allows `operation` from, for the help text."""
    allowed = states.allowed_from(states.Action(operation))
    states_ = [status.value for status in states.JobStatus if status in allowed]
    return ", ".join(states_[:-1]) + " or " + states_[-1] if len(states_) > 1 else "".join(states_)


def _operation_command(operation: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        job_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Job ids (or their starts).")],
        url: UrlOption = None,
        token: TokenOption = None,
    ) -> None:
        refused = 0
        with connected(ctx, url, token) as client:
            for ref in job_ids:
                try:
                    job_id, job = with_job_id(client, ref, lambda i: (i, client.operate(i, operation)))
                except Unreachable:
                    raise
                except ClientError as exc:
                    refused += 1
                    warn(f"{ref}: {describe(exc)}")
                    continue
                if job is None:
                    typer.echo(f"{job_id} {past(operation)}")
                else:
                    console.print(Text(f"{job_id} {past(operation)}, now ") + status_text(job.status))
        if refused:
            raise typer.Exit(1)

    command.__doc__ = (
        f"{operation.capitalize()} jobs (allowed from {_allowed_from(operation)}); one line each, "
        "exit status 1 if any is refused."
    )
    return command


for _operation in OPERATIONS:
    jobs_app.command(_operation)(_operation_command(_operation))


# ---------------------------------------------------------------------------------------- edit, diagnose


@jobs_app.command("edit")
def jobs_edit(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="key=value (value: JSON or text). Repeatable.")
    ] = None,
    params_json: Annotated[str | None, typer.Option("--params-json", help="Params as a JSON object.")] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="The params given are all of them (else: over the job's current ones).")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Change the params of a PAUSED or ERROR job (as `jobs submit` takes them), then `jobs resume` it: its
    unfinished steps run with the new params, its finished steps keep their outputs. Exit status 1 if refused."""
    given = parse_params(param or (), params_json)
    if given is None:
        raise typer.BadParameter("give the params to change with --param key=value or --params-json", param_hint="ID")
    with connected(ctx, url, token) as client:
        job = with_job_id(client, job_id, client.get_job)
        edited = client.edit_params(job.id, given if replace else {**job.params, **given})
    if wants_json(ctx, as_json):
        print_json(edited.model_dump(mode="json"))
        return
    changes = [
        f"{key} {json.dumps(job.params.get(key))} -> {json.dumps(edited.params.get(key))}"
        for key in sorted(job.params.keys() | edited.params.keys())
        if job.params.get(key) != edited.params.get(key)
    ]
    done = f"params edited: {'; '.join(changes)}" if changes else "params unchanged"
    console.print(Text(f"{edited.id} {done}, still ") + status_text(edited.status))
    err_console.print(f"resume it to run its unfinished steps with them: jobctl jobs resume {edited.id}", style="dim")


@jobs_app.command("diagnose")
def jobs_diagnose(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", dir_okay=False, help="Where to write it (default: job-<id>-diagnostics.zip)."),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Download a job's diagnostic bundle, a zip: the job and its events, every step's log, its type, the workers
    that ran it, the server's settings (no secrets) and the versions. Its path is the last line on stdout."""
    with connected(ctx, url, token) as client:
        job = with_job_id(client, job_id, client.get_job)
        bundle = client.diagnostics(job.id)
    path = output or Path(f"job-{job.id}-diagnostics.zip")
    try:
        path.write_bytes(bundle)
    except OSError as exc:
        warn(f"cannot write {path}: {exc.strerror or exc}")
        raise typer.Exit(1) from None
    err_console.print(f"the diagnostic bundle of job {job.id} ({len(bundle):,} bytes)", style="dim")
    typer.echo(str(path))


# ------------------------------------------------------------------------------------------------ watch


def run_watch(client: Client, job_ref: str, source: EventSource | None, poll_s: float) -> int:
    """Watch the job with live bars on stdout; the exit status: 0 if it FINISHED, 1 if it ended in ERROR or
    DISCARDED (the reason on stderr) or was deleted, 130 on Ctrl-C."""
    job_id = with_job_id(client, job_ref, lambda ref: client.get_job(ref).id)
    try:
        with WatchView(console) as view:
            job = follow(job_id, lambda: client.get_job(job_id), source, view, poll_s)
    except JobGone as exc:
        warn(exc.message)
        return 1
    except KeyboardInterrupt:
        return 130
    summary = Text(f"job {job.id} ") + status_text(job.status) + Text(f" after {fmt_duration(job.duration_s)}")
    console.print(summary)
    if job.status is JobStatus.FINISHED:
        return 0
    if job.status is JobStatus.ERROR:
        failed = next((s for s in job.steps if s.status is JobStatus.ERROR), None)
        where = f" in step {failed.index} {failed.name}" if failed else ""
        reason = fmt_error(job.error) or (fmt_error(failed.error) if failed else "") or "no reason given"
        warn(f"job {job.id} failed{where}: {reason}")
    else:
        warn(f"job {job.id} was discarded: {job.discard_reason or 'no reason given'}")
    return 1


@jobs_app.command("watch")
def jobs_watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between fetches when no event arrives.")] = 2.0,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Follow a job with live progress bars until it is FINISHED (exit 0), ERROR or DISCARDED (exit 1)."""
    with connected(ctx, url, token) as client:
        code = run_watch(client, job_id, connector(ctx).events or client.job_events, poll)
    raise typer.Exit(code)
