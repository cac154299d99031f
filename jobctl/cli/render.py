"""What the client commands print: JSON, and Rich tables of jobs, steps, projects, users, tokens, the audit log,
targets and job types. The consoles and the `jobctl: ...` error line are `cli.output`'s."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import typer
from pydantic import BaseModel
from rich.table import Table
from rich.text import Text

from jobctl.cli.output import console
from jobctl.client import AuditEntry, Job, JobType, Project, StepError, Target, Token, User


def print_json(data: Any) -> None:
    """`data` as indented JSON on stdout."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


STATUS_STYLE = {
    "PENDING": "cyan",
    "RUNNING": "bold blue",
    "PAUSED": "yellow",
    "ERROR": "bold red",
    "DISCARDED": "magenta",
    "FINISHED": "green",
}
SHORT_ID = 12


def status_text(status: str | None) -> Text:
    """The status, in its color."""
    return Text(status or "-", style=STATUS_STYLE.get(status or "", ""))


def fmt_duration(seconds: float | None) -> str:
    """`0.4s`, `12s`, `3m 04s`, `2h 03m`; `-` for nothing."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60:02d}s"
    return f"{whole // 3600}h {whole % 3600 // 60:02d}m"


def fmt_time(value: datetime | None, *, short: bool = False) -> str:
    """The time in the local zone, to the second (`short`: `MM-DD HH:MM`, for tables); `-` for none."""
    if value is None:
        return "-"
    return value.astimezone().strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def fmt_error(error: Any) -> str:
    """A job's or a step's `error` as text (a message, or the `message` of an error object); `` for none."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, StepError):
        return error.message
    return "" if error is None else str(error)


def fmt_coded(code: str | None, message: str) -> str:
    """`[code] message`, or the message alone without a code."""
    return f"[{code}] {message}" if code else message


def fmt_target(job: Job) -> str:
    """`kind:name`, or `-`."""
    return f"{job.target.kind}:{job.target.name}" if job.target else "-"


def jobs_table(jobs: Sequence[Job]) -> Table:
    """The job list: short id, project, type, target, status, progress, created, duration."""
    table = Table(box=None, header_style="bold", pad_edge=False, collapse_padding=True)
    table.add_column("ID", no_wrap=True, min_width=SHORT_ID)
    table.add_column("PROJECT", overflow="fold")
    table.add_column("TYPE", overflow="fold")
    table.add_column("TARGET", overflow="fold")
    table.add_column("STATUS", no_wrap=True, min_width=9)
    table.add_column("PROGRESS", justify="right", no_wrap=True)
    table.add_column("CREATED", no_wrap=True)
    table.add_column("DURATION", justify="right", no_wrap=True)
    for job in jobs:
        table.add_row(
            job.id[:SHORT_ID],
            job.project,
            job.type,
            fmt_target(job),
            status_text(job.status),
            f"{job.progress:.0f}%",
            fmt_time(job.created_at, short=True),
            fmt_duration(job.duration_s),
        )
    return table


def page_line(total: int, page: int, page_size: int, noun: tuple[str, str] = ("job", "jobs")) -> str:
    """`page x of y (N jobs)`; `noun`: what is counted, singular and plural."""
    pages = max(1, math.ceil(total / page_size))
    return f"page {page} of {pages} ({total} {noun[0] if total == 1 else noun[1]})"


def job_details(job: Job) -> Table:
    """The job's fields as a two-column grid."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    target = "-" if job.target is None else f"{fmt_target(job)} (version {job.target.version})"
    rows: list[tuple[str, str | Text]] = [
        ("id", job.id),
        ("project", job.project),
        ("type", job.type),
        ("target", target),
        ("status", status_text(job.status)),
        *([("waiting for", Text(job.waiting_for, style="cyan"))] if job.waiting_for else []),
        ("progress", f"{job.progress:.0f}%"),
        ("priority", str(job.priority)),
        ("submitter", job.submitter),
        ("created", fmt_time(job.created_at)),
        ("started", fmt_time(job.started_at)),
        ("finished", fmt_time(job.finished_at)),
        ("waiting", fmt_duration(job.waiting_s)),
        ("duration", fmt_duration(job.duration_s)),
        ("attempt", str(job.attempt)),
        ("allowed", ", ".join(job.allowed) or "-"),
        ("params", json.dumps(job.params, sort_keys=True)),
    ]
    if job.error:
        rows.append(("error", Text(fmt_coded(job.error_code, fmt_error(job.error)), style="red")))
    if job.discard_reason:
        rows.append(("discarded", Text(job.discard_reason, style="magenta")))
    if job.result is not None:
        rows.append(("result", json.dumps(job.result, sort_keys=True)))
    for name, value in rows:
        grid.add_row(name, value)
    return grid


def steps_table(job: Job) -> Table:
    """The job's steps: index, name, status, progress, waiting, duration, attempt, error."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    for name in ("STEP", "STATUS"):
        table.add_column(name, no_wrap=True)
    for name in ("PROGRESS", "WAITING", "DURATION", "ATTEMPT"):
        table.add_column(name, justify="right")
    table.add_column("ERROR", style="red")
    for step in job.steps:
        table.add_row(
            str(step.index),
            step.name,
            status_text(step.status),
            f"{step.progress:.0f}%",
            fmt_duration(step.waiting_s),
            fmt_duration(step.duration_s),
            str(step.attempt),
            Text(fmt_coded(step.error.code, step.error.message)) if step.error else "",  # Text: never markup
        )
    return table


