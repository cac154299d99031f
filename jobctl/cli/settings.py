"""The settings of a `jobctl` command that runs a service (docs/contract.md §6): read when the command runs,
never at import time; a bad setting, an unsafe one or a plugin that cannot be imported ends the command with
one line on stderr and exit status 2."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import ValidationError

from jobctl.cli.output import fail
from jobctl.scheduler.settings import Settings, get_settings


def load_settings() -> Settings:
    """The settings of this process, or exit 2 with a one-line reason when they are invalid or unsafe, or when
    a plugin they name (JOBCTL_PLUGINS) cannot be imported."""
    # Imported here, not at the top: `jobctl --help` and the client commands do not load the job-type registry.
    from jobctl.workers.registry import PluginError, load_plugins

    try:
        settings = get_settings()
        settings.check_safe()
    except ValidationError as exc:
        fail(f"invalid settings: {describe_validation_error(exc)}", code=2)
    except ValueError as exc:
        fail(f"unsafe settings: {exc}", code=2)
    try:
        load_plugins(settings.plugins)
    except PluginError as exc:
        fail(" ".join(str(exc).split()), code=2)  # one line, whatever the plugin's error says
    return settings


def describe_validation_error(exc: ValidationError) -> str:
    """`JOBCTL_NAME: what is wrong` for each bad setting, on one line (values are not shown: some are secrets)."""
    parts = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        parts.append(f"JOBCTL_{name}: {error['msg']}" if name else str(error["msg"]))
    return "; ".join(parts)


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***`, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
