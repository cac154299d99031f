"""The client half of the `jobctl` command (SPEC §5): `jobctl jobs ...`, `jobctl projects ...`, `jobctl users ...`.

Every command talks to the HTTP API through `api.client.JobctlClient` at `--url` (JOBCTL_URL) with `--token`
(JOBCTL_TOKEN), prints Rich tables (or the API's JSON with `--json`), and ends with exit status 1 after any
error or refused operation, the reason on stderr as `jobctl: ...`. Output meant for scripts (a new job's id, a
new user's token) is the last line on stdout; everything else a person reads goes around it.

Tests hand a `Connector` to the command as Click's context object (`CliRunner().invoke(app, args, obj=...)`)
to reach an in-process API and to replace the event stream `jobs watch` follows.
"""

from __future__ import annotations

import json
import math
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, NoReturn, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table
from rich.text import Text

from api.client import DEFAULT_URL, OPERATIONS, ApiError, ClientError, JobctlClient, JobFilter, Unreachable, User
from api.schemas import Job, JobSort, Period, Project
from scheduler.states import Action, JobStatus, allowed_from

jobs_app = typer.Typer(help="List, show, submit, operate and watch jobs (over the HTTP API).", no_args_is_help=True)
projects_app = typer.Typer(help="List and create projects (over the HTTP API).", no_args_is_help=True)
users_app = typer.Typer(help="List, create and grant roles to users (over the HTTP API).", no_args_is_help=True)

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

T = TypeVar("T")

#: an event source: given a project, the data of its `job` events as they arrive (SPEC §4 `GET /events`)
EventSource = Callable[[str], Iterable[dict[str, Any]]]


# ------------------------------------------------------------------------------------------------ connection

UrlOption = Annotated[str, typer.Option("--url", envvar="JOBCTL_URL", help="The jobctl API's address.")]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="JOBCTL_TOKEN", show_default=False, help="Your API token (never printed)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


@dataclass
class Connector:
    """How the commands reach the API: a given `httpx.Client` (e.g. a `TestClient`) or a new one to `--url`,
    and the source of live job events (default: the API's `GET /api/v1/events` stream)."""

    http: httpx.Client | None = None
    events: EventSource | None = None

    def client(self, url: str, token: str | None) -> JobctlClient:
        """A client of the API for this command, sending `token`."""
        return JobctlClient(url, token, http=self.http)


def _connector(ctx: typer.Context) -> Connector:
    found = ctx.find_object(Connector)
    return found if found is not None else Connector()


@contextmanager
def connected(ctx: typer.Context, url: str, token: str | None) -> Iterator[JobctlClient]:
    """A client for the command's duration; a `ClientError` escaping the block ends the command (exit 1)."""
    client = _connector(ctx).client(url, token)
    try:
        yield client
    except ClientError as exc:
        fail(describe(exc))
    finally:
        client.close()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `jobctl: message` on stderr and end the command with `code`."""
    warn(message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print `jobctl: message` on stderr."""
    err_console.print(Text(f"jobctl: {message}", style="bold red"), soft_wrap=True)


def describe(exc: ClientError) -> str:
    """One line for a person: the API's message, with a hint where one helps."""
    if isinstance(exc, ApiError):
        if exc.status == 401:
            return f"{exc.message} (give --token or set JOBCTL_TOKEN)"
        if exc.status == 409 and exc.allowed is not None:
            allowed = ", ".join(exc.allowed) or "nothing"
            return f"{exc.message} (allowed now: {allowed})"
    return exc.message


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


def resolve_job_id(client: JobctlClient, ref: str) -> str | None:
    """The full id of the one visible job whose id starts with `ref` (the short ids tables show), else None."""
    page = client.list_jobs(JobFilter(q=ref, page_size=200))
    matches = {job.id for job in page.items if job.id.startswith(ref)}
    if len(matches) > 1:
        raise ClientError(f"{ref!r} is the start of {len(matches)} job ids; give more of it")
    return matches.pop() if matches else None


