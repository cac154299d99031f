"""`jobctl projects ...`, `jobctl users ...`, `jobctl targets ...` and `jobctl types` (docs/contract.md §5.2):
the projects, their users' roles and record targets, and the job types, over the HTTP API. Like the job
commands: tables or `--json`, exit status 1 after an error with the reason on stderr, and a new user's token
as the last line on stdout."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from jobctl.cli.connection import JsonOption, TokenOption, UrlOption, connected, parse_params, wants_json
from jobctl.cli.render import (
    err_console,
    fail,
    print_json,
    projects_table,
    show_list,
    targets_table,
    types_table,
    users_table,
)
from jobctl.client import ApiError, Client

projects_app = typer.Typer(help="List and create projects (over the HTTP API).", no_args_is_help=True)
users_app = typer.Typer(help="List, create and grant roles to users (over the HTTP API).", no_args_is_help=True)


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
