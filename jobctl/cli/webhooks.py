"""`jobctl webhooks ...` (docs/contract.md §5.2): a project's webhooks and their delivery logs, over the HTTP API
through `jobctl.client`. `create` prints the new webhook's secret as its last line, the only time it is shown."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from jobctl.cli.connection import JsonOption, TokenOption, UrlOption, connected, wants_json
from jobctl.cli.output import console
from jobctl.cli.render import SHORT_ID, print_json, show_list, status_text
from jobctl.client import Delivery, Webhook

webhooks_app = typer.Typer(
    help="Create, list and delete a project's webhooks, and read their delivery logs (over the HTTP API).",
    no_args_is_help=True,
)

ProjectArgument = Annotated[str, typer.Argument(help="The project.")]
WebhookArgument = Annotated[str, typer.Argument(help="The webhook's id.")]


def webhooks_table(webhooks: Sequence[Webhook]) -> Table:
    """Webhooks: id, statuses, URL, when created."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True, min_width=32)  # whole: `webhooks delete` and `deliveries` take it
    table.add_column("STATUSES")
    table.add_column("URL", overflow="fold")
    table.add_column("CREATED", no_wrap=True)
    for hook in webhooks:
        created = hook.created_at.strftime("%Y-%m-%d %H:%M") if hook.created_at else "-"
        table.add_row(hook.id, ", ".join(hook.statuses), hook.url, created)
    return table


def deliveries_table(deliveries: Sequence[Delivery]) -> Table:
    """Deliveries: id and job (shortened: `--json` has them whole), event, state, attempts, the last answer or
    error, and when it is tried next or was delivered."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("DELIVERY", "JOB", "EVENT", "STATE", "TRIES", "LAST", "NEXT/DONE"):
        table.add_column(column, justify="right" if column == "TRIES" else "left", no_wrap=column != "LAST")
    for d in deliveries:
        last = d.last_error or (str(d.last_status) if d.last_status is not None else "-")
        when = d.delivered_at if d.status == "delivered" else d.next_attempt_at
        table.add_row(
            d.id[:SHORT_ID],
            d.job_id[:SHORT_ID],
            Text(f"{d.event.action} → ").append_text(status_text(d.event.to_status)),
            d.status,
            str(d.attempts),
            last,
            when.strftime("%H:%M:%S") if when else "-",
        )
    return table


@webhooks_app.command("list")
def webhooks_list(
    ctx: typer.Context,
    project: ProjectArgument,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """List the project's webhooks (never their secrets)."""
    with connected(ctx, url, token) as client:
        webhooks = client.webhooks.list(project)
    show_list(webhooks, webhooks_table, wants_json(ctx, as_json))


@webhooks_app.command("create")
def webhooks_create(
    ctx: typer.Context,
    project: ProjectArgument,
    target: Annotated[str, typer.Argument(metavar="URL", help="Where to POST: http:// or https://.")],
    status: Annotated[
        list[str], typer.Option("--status", help="A state whose arrival is delivered (repeatable; at least one).")
    ],
    secret: Annotated[str | None, typer.Option("--secret", help="Sign with this (16-256 characters).")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Create a webhook; prints its secret last, the only time it is shown."""
    with connected(ctx, url, token) as client:
        made = client.webhooks.create(project, target, [s.upper() for s in status], secret=secret)
    if wants_json(ctx, as_json):
        print_json(made.model_dump(mode="json"))
        return
    typer.echo(f"created webhook {made.id} in {project}: {','.join(made.statuses)} to {made.url}")
    typer.echo("its secret (shown only this once):")
    typer.echo(made.secret)


@webhooks_app.command("delete")
def webhooks_delete(
    ctx: typer.Context,
    project: ProjectArgument,
    webhook_id: WebhookArgument,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Delete a webhook with its delivery log: nothing more is sent to it."""
    with connected(ctx, url, token) as client:
        client.webhooks.delete(project, webhook_id)
    typer.echo(f"deleted webhook {webhook_id} in {project}")


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    ctx: typer.Context,
    project: ProjectArgument,
    webhook_id: WebhookArgument,
    status: Annotated[
        str | None, typer.Option("--status", help="Only deliveries in this state: pending, delivered, failed.")
    ] = None,
    page: Annotated[int, typer.Option("--page", min=1)] = 1,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=200)] = 50,
    as_json: JsonOption = False,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """One page of the webhook's delivery log, newest first."""
    with connected(ctx, url, token) as client:
        found = client.webhooks.deliveries(project, webhook_id, status=status, page=page, page_size=page_size)
    if wants_json(ctx, as_json):
        print_json(found.model_dump(mode="json", by_alias=True))
        return
    console.print(deliveries_table(found.items))
    typer.echo(f"{len(found.items)} of {found.total} deliveries (page {found.page})")