def step_notes(job: Job) -> list[Text]:
    """Under the steps: each failed step's hint (`how to fix`) and each step's info, one line each."""
    notes: list[Text] = []
    for step in job.steps:
        where = f"step {step.index} ({step.name})"
        if step.error and step.error.hint:
            notes.append(Text.assemble((f"{where} how to fix: ", "bold"), (step.error.hint, "yellow")))
        if step.info:
            shown = ", ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in step.info.items())
            notes.append(Text.assemble((f"{where} info: ", "bold"), shown))
    return notes


def projects_table(projects: Sequence[Project]) -> Table:
    """Projects: name, running limit, created."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME")
    table.add_column("MAX RUNNING", justify="right")
    table.add_column("CREATED")
    for project in projects:
        limit = "default" if project.max_running is None else str(project.max_running)
        table.add_row(project.name, limit, fmt_time(project.created_at))
    return table


def users_table(users: Sequence[User]) -> Table:
    """Users: name, admin flag, disabled flag, roles."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME")
    table.add_column("ADMIN")
    table.add_column("DISABLED")
    table.add_column("ROLES")
    for user in users:
        roles = ", ".join(f"{p}={r}" for p, r in sorted(user.roles.items())) or "-"
        disabled = Text("yes", style="bold red") if user.disabled else ""
        table.add_row(user.name, "yes" if user.admin else "", disabled, roles)
    return table


def tokens_table(tokens: Sequence[Token]) -> Table:
    """Tokens (never their values): name, prefix, created, last used, expires (`never`; red once expired)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("NAME", "PREFIX", "CREATED", "LAST USED", "EXPIRES"):
        table.add_column(column, no_wrap=column != "NAME")
    for token in tokens:
        expires: str | Text = "never" if token.expires_at is None else fmt_time(token.expires_at)
        if token.expired:
            expires = Text(f"{expires} (expired)", style="bold red")
        last_used = fmt_time(token.last_used_at) if token.last_used_at else "never"
        table.add_row(token.name, token.prefix or "-", fmt_time(token.created_at), last_used, expires)
    return table


def audit_table(entries: Sequence[AuditEntry]) -> Table:
    """Audit entries: at, actor, action, subject, address, outcome (`ok` in green, an error code in red)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("AT", no_wrap=True)
    table.add_column("ACTOR", overflow="fold")
    table.add_column("ACTION", no_wrap=True)
    table.add_column("SUBJECT", overflow="fold")
    table.add_column("ADDRESS", no_wrap=True)
    table.add_column("OUTCOME", no_wrap=True)
    for entry in entries:
        outcome = Text(entry.outcome, style="green" if entry.outcome == "ok" else "bold red")
        table.add_row(
            fmt_time(entry.at), entry.actor, entry.action, entry.subject or "-", entry.address or "-", outcome
        )
    return table


M = TypeVar("M", bound=BaseModel)


def targets_table(targets: Sequence[Target]) -> Table:
    """Targets: kind, name, version, attributes."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("KIND", "NAME", "VERSION", "ATTRIBUTES"):
        table.add_column(column, justify="right" if column == "VERSION" else "left")
    for target in targets:
        table.add_row(target.kind, target.name, str(target.version), json.dumps(target.attributes, sort_keys=True))
    return table


def types_table(types: Sequence[JobType]) -> Table:
    """Job types: name, steps (with weights), target kind, exclusivity."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("TYPE", "STEPS", "TARGET", "EXCLUSIVE"):
        table.add_column(column)
    for jt in types:
        steps = (
            "planned from the params"
            if jt.steps is None
            else ", ".join(s.name if s.weight == 1 else f"{s.name} ({s.weight:g})" for s in jt.steps)
        )
        table.add_row(jt.name, steps, jt.target_kind or "-", jt.exclusive or "-")
    return table


def show_list(items: Sequence[M], table: Callable[[Sequence[M]], Table], as_json: bool) -> None:
    """Print `items` as the API's JSON list, or as `table` renders them."""
    if as_json:
        print_json([item.model_dump(mode="json") for item in items])
    else:
        console.print(table(items))
