"""The client half of the `jobctl` command (docs/contract.md §5): `jobctl jobs ...`, `jobctl projects ...`,
`jobctl users ...`, `jobctl targets ...`, `jobctl types`.

Every command talks to the HTTP API through `jobctl.client.Client` at `--url` (JOBCTL_URL; default the local
API on JOBCTL_API_PORT) with `--token` (JOBCTL_TOKEN), prints Rich tables (or the API's JSON with `--json`,
before or after the command), and ends with exit status 1 after any error or refused operation, the reason on
stderr as `jobctl: ...`. Output meant for scripts (a new job's id, a
new user's token) is the last line on stdout; everything else a person reads goes around it.

Tests hand a `Connector` to the command as Click's context object (`CliRunner().invoke(app, args, obj=...)`)
to reach an in-process API and to replace the event stream `jobs watch` follows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.text import Text

from jobctl import states
from jobctl.api.cli_render import (
    console,
    err_console,
    fail,
    fmt_duration,
    fmt_error,
    job_details,
    jobs_table,
    page_line,
    print_json,
    projects_table,
    show_list,
    status_text,
    steps_table,
    targets_table,
    types_table,
    users_table,
    warn,
)
from jobctl.api.cli_watch import DEFAULT_POLL_S, EventSource, JobGone, WatchView, follow
from jobctl.api.schemas import JobSort, Period
from jobctl.client import (
    OPERATIONS,
    ApiError,
    Client,
    Conflict,
    JobDiscarded,
    JobFailed,
    JobHandle,
    JobQuery,
    JobStatus,
    NotFound,
    Unauthorized,
    Unreachable,
)
from jobctl.client import Error as ClientError

jobs_app = typer.Typer(help="List, show, submit, operate and watch jobs (over the HTTP API).", no_args_is_help=True)
projects_app = typer.Typer(help="List and create projects (over the HTTP API).", no_args_is_help=True)
users_app = typer.Typer(help="List, create and grant roles to users (over the HTTP API).", no_args_is_help=True)

T = TypeVar("T")


# ------------------------------------------------------------------------------------------------ connection

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="JOBCTL_URL",
        show_default="http://127.0.0.1:$JOBCTL_API_PORT (8000)",
        help="The jobctl API's address.",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="JOBCTL_TOKEN", show_default=False, help="Your API token (never printed)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of a table.")]


def wants_json(ctx: typer.Context, as_json: bool) -> bool:
    """`--json` after the command, or before it (`jobctl --json jobs list`)."""
    return as_json or bool(ctx.meta.get("json"))


@dataclass
class Connector:
    """How the commands reach the API: a given `httpx.Client` (e.g. a `TestClient`) or a new one to `--url`,
    and the source of live job events (default: the API's `GET /api/v1/events` stream)."""

    http: httpx.Client | None = None
    events: EventSource | None = None

    def client(self, url: str | None, token: str | None) -> Client:
        """A client of the API for this command (`url` None: JOBCTL_URL, else the local API), sending `token`."""
        return Client(url, token, http=self.http)


def _connector(ctx: typer.Context) -> Connector:
    found = ctx.find_object(Connector)
    return found if found is not None else Connector()


@contextmanager
def connected(ctx: typer.Context, url: str | None, token: str | None) -> Iterator[Client]:
    """A client for the command's duration; a `ClientError` escaping the block ends the command (exit 1)."""
    client = _connector(ctx).client(url, token)
    try:
        yield client
    except ClientError as exc:
        fail(describe(exc))
    finally:
        client.close()


def describe(exc: ClientError) -> str:
    """One line for a person: the API's message, with a hint where one helps."""
    if isinstance(exc, Unauthorized):
        return f"{exc.message} (give --token or set JOBCTL_TOKEN)"
    if isinstance(exc, Conflict) and exc.status is not None:
        allowed = ", ".join(exc.allowed) or "nothing"
        return f"{exc.message} (allowed now: {allowed})"
    return exc.message


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
            code = run_watch(client, job.id, _connector(ctx).events or client.job_events, DEFAULT_POLL_S)
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


PAST = {"pause": "paused", "resume": "resumed", "restart": "restarted", "discard": "discarded", "delete": "deleted"}


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
        code = run_watch(client, job_id, _connector(ctx).events or client.job_events, poll)
    raise typer.Exit(code)


# ------------------------------------------------------------------------------------------------ projects


@projects_app.command("list")
def projects_list(
    ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None, token: TokenOption = None
) -> None:
    """List the projects you can see."""
    with connected(ctx, url, token) as client:
        projects = client.list_projects()
    show_list(projects, projects_table, wants_json(ctx, as_json))


@projects_app.command("create")
def projects_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Lower-case letters, digits, _ and -.")],
    max_running: Annotated[int | None, typer.Option(min=1, help="RUNNING jobs allowed at once.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a project (admins only)."""
    with connected(ctx, url, token) as client:
        project = client.create_project(name, max_running)
    if wants_json(ctx, as_json):
        print_json(project.model_dump(mode="json"))
        return
    typer.echo(f"created project {project.name}")


# ------------------------------------------------------------------------------------------------ users

ROLES = ("viewer", "operator")


@contextmanager
def user_management(ctx: typer.Context, url: str | None, token: str | None) -> Iterator[Client]:
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
    ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None, token: TokenOption = None
) -> None:
    """List the users (admins only)."""
    with user_management(ctx, url, token) as client:
        users = client.list_users()
    show_list(users, users_table, wants_json(ctx, as_json))


@users_app.command("create")
def users_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new user's name.")],
    admin: Annotated[bool, typer.Option("--admin", help="Make the user an administrator.")] = False,
    role: Annotated[list[str] | None, typer.Option(help="project=viewer|operator. Repeatable.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a user (admins only). Its token is the last line on stdout, shown only this once."""
    roles = {p: r for p, r in parse_roles(role or (), allow_none=False).items() if r is not None}
    with user_management(ctx, url, token) as client:
        user = client.create_user(name, admin=admin, roles=roles)
    if wants_json(ctx, as_json):
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
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Set a user's role in projects (admins only); `project=none` takes the role away."""
    wanted = parse_roles(roles, allow_none=True)
    with user_management(ctx, url, token) as client:
        user = client.set_roles(name, wanted)
    if wants_json(ctx, as_json):
        print_json(user.model_dump(mode="json") if user else None)
        return
    if user is None:
        changes = ", ".join(f"{p}={r or 'none'}" for p, r in wanted.items())
        typer.echo(f"{name}: {changes}")
    else:
        typer.echo(f"{user.name}: " + (", ".join(f"{p}={r}" for p, r in sorted(user.roles.items())) or "no roles"))


# ------------------------------------------------------------------------------------------------ targets

targets_app = typer.Typer(
    help="List, put and delete a project's record targets (over the HTTP API).", no_args_is_help=True
)


def parse_attributes(pairs: Sequence[str], attributes_json: str | None) -> dict[str, Any]:
    """`--attributes-json` overlaid with each `--attr key=value` (values as in `--param`)."""
    return parse_params(pairs, attributes_json) or {}


@targets_app.command("list")
def targets_list(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the project's record targets with their versions."""
    with connected(ctx, url, token) as client:
        targets = client.targets.list(project)
    show_list(targets, targets_table, wants_json(ctx, as_json))


@targets_app.command("put")
def targets_put(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    name: Annotated[str, typer.Argument(help="The target's name.")],
    attr: Annotated[
        list[str] | None, typer.Option("--attr", help="key=value (value: JSON or text). Repeatable.")
    ] = None,
    attributes_json: Annotated[str | None, typer.Option("--attributes-json", help="All attributes as JSON.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create or change a record target; a change raises its version and discards the jobs working on it."""
    attributes = parse_attributes(attr or (), attributes_json)
    with connected(ctx, url, token) as client:
        target = client.targets.put(project, name, attributes)
    if wants_json(ctx, as_json):
        print_json(target.model_dump(mode="json"))
        return
    typer.echo(f"{target.kind} {target.name} in {project}: version {target.version}")


@targets_app.command("delete")
def targets_delete(
    ctx: typer.Context,
    project: Annotated[str, typer.Argument(help="The project.")],
    name: Annotated[str, typer.Argument(help="The target's name.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a record target; its unfinished jobs are discarded."""
    with connected(ctx, url, token) as client:
        deleted = client.targets.delete(project, name)
    if wants_json(ctx, as_json):
        print_json(deleted.model_dump(mode="json") if deleted else None)
        return
    discarded = deleted.discarded if deleted else []
    typer.echo(f"deleted record {name} in {project}" + (f"; discarded {', '.join(discarded)}" if discarded else ""))


# ------------------------------------------------------------------------------------------------ types


def types_command(
    ctx: typer.Context, as_json: JsonOption = False, url: UrlOption = None, token: TokenOption = None
) -> None:
    """List the job types the server knows: steps, target kind, exclusivity."""
    with connected(ctx, url, token) as client:
        types = client.types()
    show_list(types, types_table, wants_json(ctx, as_json))
