"""The `jobctl` command: the services (docs/contract.md §5) and `jobctl up`, the whole system in the foreground.

Every command reads the settings when it runs (`get_settings()`), never at import time, and a bad setting
ends the command with a one-line message and exit status 2. `jobctl up` runs each service as a child process
(`python -m jobctl.api.cli <service>`) and owns their lives: one Ctrl-C or SIGTERM stops them all, and when one dies
on its own the others are stopped too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, NoReturn
from urllib.parse import unquote, urlsplit

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from jobctl.api.cli_client import jobs_app, projects_app, targets_app, types_command, users_app
from jobctl.scheduler.settings import Settings, get_settings

app = typer.Typer(
    name="jobctl",
    help="Run long, multi-step background jobs on Celery workers, and operate them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(jobs_app, name="jobs")
app.add_typer(projects_app, name="projects")
app.add_typer(users_app, name="users")
app.add_typer(targets_app, name="targets")
app.command("types")(types_command)


@app.callback()
def _options(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Client commands print the API's JSON.")] = False,
) -> None:
    """Run long, multi-step background jobs on Celery workers, and operate them."""
    ctx.meta["json"] = as_json


console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
DEV_SECRETS = Path("var/dev-secrets.json")


# ------------------------------------------------------------------------------------------------ settings


def load_settings() -> Settings:
    """The settings of this process, or exit 2 with a one-line reason when they are invalid or unsafe, or when
    a plugin they name (JOBCTL_PLUGINS) cannot be imported."""
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


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `jobctl: message` on stderr and end the command with `code`."""
    err_console.print(Text(f"jobctl: {message}", style="bold red"), soft_wrap=True)
    raise typer.Exit(code)


def mask_url(url: str) -> str:
    """`url` with its password replaced by `***`, for messages."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


# ------------------------------------------------------------------------------------------------ services


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version (safe to run repeatedly)."""
    settings = load_settings()
    migrate_database(settings)
    console.print(f"database {mask_url(settings.database_url)} is up to date")


def migrate_database(settings: Settings) -> None:
    """Run the migrations; exit 1 with a readable message when the database cannot be reached."""
    from sqlalchemy.exc import OperationalError

    from jobctl.scheduler.migrate import upgrade

    try:
        upgrade(settings.database_url)
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        fail(f"cannot migrate the database at {mask_url(settings.database_url)}: {reason}")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Address to listen on", show_default="JOBCTL_API_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on", show_default="JOBCTL_API_PORT")] = None,
) -> None:
    """Serve the HTTP API (and its docs at /docs) with uvicorn."""
    settings = load_settings()
    import uvicorn

    from jobctl.workers.logs import configure

    configure(settings.log_format, "api", settings.log_level)
    uvicorn.run(
        "jobctl.api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        timeout_graceful_shutdown=5,
        log_config=None,  # our root handler formats uvicorn's lines too
    )


@app.command()
def scheduler() -> None:
    """Run the scheduler: dispatches pending jobs, watches leases and targets, purges old jobs."""
    settings = load_settings()
    from jobctl.workers.entry import run_scheduler

    run_scheduler(settings)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Steps run at once", show_default="CPU count")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name, e.g. worker1@%h")] = None,
    loglevel: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Run a Celery worker that executes job steps."""
    settings = load_settings()
    from jobctl.workers.entry import run_worker

    run_worker(settings, concurrency=concurrency, hostname=hostname, loglevel=loglevel)


@app.command()
def flower(
    port: Annotated[int | None, typer.Option(help="Port to listen on", show_default="JOBCTL_FLOWER_PORT")] = None,
    host: Annotated[str, typer.Option(help="Address to bind (0.0.0.0 in a container)")] = "127.0.0.1",
) -> None:
    """Run Flower, Celery's monitor, behind basic auth (JOBCTL_FLOWER_USER / JOBCTL_FLOWER_PASSWORD)."""
    settings = load_settings()
    from jobctl.workers.entry import run_flower

    run_flower(settings, port=port or settings.flower_port, address=host)