def with_job_id(client: JobctlClient, ref: str, call: Callable[[str], T]) -> T:
    """`call(ref)`; if that is a 404 and `ref` starts exactly one visible job's id, `call` with that id."""
    try:
        return call(ref)
    except ApiError as exc:
        if exc.status != 404 or exc.missing_route:
            raise
        full = resolve_job_id(client, ref)
        if full is None or full == ref:
            raise
        return call(full)


# ------------------------------------------------------------------------------------------------ rendering

STATUS_STYLE = {
    "PENDING": "cyan",
    "RUNNING": "bold blue",
    "PAUSED": "yellow",
    "ERROR": "bold red",
    "DISCARDED": "magenta",
    "FINISHED": "green",
}
SHORT_ID = 12


def status_text(status: str | None) -> Text:
    """The status, in its color."""
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def fmt_duration(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m 04s`, `2h 03m`; `-` for nothing."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def fmt_time(value: datetime | None, *, short: bool = False) -> str:
    """The time in the local zone, to the second (`short`: `MM-DD HH:MM`, for tables); `-` for none."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def fmt_target(job: Job) -> str:
    """`kind:name`, or `-`."""
    return f"{job.target.kind}:{job.target.name}" if job.target else "-"


def jobs_table(jobs: Sequence[Job]) -> Table:
    """The job list: short id, project, type, target, status, progress, created, duration."""
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("ID", no_wrap=True, min_width=SHORT_ID)
    table.add_column("PROJECT", overflow="fold")
    table.add_column("TYPE", overflow="fold")
    table.add_column("TARGET", overflow="fold")
    table.add_column("STATUS", no_wrap=True, min_width=9)
    table.add_column("PROGRESS", justify="right", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.id[:SHORT_ID],
            job.project,
            job.type,
            fmt_target(job),
            status_text(job.status),
            f"{job.progress:.0f}%",
            fmt_time(job.created_at, short=True),
            fmt_duration(job.duration_s),
        )
    return table


def page_line(total: int, page: int, page_size: int) -> str:
    """`page x of y (N jobs)`."""
    pages = max(1, math.ceil(total / page_size))
    return f"page {page} of {pages} ({total} job{'' if total == 1 else 's'})"


def job_details(job: Job) -> Table:
    """The job's fields as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    target = "-" if job.target is None else f"{fmt_target(job)} (version {job.target.version})"
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id),
        ("project", job.project),
        ("type", job.type),
        ("target", target),
        ("status", status_text(job.status)),
        ("progress", f"{job.progress:.0f}%"),
        ("priority", str(job.priority)),
        ("submitter", job.submitter),
        ("created", fmt_time(job.created_at)),
        ("started", fmt_time(job.started_at)),
        ("finished", fmt_time(job.finished_at)),
        ("waiting", fmt_duration(job.waiting_s)),
        ("duration", fmt_duration(job.duration_s)),
        ("attempt", str(job.attempt)),
        ("allowed", ", ".join(job.allowed) or "-"),
        ("params", json.dumps(job.params, sort_keys=True)),
    ]
    if job.error:
        rows.append(("error", Text(job.error, style="red")))
    if job.discard_reason:
        rows.append(("discarded", Text(job.discard_reason, style="magenta")))
    if job.result is not None:
        rows.append(("result", json.dumps(job.result, sort_keys=True)))
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def steps_table(job: Job) -> Table:
    """The job's steps: index, name, status, progress, waiting, duration, attempt, error."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    for name in ("STEP", "STATUS"):
        table.add_column(name, no_wrap=True)
    for name in ("PROGRESS", "WAITING", "DURATION", "ATTEMPT"):
        table.add_column(name, justify="right")
    table.add_column("ERROR", style="red")
    for step in job.steps:
        table.add_row(
            str(step.index),
            step.name,
            status_text(step.status),
            f"{step.progress:.0f}%",
            fmt_duration(step.waiting_s),
            fmt_duration(step.duration_s),
            str(step.attempt),
            step.error or "",
        )
    return table


def projects_table(projects: Sequence[Project]) -> Table:
    """Projects: name, running limit, created."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME")
    table.add_column("MAX RUNNING", justify="right")
    table.add_column("CREATED")
    for project in projects:
        limit = "default" if project.max_running is None else str(project.max_running)
        table.add_row(project.name, limit, fmt_time(project.created_at))
    return table


def users_table(users: Sequence[User]) -> Table:
    """Users: name, admin flag, roles."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME")
    table.add_column("ADMIN")
    table.add_column("ROLES")
    for user in users:
        roles = ", ".join(f"{p}={r}" for p, r in sorted(user.roles.items())) or "-"
        table.add_row(user.name, "yes" if user.admin else "", roles)
    return table


# ------------------------------------------------------------------------------------------------ jobs


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
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """List the jobs you can see, newest first, one page at a time."""
    query_ = JobFilter(
        projects=project or (),
        statuses=[s.value for s in status or ()],
        type=job_type,
        q=query,
        period=period.value if period else None,
        sort=sort.value,
        page=page,
        page_size=page_size,
    )
    with connected(ctx, url, token) as client:
        answer = client.list_jobs(query_)
    if as_json:
        print_json(answer.model_dump(mode="json"))
        return
    console.print(jobs_table(answer.items))
    console.print(page_line(answer.total, answer.page, answer.page_size), style="dim")


@jobs_app.command("show")
def jobs_show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Show one job and its steps."""
    with connected(ctx, url, token) as client:
        job = with_job_id(client, job_id, client.get_job)
    if as_json:
        print_json(job.model_dump(mode="json"))
        return
    console.print(job_details(job))
    console.print()
    console.print(steps_table(job))


def parse_params(pairs: Sequence[str], params_json: str | None) -> dict[str, Any] | None:
    """`--params-json` overlaid with each `--param key=value` (a value that parses as JSON is taken as such:
    `steps=3` is a number, `subprocess=true` a boolean, `name=x` a string)."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except ValueError as exc:
            raise typer.BadParameter(f"not JSON: {exc}", param_hint="--params-json") from None
        if not isinstance(loaded, dict):
            raise typer.BadParameter("must be a JSON object", param_hint="--params-json")
        params.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"{pair!r} is not key=value", param_hint="--param")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params if (params or params_json) else None


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
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Submit a job. Its id is the last line on stdout (the only one, without --watch)."""
    params = parse_params(param or (), params_json)
    target_ = parse_target(target)
    with connected(ctx, url, token) as client:
        job = client.submit_job(project, job_type, params=params, target=target_, priority=priority)
        if as_json:
            print_json(job.model_dump(mode="json"))
        else:
            steps = ", ".join(s.name for s in job.steps)
            err_console.print(f"submitted a {job.type} job to {job.project} (steps: {steps})", style="dim")
            typer.echo(job.id)
        if watch:
            code = run_watch(client, job.id, _connector(ctx).events or client.job_events, DEFAULT_POLL_S)
            raise typer.Exit(code)


PAST = {"pause": "paused", "resume": "resumed", "restart": "restarted", "discard": "discarded", "delete": "deleted"}


def _allowed_from(operation: str) -> str:
    """`PAUSED or ERROR`: the states the transition table allows `operation` from, for the help text."""
    states = [status.value for status in JobStatus if status in allowed_from(Action(operation))]
    return ", ".join(states[:-1]) + " or " + states[-1] if len(states) > 1 else "".join(states)


def _operation_command(operation: str) -> Callable[..., None]:
    def command(
        ctx: typer.Context,
        job_ids: Annotated[list[str], typer.Argument(metavar="ID...", help="Job ids (or their starts).")],
        url: UrlOption = DEFAULT_URL,
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
                    typer.echo(f"{job_id} {PAST[operation]}")
                else:
                    console.print(Text(f"{job_id} {PAST[operation]}, now ") + status_text(job.status))
        if refused:
            raise typer.Exit(1)

    command.__doc__ = (
        f"{operation.capitalize()} jobs (allowed from {_allowed_from(operation)}); one line each, "
        "exit status 1 if any is refused."
    )
    return command


for _operation in OPERATIONS:
    jobs_app.command(_operation)(_operation_command(_operation))


# ------------------------------------------------------------------------------------------------ watch

DEFAULT_POLL_S = 2.0
DEGRADED_POLL_S = 0.5  # while the event stream is unavailable, poll faster so the bars keep moving
RECONNECT_S = 2.0
UNREACHABLE_S = 30.0  # how long a watch outlives an API that does not answer
WAKE_S = 0.25  # the longest the watcher waits for an event before it looks at the clock and the stream again
ENDED = frozenset({JobStatus.FINISHED, JobStatus.ERROR, JobStatus.DISCARDED})


class JobGone(ClientError):
    """The watched job was deleted."""


class EventPump:
    """Runs an event source in a daemon thread and hands one job's events to the watcher through a queue.

    A stream that ends or breaks is reopened after `reconnect_s`; one the server refuses (404, 401, 403: no
    such endpoint, or not allowed) is given up. `live` says whether events are flowing at the moment.
    """

    def __init__(self, source: EventSource, project: str, job_id: str, reconnect_s: float = RECONNECT_S) -> None:
        self.source = source
        self.project = project
        self.job_id = job_id
        self.reconnect_s = reconnect_s
        self.live = False
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="jobctl-events", daemon=True)

    def start(self) -> None:
        """Start reading events in the background."""
        self.live = True
        self._thread.start()

    def stop(self) -> None:
        """Stop handing events over (the thread ends at its next event or when the process exits)."""
        self._stop.set()
        self.live = False

    def get(self, timeout: float) -> dict[str, Any] | None:
        """The next event of the job, or None if none arrives within `timeout` seconds."""
        try:
            return self._queue.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.live = True
                for message in self.source(self.project):
                    if self._stop.is_set():
                        return
                    if message.get("id") == self.job_id:
                        self._queue.put(message)
            except ApiError as exc:
                if exc.status in (401, 403, 404, 405):
                    self.live = False
                    return
            except Exception:  # a broken stream only costs liveness; the fetches keep the truth
                pass
            self.live = False
            self._stop.wait(self.reconnect_s)


class WatchView:
    """The live display of one job: an overall bar and one bar per step, each with its status and duration.

    Events move the bars at once; a line is printed for each change of the job's or a step's status the
    fetched job shows, so those lines tell the truth in order even when events come late or out of order.
    """

    def __init__(self, out: Console) -> None:
        self.out = out
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[duration]}", style="dim"),
            console=out,
        )
        self._tasks: dict[int | None, TaskID] = {}  # None: the job's bar; else a step's, by index
        self._seen: dict[int | None, str] = {}  # the latest status from an event or a fetch
        self._told: dict[int | None, str] = {}  # the status last printed as a line (from fetches only)

    def __enter__(self) -> WatchView:
        self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.progress.stop()

    def show(self, job: Job) -> None:
        """Set every bar to the job as fetched, and print a line for each change of status since the last."""
        if None not in self._tasks:
            self._tasks[None] = self._add(f"job {job.id[:SHORT_ID]} {job.type}")
        width = max((len(s.name) for s in job.steps), default=0)
        lines: list[Text] = []
        for step in job.steps:
            if step.index not in self._tasks:
                self._tasks[step.index] = self._add(f"  {step.index:>2} {step.name:<{width}}")
            done = 100.0 if step.status is JobStatus.FINISHED else step.progress
            self._update(step.index, step.status, done, fmt_duration(step.duration_s))
            if self._told.get(step.index, step.status) != step.status:
                lines.append(Text(f"step {step.index} {step.name} ") + status_text(step.status))
            self._told[step.index] = step.status
        self._update(None, job.status, job.progress, fmt_duration(job.duration_s))
        if self._told.get(None) != job.status:
            job_line = Text("job ") + status_text(job.status)
            lines = [*lines, job_line] if job.status.final else [job_line, *lines]
        self._told[None] = job.status
        for line in lines:
            self._say(line)

    def apply(self, event: dict[str, Any]) -> bool:
        """Move the bars to a `job` event; True if it tells of a change of status (worth a fetch)."""
        changed = False
        status = event.get("status")
        if isinstance(status, str):
            changed = status != self._seen.get(None)
            self._update(None, status, _number(event.get("progress")), None)
        step = event.get("step")
        if isinstance(step, dict) and isinstance(step.get("index"), int) and isinstance(step.get("status"), str):
            index, step_status = step["index"], step["status"]
            changed = changed or step_status != self._seen.get(index)
            done = 100.0 if step_status == JobStatus.FINISHED else _number(step.get("progress"))
            self._update(index, step_status, done, None)
        return changed

    def note(self, message: str) -> None:
        """Print a timestamped line above the bars."""
        self._say(Text(message, style="yellow"))

    def _say(self, line: Text) -> None:
        self.out.print(Text(time.strftime("%H:%M:%S "), style="dim") + line)

    def _add(self, label: str) -> TaskID:
        return self.progress.add_task(label, total=100, status="", duration="")

    def _update(self, key: int | None, status: str, progress: float | None, duration: str | None) -> None:
        self._seen[key] = status
        task = self._tasks.get(key)
        if task is None:  # a step the fetched job has not shown yet
            return
        fields: dict[str, Any] = {"status": status_text(status).markup}
        if duration is not None:
            fields["duration"] = duration
        if progress is not None:
            fields["completed"] = progress
        self.progress.update(task, **fields)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def follow(
    job_id: str,
    fetch: Callable[[], Job],
    source: EventSource | None,
    view: WatchView,
    poll_s: float = DEFAULT_POLL_S,
    until: frozenset[JobStatus] = ENDED,
) -> Job:
    """Keep `view` up to date with the job until its status is in `until`, and return it as it ended.

    The bars move with each of the job's events from `source`; the job is fetched again on every change of
    status an event tells of, and at the latest every `poll_s` seconds (every `DEGRADED_POLL_S` while the
    events do not flow), so the display is right even when events are missed. An API that stops answering is
    retried at each poll for `UNREACHABLE_S` before `Unreachable` is raised. Raises `JobGone` if the job is
    deleted meanwhile.
    """

    def fetch_shown() -> Job:
        try:
            job = fetch()
        except ApiError as exc:
            if exc.status == 404 and not exc.missing_route:
                raise JobGone(f"job {job_id} no longer exists (deleted)") from exc
            raise
        view.show(job)
        return job

    job = fetch_shown()
    if job.status in until:
        return job
    pump = EventPump(source, job.project, job.id) if source is not None else None
    if pump is not None:
        pump.start()
    unreachable_since: float | None = None
    try:
        last_fetch = time.monotonic()
        while job.status not in until:
            interval = poll_s if pump is not None and pump.live else min(poll_s, DEGRADED_POLL_S)
            wait = min(WAKE_S, max(0.0, last_fetch + interval - time.monotonic()))
            event = None
            if pump is not None:
                event = pump.get(wait)
            else:
                time.sleep(wait)
            changed = False
            if event is not None:
                if event.get("deleted"):
                    raise JobGone(f"job {job_id} was deleted")
                changed = view.apply(event)
            if changed or time.monotonic() - last_fetch >= interval:
                last_fetch = time.monotonic()
                try:
                    job = fetch_shown()
                    unreachable_since = None
                except Unreachable as exc:  # e.g. the API restarting: keep the bars, try again at the next poll
                    if unreachable_since is None:
                        unreachable_since = last_fetch
                        view.note(f"{exc.message}; retrying for up to {UNREACHABLE_S:.0f}s")
                    elif last_fetch - unreachable_since > UNREACHABLE_S:
                        raise
    finally:
        if pump is not None:
            pump.stop()
    return job


def run_watch(client: JobctlClient, job_ref: str, source: EventSource | None, poll_s: float) -> int:
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
        warn(f"job {job.id} failed{where}: {job.error or (failed.error if failed else None) or 'no reason given'}")
    else:
        warn(f"job {job.id} was discarded: {job.discard_reason or 'no reason given'}")
    return 1


@jobs_app.command("watch")
def jobs_watch(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(metavar="ID", help="The job's id (or the start of it).")],
    poll: Annotated[float, typer.Option(min=0.1, help="Seconds between fetches when no event arrives.")] = 2.0,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Follow a job with live progress bars until it is FINISHED (exit 0), ERROR or DISCARDED (exit 1)."""
    with connected(ctx, url, token) as client:
        code = run_watch(client, job_id, _connector(ctx).events or client.job_events, poll)
    raise typer.Exit(code)


# ------------------------------------------------------------------------------------------------ projects


@projects_app.command("list")
def projects_list(
    ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """List the projects you can see."""
    with connected(ctx, url, token) as client:
        projects = client.list_projects()
    if as_json:
        print_json([p.model_dump(mode="json") for p in projects])
        return
    console.print(projects_table(projects))


@projects_app.command("create")
def projects_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, _ and -.")],
    max_running: Annotated[int | None, typer.Option(min=1, help="RUNNING jobs allowed at once.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create a project (admins only)."""
    with connected(ctx, url, token) as client:
        project = client.create_project(name, max_running)
    if as_json:
        print_json(project.model_dump(mode="json"))
        return
    typer.echo(f"created project {project.name}")


# ------------------------------------------------------------------------------------------------ users

ROLES = ("viewer", "operator")


@contextmanager
def user_management(ctx: typer.Context, url: str, token: str | None) -> Iterator[JobctlClient]:
    """`connected`, with a clear message when the server has no `/api/v1/users` yet."""
    with connected(ctx, url, token) as client:
        try:
            yield client
        except ApiError as exc:
            if exc.missing_route:
                fail(f"the server at {client.url} does not offer user management (no /api/v1/users)")
            raise


def parse_roles(pairs: Sequence[str], *, allow_none: bool) -> dict[str, str | None]:
    """`project=role` pairs as a mapping; with `allow_none`, `project=none` (or `project=`) removes the role."""
    roles: dict[str, str | None] = {}
    for pair in pairs:
        project, sep, role = pair.partition("=")
        role = role.strip().lower()
        if not sep or not project:
            raise typer.BadParameter(f"{pair!r} is not project=role")
        if allow_none and role in ("", "none"):
            roles[project] = None
        elif role in ROLES:
            roles[project] = role
        else:
            choices = "viewer, operator" + (" or none" if allow_none else "")
            raise typer.BadParameter(f"{pair!r} is not project=role (role: {choices})")
    return roles


@users_app.command("list")
def users_list(
    ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = DEFAULT_URL, token: TokenOption = None
) -> None:
    """List the users (admins only)."""
    with user_management(ctx, url, token) as client:
        users = client.list_users()
    if as_json:
        print_json([u.model_dump(mode="json") for u in users])
        return
    console.print(users_table(users))


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    role: Annotated[list[str] | None, typer.Option(help="project=viewer|operator. Repeatable.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Create a user (admins only). Its token is the last line on stdout, shown only this once."""
    roles = {p: r for p, r in parse_roles(role or (), allow_none=False).items() if r is not None}
    with user_management(ctx, url, token) as client:
        user = client.create_user(name, admin=admin, roles=roles)
    if as_json:
        print_json(user.model_dump(mode="json"))
        return
    err_console.print(f"created user {user.name}; its token, shown only this once:", style="bold")
    typer.echo(user.token)


@users_app.command("grant")
def users_grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    roles: Annotated[list[str], typer.Argument(metavar="PROJECT=ROLE...", help="Role viewer, operator or none.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    token: TokenOption = None,
) -> None:
    """Set a user's role in projects (admins only); `project=none` takes the role away."""
    wanted = parse_roles(roles, allow_none=True)
    with user_management(ctx, url, token) as client:
        user = client.set_roles(name, wanted)
    if as_json:
        print_json(user.model_dump(mode="json") if user else None)
        return
    if user is None:
        changes = ", ".join(f"{p}={r or 'none'}" for p, r in wanted.items())
        typer.echo(f"{name}: {changes}")
    else:
        typer.echo(f"{user.name}: " + (", ".join(f"{p}={r}" for p, r in sorted(user.roles.items())) or "no roles"))
