"""`jobctl tokens ...` and `jobctl audit` (over the HTTP API): named API tokens - your own, or any user's for an
admin - and the audit log of who changed what. Like the other client commands: tables or `--json`, exit status 1
after an error with the reason on stderr, and a new token as the last line on stdout, shown only this once.

Times are given as a duration (`30d`, `12h`: from now for `--expires`, back from now for `--since`) or as an
ISO-8601 time (local time unless it names its offset)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

import typer
from rich.text import Text

from jobctl.cli.connection import JsonOption, TokenOption, UrlOption, wants_json
from jobctl.cli.output import console, err_console
from jobctl.cli.render import audit_table, fmt_time, page_line, print_json, show_list, tokens_table
from jobctl.cli.resources import offered

tokens_app = typer.Typer(
    help="Create, list and revoke API tokens: yours, or any user's with --user (over the HTTP API).",
    no_args_is_help=True,
)

#: a duration's units: seconds, minutes, hours, days, weeks
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"(\d+)\s*([smhdw])")
WHEN_HELP = "a duration (30d, 12h, 90m, 2w) or an ISO-8601 time"
#: what a server without named tokens does not offer
TOKENS = "token management (no /api/v1/me/tokens, /api/v1/users/NAME/tokens)"

UserOption = Annotated[
    str | None,
    typer.Option("--user", "-u", show_default=False, help="Whose tokens (admins only); default: your own."),
]


def parse_when(text: str, option: str) -> datetime | timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w`: a duration (more than nothing); anything else: an ISO-8601 date or time
    (`2026-07-01`, `2026-07-01T12:00`, `...Z`, `...+02:00`; without an offset, local time). A usage error naming
    `option` when it is neither."""
    value = text.strip()
    duration = DURATION.fullmatch(value.lower())
    if duration is not None:
        seconds = int(duration[1]) * UNITS[duration[2]]
        if seconds == 0:
            raise typer.BadParameter(f"{text!r} is no time at all", param_hint=option)
        return timedelta(seconds=seconds)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is neither {WHEN_HELP}", param_hint=option) from None


def whose(user: str | None) -> str:
    """`your` or `bob's`."""
    return "your" if user is None else f"{user}'s"


@tokens_app.command("create")
def tokens_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name, one per user (e.g. laptop, ci).")],
    user: UserOption = None,
    expires: Annotated[
        str | None,
        typer.Option(
            metavar="30d|12h|ISO-8601",
            show_default="never",
            help="When it expires: a duration from now (30d, 12h, 90m, 2w) or an ISO-8601 time.",
        ),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a named token, yours or --user's (admins only). It is the last line on stdout, shown only this once."""
    expires_at = parse_when(expires, "--expires") if expires else None
    with offered(ctx, url, token, TOKENS) as client:
        created = client.create_token(name, user=user, expires_at=expires_at)
    if wants_json(ctx, as_json):
        print_json(created.model_dump(mode="json"))
        return
    until = f"expires {fmt_time(created.expires_at)}" if created.expires_at else "never expires"
    err_console.print(
        Text(f"created {whose(user)} token {created.name} ({until}); shown only this once:", style="bold"),
        soft_wrap=True,
    )
    typer.echo(created.token)


@tokens_app.command("list")
def tokens_list(
    ctx: typer.Context,
    user: UserOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List your tokens, or --user's (admins only): names, prefixes, times - never their values."""
    with offered(ctx, url, token, TOKENS) as client:
        tokens = client.list_tokens(user=user)
    show_list(tokens, tokens_table, wants_json(ctx, as_json))


@tokens_app.command("revoke")
def tokens_revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The token's name.")],
    user: UserOption = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Revoke one of your tokens, or of --user's (admins only): it is refused from then on."""
    with offered(ctx, url, token, TOKENS) as client:
        client.revoke_token(name, user=user)
    typer.echo(f"revoked {whose(user)} token {name}")


def audit_command(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only what this user did.")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action (user.create, token.revoke, ...), or all of a kind (user.).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(metavar="ISO|7d", help="Only since then: a duration back from now (7d, 12h) or an ISO-8601 time."),
    ] = None,
    page: Annotated[int, typer.Option(min=1)] = 1,
    page_size: Annotated[int, typer.Option(min=1)] = 50,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """One page of the audit log (admins only): who did what to what, from where, and how it ended."""
    start = parse_when(since, "--since") if since else None
    with offered(ctx, url, token, "an audit log (no /api/v1/audit)") as client:
        answer = client.audit(actor=actor, action=action, since=start, page=page, page_size=page_size)
    if wants_json(ctx, as_json):
        print_json(answer.model_dump(mode="json"))
        return
    console.print(audit_table(answer.items))
    console.print(page_line(answer.total, answer.page, answer.page_size, ("entry", "entries")), style="dim")