@app.command()
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="Fewer rounds and rows: under 3 minutes")] = False,
    database: Annotated[list[str] | None, typer.Option(help="sqlite or postgresql (repeatable; default: both)")] = None,
    output: Annotated[Path | None, typer.Option(help="Write the Markdown report here")] = Path("docs/benchmarks.md"),
) -> None:
    """Benchmark jobctl against raw Celery on this machine (starts and stops everything it needs)."""
    from jobctl.bench.run import main as run_bench

    kinds = database or ["sqlite", "postgresql"]
    unknown = sorted(set(kinds) - {"sqlite", "postgresql"})
    if unknown:
        fail(f"unknown database(s): {', '.join(unknown)}; use sqlite or postgresql", code=2)
    raise typer.Exit(run_bench(quick, kinds, output, ["bench", *sys.argv[2:]]))


# ------------------------------------------------------------------------------------------------ up


@app.command()
def up(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Steps the worker runs at once")] = None,
) -> None:
    """Run everything in the foreground: Redis (if needed), migrations, API, scheduler, worker and Flower.

    One Ctrl-C stops it all. Without JOBCTL_ADMIN_TOKEN or the Flower credentials, generates them, keeps
    them in var/dev-secrets.json for the next run and prints them.
    """
    settings = load_settings()
    supervisor = Supervisor(console, orphans_are_ours=become_subreaper())
    with supervisor.handling_signals():
        try:
            ensure_redis(settings, supervisor)
            migrate_database(settings)
            settings.file_root.mkdir(parents=True, exist_ok=True)
            env, secrets_ = child_environment(settings)
            worker_args = ["--concurrency", str(concurrency)] if concurrency else []
            for name, args in [("api", []), ("scheduler", []), ("worker", worker_args), ("flower", [])]:
                if supervisor.stopping:
                    break
                supervisor.start(name, [sys.executable, "-m", "jobctl.api.cli", name, *args], env)
            code = supervisor.run(ready=lambda: services_ready(settings), on_ready=lambda: banner(settings, secrets_))
        finally:
            supervisor.stop()
    raise typer.Exit(code)


@dataclass
class DevSecrets:
    """What `up` tells the user: the admin token (None if unknown) and the Flower credentials."""

    admin_token: str | None
    admin_token_note: str
    flower_user: str
    flower_password: str


