"""What every client command (docs/contract.md §5.2) shares: its `--url`, `--token` and `--json` options, the
connection to the HTTP API through `jobctl.client.Client`, one line per client error, and `key=value` arguments.

Tests hand a `Connector` to the command as Click's context object (`CliRunner().invoke(app, args, obj=...)`)
to reach an in-process API and to replace the event stream `jobs watch` follows.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import typer

from jobctl.cli.output import fail
from jobctl.cli.watch import EventSource
from jobctl.client import Client, Conflict, Unauthorized
from jobctl.client import Error as ClientError

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


def connector(ctx: typer.Context) -> Connector:
    """The command's `Connector`: the one handed in as Click's context object, else the default."""
    found = ctx.find_object(Connector)
    return found if found is not None else Connector()


@contextmanager
def connected(ctx: typer.Context, url: str | None, token: str | None) -> Iterator[Client]:
    """A client for the command's duration; a `ClientError` escaping the block ends the command (exit 1)."""
    client = connector(ctx).client(url, token)
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
