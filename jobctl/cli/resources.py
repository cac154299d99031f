"""`jobctl projects ...`, `jobctl users ...`, `jobctl targets ...` and `jobctl types` (docs/contract.md §5.2):
the projects, their users (their roles, disabling, deleting) and record targets, and the job types, over the
HTTP API. Like the job commands: tables or `--json`, exit status 1 after an error with the reason on stderr,
and a new user's token as the last line on stdout. A deletion asks first, unless `--yes`; with no terminal to
ask on, it is refused. (`jobctl tokens ...` and `jobctl audit` are accounts.py's.)"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Annotated, Any

import typer

from jobctl.cli.connection import JsonOption, TokenOption, UrlOption, connected, parse_params, wants_json
from jobctl.cli.output import err_console, fail
from jobctl.cli.render import print_json, projects_table, show_list, targets_table, types_table, users_table
from jobctl.client import ApiError, Client, User

projects_app = typer.Typer(help="List, create, change and delete projects (over the HTTP API).", no_args_is_help=True)
users_app = typer.Typer(
    help="List, create, grant roles to, disable and delete users (over the HTTP API).", no_args_is_help=True
)

YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@contextmanager
def offered(ctx: typer.Context, url: str | None, token: str | None, feature: str) -> Iterator[Client]:
    """`connected`, with a clear message when the server has no route for what the command does (an older
    server): `the server at URL does not offer <feature>`."""
    with connected(ctx, url, token) as client:
        try:
            yield client
        except ApiError as exc:
            if exc.missing_route:
                fail(f"the server at {client.url} does not offer {feature}")
            raise


def interactive() -> bool:
    """Whether someone can be asked: stdin is a terminal."""
    return sys.stdin.isatty()


def confirm(action: str, yes: bool) -> None:
    """Go on when `yes`, or when the person at the terminal answers yes to `<action>?`; otherwise end the
    command with exit status 1 - at once, without asking, when stdin is not a terminal."""
    if yes:
        return
    if not interactive():
        fail(f"not going to {action} without confirmation (no terminal to ask on): give --yes")
    if not typer.confirm(f"{action[:1].upper()}{action[1:]}? This cannot be undone.", default=False, err=True):
        fail(f"did not {action}")


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


#: what a server without `PATCH` and `DELETE /api/v1/projects/NAME` does not offer
PROJECT_CHANGES = "changing or deleting projects (no PATCH or DELETE /api/v1/projects/NAME)"


@projects_app.command("set")
def projects_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The project.")],
    max_running: Annotated[int | None, typer.Option(min=1, help="RUNNING jobs allowed at once.")] = None,
    default_max_running: Annotated[
        bool, typer.Option("--default-max-running", help="Go back to the server's default limit.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Change a project's limit of RUNNING jobs (admins only): --max-running N, or --default-max-running."""
    if (max_running is None) != default_max_running:
        raise typer.BadParameter("give either --max-running N or --default-max-running")
    with offered(ctx, url, token, PROJECT_CHANGES) as client:
        project = client.update_project(name, max_running=max_running)
    if wants_json(ctx, as_json):
        print_json(project.model_dump(mode="json"))
        return
    limit = "the default" if project.max_running is None else str(project.max_running)
    typer.echo(f"project {project.name}: max running {limit}")


@projects_app.command("delete")
def projects_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The project.")],
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a project (admins only); refused while it holds a job that is not FINISHED or DISCARDED."""
    confirm(f"delete project {name}", yes)
    with offered(ctx, url, token, PROJECT_CHANGES) as client:
        client.delete_project(name)
    typer.echo(f"deleted project {name}")


# ------------------------------------------------------------------------------------------------ users

ROLES = ("viewer", "operator")


#: what a server without the user routes of the account lifecycle does not offer
USER_CHANGES = "changing or deleting users (no PATCH or DELETE /api/v1/users/NAME)"


def user_management(ctx: typer.Context, url: str | None, token: str | None) -> AbstractContextManager[Client]:
    """`offered`, for a server that may have no `/api/v1/users` yet."""
    return offered(ctx, url, token, "user management (no /api/v1/users)")


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
    set_roles(ctx, name, parse_roles(roles, allow_none=True), wants_json(ctx, as_json), url, token)


@users_app.command("revoke-role")
def users_revoke_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    projects: Annotated[list[str], typer.Argument(metavar="PROJECT...", help="The projects to take the role in.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Take a user's role away in projects (admins only): the same as `grant NAME PROJECT=none...`."""
    set_roles(ctx, name, dict.fromkeys(projects), wants_json(ctx, as_json), url, token)


def set_roles(
    ctx: typer.Context, name: str, wanted: dict[str, str | None], as_json: bool, url: str | None, token: str | None
) -> None:
    """Send the role changes; print the user's roles as they are now (or the changes, from an older server
    that does not answer the user)."""
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


def update_user(
    ctx: typer.Context,
    name: str,
    as_json: bool,
    url: str | None,
    token: str | None,
    said: Callable[[User], str],
    *,
    disabled: bool | None = None,
    admin: bool | None = None,
) -> None:
    """Change the user's flags; print the user as JSON, or the line `said` makes of it."""
    with offered(ctx, url, token, USER_CHANGES) as client:
        user = client.update_user(name, disabled=disabled, admin=admin)
    if as_json:
        print_json(user.model_dump(mode="json"))
    else:
        typer.echo(said(user))


@users_app.command("disable")
def users_disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Disable a user (admins only): their tokens are refused until `enable`. Refused for the last enabled admin."""
    update_user(ctx, name, wants_json(ctx, as_json), url, token, lambda u: f"disabled user {u.name}", disabled=True)


@users_app.command("enable")
def users_enable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Enable a disabled user again (admins only)."""
    update_user(ctx, name, wants_json(ctx, as_json), url, token, lambda u: f"enabled user {u.name}", disabled=False)


@users_app.command("set")
def users_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    admin: Annotated[
        bool | None, typer.Option("--admin/--no-admin", show_default=False, help="Make the user an admin, or not.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Make a user an admin or not (admins only); refused if it would leave no enabled admin."""
    if admin is None:
        raise typer.BadParameter("give --admin or --no-admin")

    def said(user: User) -> str:
        return f"{user.name}: {'admin' if user.admin else 'not an admin'}"

    update_user(ctx, name, wants_json(ctx, as_json), url, token, said, admin=admin)


@users_app.command("delete")
def users_delete(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user.")],
    yes: YesOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a user (admins only); refused for the last enabled admin. Asks first unless --yes."""
    confirm(f"delete user {name}", yes)
    with offered(ctx, url, token, USER_CHANGES) as client:
        client.delete_user(name)
    typer.echo(f"deleted user {name}")


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