def child_environment(settings: Settings) -> tuple[dict[str, str], DevSecrets]:
    """The environment of the children: this one, plus generated secrets where the settings have none.

    Without JOBCTL_ADMIN_TOKEN, a new database's admin is created here, with a generated token kept (per
    database) in var/dev-secrets.json and reused by the next `up`; the API then finds an admin and creates none.
    The note says truthfully where the token shown comes from.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    saved = _load_dev_secrets()
    mine = saved.setdefault(settings.database_url, {})

    token, note = _admin_token(settings, mine)
    if token:
        env["JOBCTL_ADMIN_TOKEN"] = token

    user = settings.flower_user or mine.get("flower_user") or "admin"
    password = settings.flower_password or mine.get("flower_password") or secrets.token_urlsafe(12)
    if not settings.flower_password:
        mine.update(flower_user=user, flower_password=password)
    env["JOBCTL_FLOWER_USER"], env["JOBCTL_FLOWER_PASSWORD"] = user, password

    _save_dev_secrets(saved)
    return env, DevSecrets(token, note, user, password)


def _admin_token(settings: Settings, mine: dict[str, str]) -> tuple[str | None, str]:
    """The admin token `up` shows (None: unknown) and where it comes from; creates the admin of a new database
    when JOBCTL_ADMIN_TOKEN is not set (`mine`: this database's saved secrets, updated)."""
    configured, kept = settings.admin_token, mine.get("admin_token")
    state = _admin_of(settings, configured or kept)
    if configured:
        if state == "other":
            return configured, (
                "from JOBCTL_ADMIN_TOKEN, but not an admin's token in this database: "
                "the variable counts only when the database is new"
            )
        return configured, "from JOBCTL_ADMIN_TOKEN"
    if state == "empty":
        token = mine["admin_token"] = kept or secrets.token_urlsafe(24)
        _create_admin(settings, token)
        when = "by an earlier `jobctl up`" if kept else "by this `jobctl up` for the new database"
        return token, f"generated {when}, kept in {DEV_SECRETS}"
    if state == "admin":
        return kept, f"generated by an earlier `jobctl up`, kept in {DEV_SECRETS}"
    return None, "unknown: the database already has an admin; use the token printed when it was created"


def _admin_of(settings: Settings, token: str | None) -> str:
    """`empty` (no user yet, or no schema), `admin` (`token` is an admin's) or `other`."""
    from sqlalchemy.exc import SQLAlchemyError

    from jobctl.api.auth import hash_token
    from jobctl.scheduler import store
    from jobctl.scheduler.store.db import Database

    db = Database(settings.database_url, pool_size=1)
    try:
        with db.read() as session:
            if store.count_users(session) == 0:
                return "empty"
            holder = store.user_by_token_hash(session, hash_token(token)) if token else None
            return "admin" if holder is not None and holder.admin else "other"
    except SQLAlchemyError:  # no schema yet: a new database, which `up` migrates before the API starts
        return "empty"
    finally:
        db.dispose()


def _create_admin(settings: Settings, token: str) -> None:
    """Create the admin `admin` holding `token` in the (empty, migrated) database."""
    from jobctl.api.app import ADMIN_NAME
    from jobctl.api.auth import hash_token
    from jobctl.scheduler import store
    from jobctl.scheduler.store.db import Database

    db = Database(settings.database_url, pool_size=1)
    try:
        with db.write() as session:
            if store.count_users(session) == 0:
                store.create_user(session, ADMIN_NAME, hash_token(token), admin=True)
    finally:
        db.dispose()


def _load_dev_secrets() -> dict[str, dict[str, str]]:
    try:
        data = json.loads(DEV_SECRETS.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _save_dev_secrets(data: Mapping[str, Mapping[str, str]]) -> None:
    DEV_SECRETS.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(DEV_SECRETS, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2)


def ensure_redis(settings: Settings, supervisor: Supervisor) -> None:
    """Make sure Redis answers at `settings.redis_url`, starting a local `redis-server` child if needed."""
    url = settings.redis_url
    if redis_answers(url):
        return
    parts = urlsplit(url)
    shown = mask_url(url)
    if parts.scheme != "redis" or (parts.hostname or "") not in LOCAL_HOSTS:
        fail(f"Redis does not answer at {shown}; start it, or point JOBCTL_REDIS_URL at one that runs")
    server = shutil.which("redis-server")
    if server is None:
        fail(
            f"Redis does not answer at {shown} and redis-server is not installed: install it "
            "(`apt-get install redis-server`, `brew install redis`) or point JOBCTL_REDIS_URL at a running Redis"
        )
    bind = "127.0.0.1" if parts.hostname in (None, "", "localhost") else parts.hostname
    argv = [server, "--bind", bind, "--port", str(parts.port or 6379)]
    argv += ["--save", "", "--appendonly", "no", "--daemonize", "no"]
    if parts.password:
        argv += ["--requirepass", unquote(parts.password)]
    supervisor.start("redis", argv, dict(os.environ), service=True)
    deadline = time.monotonic() + 10
    while not redis_answers(url):
        if supervisor.failed() or time.monotonic() > deadline:
            fail(f"the redis-server started for {shown} does not answer (see its output above)")
        time.sleep(0.1)
    supervisor.say(f"started redis-server for {shown}; it stops with jobctl up")


def redis_answers(url: str) -> bool:
    """Whether a Redis server answers PING at `url`. Exits 1 if one answers but refuses us (e.g. auth)."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError):
        return False
    except redis.RedisError as exc:
        fail(f"Redis at {mask_url(url)} refuses jobctl: {exc}")
    finally:
        client.close()


def services_ready(settings: Settings) -> bool:
    """Whether the API answers /healthz and Flower accepts connections."""
    host = display_host(settings.api_host)
    try:
        with urllib.request.urlopen(f"http://{host}:{settings.api_port}/healthz", timeout=0.5) as answer:
            if answer.status != 200:
                return False
        with socket.create_connection(("127.0.0.1", settings.flower_port), timeout=0.5):
            return True
    except (OSError, urllib.error.URLError):
        return False


def display_host(host: str) -> str:
    """The address a user on this machine types for a server listening on `host`."""
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def banner(settings: Settings, secrets_: DevSecrets) -> None:
    """Print, once everything answers, where the services are and the credentials to use them."""
    api_url = f"http://{display_host(settings.api_host)}:{settings.api_port}"
    flower_login = f"user {secrets_.flower_user}, password {secrets_.flower_password}"
    lines = [
        ("jobctl is up", "bold green"),
        (f"  API      {api_url}/api/v1", ""),
        (f"  API docs {api_url}/docs", ""),
        (f"  Flower   http://127.0.0.1:{settings.flower_port}  ({flower_login})", ""),
    ]
    if secrets_.admin_token:
        lines += [
            (f"  Admin token ({secrets_.admin_token_note}):", ""),
            (f"    export TOKEN={secrets_.admin_token}", "bold"),
            (f'    curl -H "Authorization: Bearer $TOKEN" {api_url}/api/v1/me', ""),
        ]
    else:
        lines.append((f"  Admin token: {secrets_.admin_token_note} (or set JOBCTL_ADMIN_TOKEN)", "yellow"))
    lines.append(("Press Ctrl-C to stop everything.", "dim"))
    with console_lock:
        console.rule(style="green")
        for text, style in lines:
            console.print(Text(text, style=style), soft_wrap=True)
        console.rule(style="green")


# ------------------------------------------------------------------------------------------------ supervisor

console_lock = threading.Lock()
COLORS = {"api": "cyan", "scheduler": "magenta", "worker": "green", "flower": "yellow", "redis": "red"}


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    service: bool  # started for the others (redis): stopped last
    reader: threading.Thread | None = None


@dataclass
class Supervisor:
    """Children started in their own process groups, their output prefixed with their names.

    `run()` waits until a stop is requested (signal or `request_stop()`) or a child exits on its own; `stop()`
    sends SIGTERM to every child, waits up to `grace_s`, then SIGKILLs what is left of each process group and
    every process below each child (so a worker's pool processes and the subprocesses of its steps go too).
    """

    out: Console
    grace_s: float = 10.0
    orphans_are_ours: bool = False  # every other child of this process is an orphan of ours: kill at stop
    children: list[Child] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _signals: int = 0

    def say(self, message: str, style: str = "bold") -> None:
        with console_lock:
            self.out.print(Text("jobctl    | ", style="bold") + Text(message, style=style), soft_wrap=True)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], *, service: bool = False) -> Child:
        """Start `argv` as the child `name` in a new session (a terminal's Ctrl-C reaches only us)."""
        process = subprocess.Popen(
            list(argv),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        child = Child(name, process, service)
        assert process.stdout is not None
        child.reader = threading.Thread(target=self._relay, args=(name, process.stdout), daemon=True)
        child.reader.start()
        self.children.append(child)
        return child

    def _relay(self, name: str, stream: IO[bytes]) -> None:
        prefix = Text(f"{name:<9} | ", style=COLORS.get(name, "blue"))
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            with console_lock:
                self.out.print(prefix + Text(line), soft_wrap=True)
        stream.close()

    def failed(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((child for child in self.children if child.process.poll() is not None), None)

    def request_stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def handling_signals(self) -> _SignalScope:
        """A context in which SIGINT and SIGTERM request a stop (a second one during the stop: kill now)."""
        return _SignalScope(self)

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._signals += 1
        if self._signals == 1:
            self.say(f"got {signal.Signals(signum).name}, stopping everything (again to kill at once)", "yellow")
        self._stop.set()

    def run(self, ready: Callable[[], bool] = lambda: True, on_ready: Callable[[], None] = lambda: None) -> int:
        """Wait for a stop request (0) or a child's exit (1); calls `on_ready` once `ready()` holds."""
        announced = False
        next_check = 0.0
        while not self._stop.is_set():
            dead = self.failed()
            if dead is not None:
                self.say(f"{dead.name} {describe_exit(dead.process.returncode)} unexpectedly; stopping", "bold red")
                return 1
            if not announced and time.monotonic() >= next_check:
                if ready():
                    announced = True
                    on_ready()
                next_check = time.monotonic() + 0.5
            self._stop.wait(0.2)
        return 0

    def stop(self) -> None:
        """Stop every child: the services last. Safe to call more than once."""
        signals_before = self._signals
        for group in ([c for c in self.children if not c.service], [c for c in self.children if c.service]):
            self._stop_group(group, signals_before)
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=2)
        self.children.clear()

    def _stop_group(self, group: list[Child], signals_before: int) -> None:
        for child in group:
            if child.process.poll() is None:
                _signal(child, signal.SIGTERM, whole_group=False)
        deadline = time.monotonic() + self.grace_s
        for child in group:
            # Another Ctrl-C while we wait means "kill now".
            while child.process.poll() is None and time.monotonic() < deadline and self._signals <= signals_before:
                time.sleep(0.05)
            if child.process.poll() is None:
                self.say(f"{child.name} did not stop in time; killing it", "yellow")
        # Kill what is left: each child's process group, and every process below it, including those that
        # left the group (a step's subprocess in its own session) or were orphaned to us (we are a subreaper).
        tree = process_tree()
        ours = {child.process.pid for child in self.children}
        adopt = self.orphans_are_ours and not any(child.service for child in group)
        orphans = [pid for pid in tree.get(os.getpid(), []) if pid not in ours] if adopt else []
        doomed = {pid for child in group for pid in descendants(child.process.pid, tree)}
        doomed |= {pid for orphan in orphans for pid in [orphan, *descendants(orphan, tree)]}
        for child in group:
            _signal(child, signal.SIGKILL, whole_group=True)
        for pid in doomed:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        for child in group:
            child.process.wait()
        for orphan in orphans:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(orphan, 0)


def process_tree() -> dict[int, list[int]]:
    """Parent pid -> child pids of every process on this machine (Linux /proc; empty elsewhere)."""
    tree: dict[int, list[int]] = {}
    try:
        entries = [entry.name for entry in os.scandir("/proc") if entry.name.isdigit()]
    except OSError:
        return tree
    for name in entries:
        try:
            stat = Path("/proc", name, "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # fields after "(comm)": state, ppid, ...
        tree.setdefault(ppid, []).append(int(name))
    return tree


def descendants(pid: int, tree: Mapping[int, list[int]]) -> list[int]:
    """Every process below `pid` in `tree`."""
    found, todo = [], list(tree.get(pid, []))
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def become_subreaper() -> bool:
    """Linux: processes orphaned below us are re-parented to us, not to init, so `stop()` finds them.

    Only for a process whose every child is the supervisor's (`jobctl up`): `stop()` then kills them all.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def describe_exit(returncode: int) -> str:
    """`exited with status 3` or `was killed by SIGKILL`."""
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


def _signal(child: Child, signum: signal.Signals, *, whole_group: bool) -> None:
    try:
        if whole_group:
            os.killpg(child.process.pid, signum)  # the child leads its own group (start_new_session)
        else:
            child.process.send_signal(signum)
    except (ProcessLookupError, PermissionError):
        pass


class _SignalScope:
    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.saved: dict[int, object] = {}

    def __enter__(self) -> Supervisor:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self.saved[signum] = signal.signal(signum, self.supervisor._on_signal)
        return self.supervisor

    def __exit__(self, *_exc: object) -> None:
        for signum, handler in self.saved.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]


def main() -> None:
    """The `jobctl` console entry point."""
    app(prog_name="jobctl")


if __name__ == "__main__":
    main()
