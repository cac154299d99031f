"""The consoles of the `jobctl` command and its `jobctl: ...` error line: what every command prints with, the
services' commands included (they load nothing of the client's)."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.text import Text

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `jobctl: message` on stderr and end the command with `code`."""
    warn(message)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """Print `jobctl: message` on stderr."""
    err_console.print(Text(f"jobctl: {message}", style="bold red"), soft_wrap=True)
