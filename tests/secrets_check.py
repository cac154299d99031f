"""A pytest plugin: no secret the run used may appear in any log line the run wrote (issue 5, part 8).

Registered from `tests/conftest.py` (`pytest_plugins`). During the session it collects:

- the secrets: the admin token and the Flower password of every `Settings` a fixture makes, every token the API
  hands out (`POST /api/v1/users`, `POST .../tokens`, seen in every httpx client of the test process:
  `TestClient`, the integration tests' clients, the CLI's), the tokens `bootstrap_admin` generates and the ones
  `jobctl up` generates;
- the log records of this process (the in-process API, the domain, the workers' code): jobctl's loggers are
  captured from INFO, everything else at the level it is emitted.

At the end of the session it scans those records and every `*.log` file under pytest's base temporary
directory (where the integration harness writes the subprocesses' output: tests/integration/system.py). A hit
fails the session (exit status 1) with the file and line of each leak; the secret itself is never printed, only
its length and a hash prefix. `scan_text`/`scan_files` are the scanning functions, tested on their own in
tests/repo/test_secrets_check.py.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import re
import sys
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

#: shorter strings are not secrets worth the false alarms (user names, "admin")
MIN_SECRET_LENGTH = 8
#: jobctl's own loggers, captured from INFO even though the root logger's level is WARNING under pytest
JOBCTL_LOGGERS = ("jobctl",)
#: how many in-process records are kept for the final scan (a runaway loop should not eat the memory)
MAX_RECORDS = 500_000

SECRETS: set[str] = set()
RECORDS: list[tuple[str, str]] = []  # (where, formatted record)


def remember(secret: str | None) -> None:
    """Add a secret the run uses; None, empty and short strings are ignored."""
    if secret and len(secret) >= MIN_SECRET_LENGTH:
        SECRETS.add(secret)


def redact(secret: str) -> str:
    """How a secret is named in a report: its length and a hash prefix, never any of its characters."""
    return f"<secret of {len(secret)} chars, sha256 {hashlib.sha256(secret.encode()).hexdigest()[:10]}>"


@dataclass(frozen=True)
class Leak:
    """A secret found in a log: where (a file or the in-process records), the line (from 1) and which secret."""

    where: str
    line: int
    secret: str

    def __str__(self) -> str:
        return f"{self.where}:{self.line}: {redact(self.secret)}"


def _pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    unique = sorted({s for s in secrets if s}, key=len, reverse=True)  # longest first: report the whole secret
    return re.compile("|".join(re.escape(s) for s in unique)) if unique else None


def scan_text(text: str, secrets: Iterable[str], where: str) -> list[Leak]:
    """Every occurrence of any of `secrets` in `text`, with its line number."""
    pattern = _pattern(secrets)
    if pattern is None:
        return []
    leaks: list[Leak] = []
    for match in pattern.finditer(text):
        leaks.append(Leak(where, text.count("\n", 0, match.start()) + 1, match.group()))
    return leaks


def scan_files(paths: Iterable[Path], secrets: Iterable[str]) -> list[Leak]:
    """Every occurrence of any of `secrets` in the files (read as UTF-8, undecodable bytes replaced)."""
    wanted = list(secrets)
    leaks: list[Leak] = []
    for path in paths:
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError:  # removed meanwhile: nothing left to leak
            continue
        leaks.extend(scan_text(text, wanted, str(path)))
    return leaks


def log_files(root: Path) -> list[Path]:
    """The log files under `root` (`*.log`, at any depth), sorted."""
    return sorted(p for p in root.rglob("*.log") if p.is_file()) if root.is_dir() else []


def scan_records(records: Iterable[tuple[str, str]], secrets: Iterable[str]) -> list[Leak]:
    """Every occurrence of any of `secrets` in the captured in-process log records (numbered from 1)."""
    pattern = _pattern(secrets)
    if pattern is None:
        return []
    leaks: list[Leak] = []
    for number, (where, line) in enumerate(records, start=1):
        leaks.extend(Leak(f"log record {number} ({where})", 1, m.group()) for m in pattern.finditer(line))
    return leaks


def report(leaks: list[Leak]) -> str:
    """The message that fails the session."""
    shown = "\n".join(f"  {leak}" for leak in leaks[:50])
    more = f"\n  ... and {len(leaks) - 50} more" if len(leaks) > 50 else ""
    return f"{len(leaks)} secret(s) found in log output (tokens and passwords must never be logged):\n{shown}{more}"


# ------------------------------------------------------------------------------------------ collecting


class _Capture(logging.Handler):
    """Keeps a formatted copy of every record it sees once (it sits on several loggers of one hierarchy)."""

    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "_jobctl_secrets_seen", False) or len(RECORDS) >= MAX_RECORDS:
            return
        record._jobctl_secrets_seen = True
        with contextlib.suppress(Exception):  # a record that cannot be formatted cannot leak through a handler
            RECORDS.append((record.name, self.format(record)))


_CAPTURE = _Capture()
_UNDO: list[Callable[[], None]] = []


def _tokens_from(request: httpx.Request, response: httpx.Response) -> None:
    """Remember the token the API just handed out (a new user's, or a new named token), or a webhook's secret."""
    if request.method != "POST" or response.status_code != 201:
        return
    path = request.url.path.rstrip("/")
    if not (path.endswith("/api/v1/users") or path.endswith("/tokens") or path.endswith("/webhooks")):
        return
    try:
        body = response.json()
    except (ValueError, httpx.ResponseNotRead):
        return
    if isinstance(body, dict):
        remember(body.get("token"))
        remember(body.get("secret"))  # a webhook's signing secret


def _wrap_send(cls: type[Any]) -> None:
    original = cls.send

    if cls is httpx.AsyncClient:

        @functools.wraps(original)
        async def send_async(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
            response = await original(self, request, *args, **kwargs)
            _tokens_from(request, response)
            return response

        cls.send = send_async
    else:

        @functools.wraps(original)
        def send(self: Any, request: httpx.Request, *args: Any, **kwargs: Any) -> httpx.Response:
            response = original(self, request, *args, **kwargs)
            _tokens_from(request, response)
            return response

        cls.send = send
    _UNDO.append(lambda: setattr(cls, "send", original))


def _wrap_result(module: Any, name: str, collect: Callable[[Any], None]) -> None:
    """Replace `module.name` by a function that hands each result to `collect` before returning it."""
    original = getattr(module, name)

    @functools.wraps(original)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        collect(result)
        return result

    setattr(module, name, wrapped)
    _UNDO.append(lambda: setattr(module, name, original))


def _from_dev_secrets(result: Any) -> None:
    _env, dev = result
    remember(dev.admin_token)
    remember(dev.flower_password)


def pytest_configure(config: pytest.Config) -> None:
    from jobctl.api import app as api_app
    from jobctl.cli import dev_secrets

    _wrap_send(httpx.Client)
    _wrap_send(httpx.AsyncClient)
    _wrap_result(api_app, "bootstrap_admin", remember)
    _wrap_result(dev_secrets, "child_environment", _from_dev_secrets)
    root = logging.getLogger()
    root.addHandler(_CAPTURE)
    _UNDO.append(lambda: root.removeHandler(_CAPTURE))
    for name in JOBCTL_LOGGERS:
        logger = logging.getLogger(name)
        logger.addHandler(_CAPTURE)  # also when a test replaces the root's handlers (jobctl.logs.configure)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
            _UNDO.append(functools.partial(logger.setLevel, logging.NOTSET))
        _UNDO.append(functools.partial(logger.removeHandler, _CAPTURE))


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    """Remember the secrets of every `Settings` a fixture makes (the admin token, the Flower password)."""
    result = yield
    from jobctl.scheduler.settings import Settings

    if isinstance(result, Settings):
        remember(result.admin_token)
        remember(result.flower_password)
    return result


#: under pytest-xdist, on the controller: what the workers sent (each knows only the secrets its own tests used)
WORKER_SECRETS: set[str] = set()
WORKER_REPORTS: list[str] = []  # the leaks each found in its in-process records
WORKER_RECORDS: list[int] = []


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """Under pytest-xdist, on the controller: keep a finished worker's secrets and what it found in its records."""
    output = getattr(node, "workeroutput", {})
    WORKER_SECRETS.update(output.get("secrets", ()))
    if output.get("record_leaks"):
        WORKER_REPORTS.append(str(output["record_leaks"]))
    WORKER_RECORDS.append(int(output.get("records", 0)))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Scan the run's log files and in-process records for the run's secrets; a leak fails the session.

    Under pytest-xdist each worker scans its own in-process records and hands the controller that report and
    its secrets; the controller scans every log file of the run (the workers' temporary directories are under
    its own) for the secrets of all the workers, then reports."""
    try:
        worker_output = getattr(session.config, "workeroutput", None)
        if worker_output is not None:  # an xdist worker: the controller scans the files and reports
            leaks = scan_records(RECORDS, SECRETS)
            worker_output.update(
                secrets=sorted(SECRETS), records=len(RECORDS), record_leaks=report(leaks) if leaks else ""
            )
            return
        secrets = SECRETS | WORKER_SECRETS
        factory = getattr(session.config, "_tmp_path_factory", None)
        root = factory.getbasetemp() if factory is not None else None
        files = log_files(root) if root is not None else []
        leaks = scan_records(RECORDS, secrets) + scan_files(files, secrets)
    finally:
        for undo in reversed(_UNDO):
            undo()
        _UNDO.clear()
    messages = ([report(leaks)] if leaks else []) + WORKER_REPORTS
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if not messages:
        if reporter is not None and session.config.get_verbosity() >= -1:
            scanned = f"{len(files)} log file(s) and {len(RECORDS) + sum(WORKER_RECORDS)} in-process record(s)"
            reporter.write("\n")
            reporter.write_line(f"secrets check: none of {len(secrets)} secret(s) in {scanned}")
        return
    message = "\n".join(messages)
    if reporter is not None:
        reporter.write("\n")
        reporter.write_sep("=", "secrets in logs", red=True, bold=True)
        reporter.write_line(message)
    else:
        print(message, file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
